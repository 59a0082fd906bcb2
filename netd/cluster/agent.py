"""This host's part in the cluster: its subnet lease in etcd, kept alive,
and the routes to the other hosts, kept in step with etcd's records by a
watch on the prefix.

etcd being down changes nothing on the hosts: routes stay, attaches go on
from the leased subnet; netd retries with backoff, logs the outage once,
and reports the cluster degraded. A lease that expired meanwhile is taken
again for the same subnet if it is free; if another host took it, netd
stops attaching on that network rather than hand out its addresses twice.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import structlog

from netd.cluster import records
from netd.cluster.etcd import Etcd, EtcdUnavailable
from netd.cluster.plan import Plan, plan
from netd.cluster.records import Node
from netd.errors import FailedPrecondition
from netd.model import ClusterConfig, mac_for

log = structlog.get_logger("netd")
RESYNC_SECONDS = 5.0  # a watch whose stream broke without a word is replaced at least this often
MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class NodeStatus:
    node: Node
    lease_seconds: int  # -1: unknown (etcd unreachable)
    reachable: bool
    why: str = ""


def vxlan_device(cluster: ClusterConfig) -> str:
    return f"netdvx{cluster.vni}"


class Agent:
    def __init__(self, cluster: ClusterConfig, etcd: Etcd, overlay: Any, state_path: Path, name: str,
                 public_ip: IPv4Address, mark: str) -> None:
        self.cluster, self.etcd, self.overlay = cluster, etcd, overlay
        self.name, self.public_ip, self.mark = name, public_ip, mark
        self._state_path = state_path
        self._lock = threading.Lock()
        self._nodes: dict[IPv4Network, tuple[Node, int]] = {}  # subnet → (node, its lease)
        self._plan = Plan()
        self._vxlan = 0
        self._cancel_watch: Callable[[], None] | None = None
        self.subnet: IPv4Network | None = None
        self.lease = 0
        self.lost = ""  # why this host no longer holds its subnet
        self.etcd_down = ""  # the outage being waited out, if any
        self.errors = 0

    # -- joining --------------------------------------------------------------

    def record(self, subnet: IPv4Network) -> Node:
        return Node(self.name, subnet, self.public_ip, self.cluster.backend,
                    mac_for(subnet.network_address) if self.cluster.backend == "vxlan" else "")

    def join(self) -> IPv4Network:
        """Check the cluster's settings and lease this host's subnet: the one
        it had (remembered in the state dir) if it is still its own or free,
        else a free one. Before serving. Without etcd, a remembered subnet is
        used as it is (etcd is asked again in the background)."""
        remembered = self._remembered()
        try:
            self._check_settings()
            self.subnet, self.lease = self._lease(remembered)
        except EtcdUnavailable as e:
            if remembered is None:
                raise FailedPrecondition(f"cannot lease a subnet of {self.cluster.network}: {e}") from None
            self.subnet, self.lease = remembered
            self._outage(str(e))
        self._remember()
        return self.subnet

    def _check_settings(self) -> None:
        key = f"{self.cluster.etcd_prefix}/config"
        mine = json.dumps(records.settings_of(self.cluster), sort_keys=True)
        if not self.etcd.create(key, mine):
            records.check_settings(self.cluster, json.loads(self.etcd.get(key) or "{}"))

    def _lease(self, remembered: tuple[IPv4Network, int] | None) -> tuple[IPv4Network, int]:
        if remembered is not None:
            subnet, lease = remembered
            if self.etcd.time_to_live(lease) > 0 and self._holder(subnet) == self.name:
                self.etcd.put(self._key(subnet), self.record(subnet).to_json(), lease)  # no new lease: no flap
                return subnet, lease
            lease = self.etcd.grant(self.cluster.lease_ttl)
            if self._claim(subnet, lease):
                return subnet, lease
            holder = self._holder(subnet)
            self.lost = f"subnet {subnet}, which this host held, is now leased by node {holder}"
            log.error("subnet_taken", subnet=str(subnet), holder=holder,
                      action="no new attaches on the cluster network")
            return subnet, lease
        lease = self.etcd.grant(self.cluster.lease_ttl)
        for subnet in records.candidates(self.cluster, zlib.crc32(self.name.encode())):
            if self._claim(subnet, lease):
                log.info("subnet_leased", subnet=str(subnet), node=self.name)
                return subnet, lease
        raise FailedPrecondition(f"no free subnet left in the cluster's {self.cluster.network}")

    def _claim(self, subnet: IPv4Network, lease: int) -> bool:
        return self.etcd.create(self._key(subnet), self.record(subnet).to_json(), lease)

    def _holder(self, subnet: IPv4Network) -> str:
        value = self.etcd.get(self._key(subnet))
        node = Node.from_record(self._key(subnet), value) if value else None
        return node.name if node else ""

    def _key(self, subnet: IPv4Network) -> str:
        return records.subnet_key(self.cluster.etcd_prefix, subnet)

    def _remembered(self) -> tuple[IPv4Network, int] | None:
        try:
            data = json.loads(self._state_path.read_text())
            return IPv4Network(data["subnet"]), int(data["lease"])
        except (OSError, ValueError, KeyError):
            return None

    def _remember(self) -> None:
        self._state_path.write_text(json.dumps({"subnet": str(self.subnet), "lease": self.lease}) + "\n")

    def setup(self, mtu: int) -> None:
        """netd's VXLAN device, and the routes to the hosts etcd knows now."""
        if self.cluster.backend == "vxlan":
            self._vxlan = self.overlay.ensure_vxlan(vxlan_device(self.cluster), self.cluster.vni, self.public_ip,
                                                    self.cluster.port, mtu, self.record(self.subnet).vtep_mac,
                                                    self.mark)
        try:
            self._resync()
        except EtcdUnavailable as e:
            self._outage(str(e))

    # -- running --------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        threading.Thread(target=self._keep_lease, args=(stop,), name="cluster-lease", daemon=True).start()
        threading.Thread(target=self._watch, args=(stop,), name="cluster-watch", daemon=True).start()

    def stop(self) -> None:
        """End the watch: etcd3gw reads its stream on a thread the
        interpreter waits for at exit. The lease stays: the subnet is this
        host's across restarts, and expires only if netd stays away."""
        if self._cancel_watch:
            self._cancel_watch()

    def _keep_lease(self, stop: threading.Event) -> None:
        """Refresh the lease every third of its TTL (every second while etcd
        is down), and replace the watch every RESYNC_SECONDS."""
        last_resync = time.monotonic()
        while not stop.wait(1.0 if self.etcd_down else self.cluster.lease_ttl / 3):
            try:
                if self.etcd.refresh(self.lease) <= 0:
                    self._lease_again()
                self._recovered()
            except EtcdUnavailable as e:
                self._outage(str(e))
            if time.monotonic() - last_resync >= RESYNC_SECONDS and self._cancel_watch:
                last_resync = time.monotonic()
                self._cancel_watch()

    def _lease_again(self) -> None:
        """The lease expired (etcd was out of reach too long): the same subnet again, if free."""
        self.subnet, self.lease = self._lease((self.subnet, self.lease))
        self._remember()
        if not self.lost:
            log.warning("lease_renewed", subnet=str(self.subnet), reason="the previous lease expired")

    def _watch(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                revision = self._resync()
                events, self._cancel_watch = self.etcd.watch(records.subnets_prefix(self.cluster.etcd_prefix),
                                                            revision + 1)
                if stop.is_set():  # stop() may have come before this watch
                    self._cancel_watch()
                self._recovered()
                backoff = 0.5
                for event in events:
                    self._apply_event(event)
                    if stop.is_set():
                        break
            except EtcdUnavailable as e:
                self._outage(str(e))
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _resync(self) -> int:
        """Every record etcd holds now, and the routes to match; etcd's revision before the read."""
        revision = self.etcd.revision()
        listed = self.etcd.list(records.subnets_prefix(self.cluster.etcd_prefix))
        nodes = {}
        for key, (value, lease) in listed.items():
            node = Node.from_record(key, value)
            if node:
                nodes[node.subnet] = (node, lease)
        with self._lock:
            self._nodes = nodes
        self._reconcile()
        return revision

    def _apply_event(self, event: dict) -> None:
        kv = event.get("kv", {})
        key = kv.get("key", b"").decode()
        subnet = records.subnet_of_key(key)
        if subnet is None:
            return
        with self._lock:
            if event.get("type") == "DELETE":
                gone = self._nodes.pop(subnet, None)
                if gone:
                    log.info("node_left", node=gone[0].name, subnet=str(subnet))
            else:
                node = Node.from_record(key, kv.get("value", b"").decode())
                if node and self._nodes.get(subnet, (None,))[0] != node:
                    log.info("node_joined", node=node.name, subnet=str(subnet), public_ip=str(node.public_ip))
                if node:
                    self._nodes[subnet] = (node, int(kv.get("lease", 0)))
        self._reconcile()

    def _reconcile(self) -> None:
        """Make netd's routes (and VXLAN entries) exactly the plan's: add
        what is missing, delete what it holds of netd's and the plan lacks."""
        with self._lock:
            nodes = [node for node, _ in self._nodes.values()]
        wanted = plan(self.name, nodes, self.cluster.backend, self._vxlan, self.overlay.on_link)
        for name, why in wanted.unreachable.items():
            if name not in self._plan.unreachable:
                log.warning("node_unreachable", node=name, reason=why)
        o = self.overlay
        if self._vxlan:
            current_fdb = o.forwarding_entries(self._vxlan)
            for mac, dst in wanted.forwarding.items():
                if current_fdb.get(mac) != dst:
                    o.set_forwarding_entry(self._vxlan, mac, dst)
            current_neigh = o.neighbours(self._vxlan)
            for address, mac in wanted.neighbours.items():
                if current_neigh.get(address) != mac:
                    o.set_neighbour(self._vxlan, address, mac)
        current = o.routes(self.cluster.network)
        for dst, route in wanted.routes.items():
            if current.get(dst) != route:
                o.set_route(route)
        for dst, route in current.items():
            if dst not in wanted.routes:
                o.delete_route(route)
        if self._vxlan:
            for address in current_neigh.keys() - wanted.neighbours.keys():
                o.delete_neighbour(self._vxlan, address)
            for mac in current_fdb.keys() - wanted.forwarding.keys():
                o.delete_forwarding_entry(self._vxlan, mac, current_fdb[mac])
        self._plan = wanted

    def _outage(self, error: str) -> None:
        self.errors += 1
        if not self.etcd_down:
            log.error("etcd_unreachable", error=error, action="routes stay; retrying")
        self.etcd_down = error

    def _recovered(self) -> None:
        if self.etcd_down:
            log.info("etcd_reachable")
            self.etcd_down = ""

    # -- status ---------------------------------------------------------------

    def known(self) -> int:
        """How many hosts netd knows, itself included."""
        with self._lock:
            return len(self._nodes)

    def nodes(self) -> list[NodeStatus]:
        with self._lock:
            known = sorted(self._nodes.values(), key=lambda item: item[0].subnet)
        found = []
        for node, lease in known:
            lease = self.lease if node.name == self.name else lease
            try:
                left = self.etcd.time_to_live(lease) if lease and not self.etcd_down else -1
            except EtcdUnavailable:
                left = -1
            why = self._plan.unreachable.get(node.name, "")
            found.append(NodeStatus(node, left, not why, why))
        return found

    def problems(self) -> list[str]:
        return [text for text in (self.lost, f"etcd unreachable: {self.etcd_down}" if self.etcd_down else "") if text]
