"""Keeping the kernel as netd left it: reconcile at start, garbage
collection and a look inside every container after it, releasing dead
containers, and the healer's rounds, which repair what netd depends on and
report what they could not.

A mixin of Service (core.py): it works on the same store, links and locks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import structlog

from netd.errors import ContainerNotFound, FailedPrecondition, NetdError
from netd.kernel import sysctl
from netd.model import Endpoint, NetworkConfig

log = structlog.get_logger("netd")


@dataclass(frozen=True)
class Problem:
    """Something netd depends on that is broken now. network "": all of them."""

    what: str
    network: str = ""

    def __str__(self) -> str:
        return f"network {self.network}: {self.what}" if self.network else self.what


class Upkeep:
    """Reconcile, collect garbage, heal. (Attributes: see Service.)"""

    networks: tuple[NetworkConfig, ...]
    store: Any
    links: Any
    firewall: Any
    sysctls: Any
    mark: str
    _bridges: dict[str, int]
    _id_locks: Any
    _firewall_lock: threading.Lock
    _downs: set[int]
    adopt_unmarked: bool
    cluster: Any

    # -- the healer ------------------------------------------------------------

    def heal(self) -> tuple[dict[str, int], list[Problem]]:
        """One round: put back what someone changed or removed (forwarding,
        bridges and their route_localnet, host ends set down, pinned
        neighbour entries, firewall rules). Returns the repairs made, by
        kind, and the problems left (those it could not repair)."""
        repairs = {}
        steps = [("forwarding", self._heal_forwarding), *(("bridge", self._heal_bridge_of(net)) for net in self.networks),
                 ("host_end", self._heal_host_ends), ("neighbour", self._heal_neighbours),
                 ("firewall", self._heal_firewall)]
        for kind, repair in steps:
            try:
                made = repair()
            except NetdError as e:
                log.error("repair_failed", kind=kind, error=str(e))
                continue
            if made:
                repairs[kind] = repairs.get(kind, 0) + made
        return repairs, self.problems()

    def problems(self) -> list[Problem]:
        """What is broken now, looked at without repairing anything."""
        found = [Problem(text) for text in self._forwarding_off()]
        for net in self.networks:
            state = self.links.bridge_problem(net, self._bridges[net.name], self.mark)
            if state:
                found.append(Problem(f"bridge {net.bridge}: {state}", net.name))
            elif self._needs_route_localnet(net) and self.sysctls.read(sysctl.route_localnet(net.bridge)) != "1":
                found.append(Problem(f"{sysctl.name(sysctl.route_localnet(net.bridge))} is off", net.name))
        for endpoint in self._down_endpoints():
            found.append(Problem(f"host end {endpoint.host_ifname} of container {endpoint.container_id} is down",
                                 endpoint.network))
        with self._firewall_lock:
            if not self.firewall.intact(self.ruleset()):
                found.append(Problem(f"firewall: netd's {self.firewall.name} rules are incomplete"))
        if self.cluster:
            network = next(n.name for n in self.networks if n.cluster)
            found += [Problem(f"cluster: {text}", network) for text in self.cluster.problems()]
        return found

    def _forwarding_off(self) -> list[str]:
        return [f"{sysctl.name(knob)} is {value or 'missing'}, not 1" for knob, value in self._forwarding() if value != "1"]

    def _forwarding(self) -> list[tuple[str, str]]:
        knobs = [sysctl.IPV4_FORWARDING] + ([sysctl.IPV6_FORWARDING] if any(n.subnet6 for n in self.networks) else [])
        return [(knob, self.sysctls.read(knob)) for knob in knobs]

    def _heal_forwarding(self) -> int:
        repairs = 0
        for knob, value in self._forwarding():
            if value != "1":
                self.sysctls.write(knob, "1")
                log.warning("forwarding_repaired", sysctl=sysctl.name(knob), found=value)
                self._publish("repaired", detail=f"{sysctl.name(knob)} was {value}, now 1")
                repairs += 1
        return repairs

    def _heal_bridge_of(self, net: NetworkConfig):  # noqa: ANN202 - a repair step
        def heal_bridge() -> int:
            state = self.links.bridge_problem(net, self._bridges[net.name], self.mark)
            if state:
                self._ensure_bridge(net)
                bridge = self._bridges[net.name]
                for e in self.store.list(net.name):
                    self._quietly("re-attach port", self.links.enslave, e.host_ifname, bridge, *self._port_flags(e))
                self._pin_neighbours(net)
                log.warning("bridge_repaired", bridge=net.bridge, network=net.name, found=state)
                self._publish("repaired", network=net.name, detail=f"bridge {net.bridge} was {state}")
                return 1
            if self._needs_route_localnet(net):
                found = self.sysctls.ensure(sysctl.route_localnet(net.bridge), "1")
                if found is not None:
                    log.warning("route_localnet_repaired", bridge=net.bridge, network=net.name, found=found)
                    self._publish("repaired", network=net.name, detail=f"route_localnet on {net.bridge} was {found}")
                    return 1
            return 0
        return heal_bridge

    def link_went_down(self, index: int) -> None:
        """The link watcher saw a link set down; the healer looks at it next round."""
        self._downs.add(index)

    def _down_endpoints(self) -> list[Endpoint]:
        """Ready endpoints whose host end was set down and is still down."""
        by_index = {e.host_ifindex: e for e in self.store.list() if e.ready}
        found = []
        for index in list(self._downs):
            endpoint = by_index.get(index)
            link = self.links.host_link(endpoint.host_ifname) if endpoint else None
            if link is None or link.index != index or link.up:
                self._downs.discard(index)  # not netd's, gone, or up again
            else:
                found.append(endpoint)
        return found

    def _heal_host_ends(self) -> int:
        repairs = 0
        for endpoint in self._down_endpoints():
            with self._id_locks.hold(endpoint.container_id):
                current = self.store.get(*endpoint.key)
                if current is None or current.host_ifindex != endpoint.host_ifindex:
                    continue  # detached meanwhile
                self.links.set_up(current.host_ifname)
            self._downs.discard(endpoint.host_ifindex)
            log.warning("host_end_repaired", container_id=endpoint.container_id, network=endpoint.network,
                        host_ifname=endpoint.host_ifname, found="down")
            self._publish("repaired", endpoint, detail=f"host end {endpoint.host_ifname} was down")
            repairs += 1
        return repairs

    def _heal_neighbours(self) -> int:
        return sum(self._repin(net) for net in self.networks) if self.links.neighbours_deleted() else 0

    def _heal_firewall(self) -> int:
        with self._firewall_lock:
            intact = self.firewall.intact(self.ruleset())
        if intact:
            return 0
        self.sync_firewall()
        log.warning("firewall_repaired", driver=self.firewall.name)
        self._publish("repaired", detail=f"netd's {self.firewall.name} rules were incomplete")
        return 1

    def _repin(self, net: NetworkConfig) -> int:
        """Pin again the neighbour entries someone deleted. A detach deletes
        its endpoint's own while holding the container id's lock: under that
        lock the endpoint is looked up again, and is gone by then."""
        bridge = self._bridges[net.name]
        repairs = 0
        for endpoint in self.links.unpinned(bridge, [e for e in self.store.list(net.name) if e.ready]):
            with self._id_locks.hold(endpoint.container_id):
                current = self.store.get(*endpoint.key)
                if current is None or not current.ready:
                    continue
                self.links.repin(bridge, current)
            log.warning("neighbour_repaired", container_id=current.container_id, address=str(current.address.ip))
            self._publish("repaired", current, detail="its pinned neighbour entry was deleted")
            repairs += 1
        return repairs

    def reconcile(self) -> int:
        """Make the store agree with the kernel on the endpoints it records
        (at start, before serving): release or replug those whose veth is
        gone. Returns the repairs made. What needs a dump of every link or
        neighbour entry waits for verify_containers, after serving."""
        repairs = 0
        for endpoint in self.store.list():
            if endpoint.network not in self.nets:
                repairs += self._release(endpoint, "released: its network is no longer configured")
            elif not endpoint.ready:
                repairs += self._release(endpoint, "rolled back interrupted attach")
            elif (index := self.links.link_index(endpoint.host_ifname)) is None:
                repairs += self._reconcile_one(endpoint, has_veth=False)
            elif self.adopt_unmarked and index == endpoint.host_ifindex:
                # made by a netd from before marks, whose state dir this is
                self._quietly("mark veth", self.links.mark_link, index, self.mark)
        return repairs

    def collect_garbage(self) -> int:
        """Delete the veths netd made (they carry its mark) that the store
        does not know (an attach a crash interrupted leaves one, and no
        record), hand the healer those someone set down, and make each
        bridge's pinned neighbour entries exactly its endpoints'. A link
        with netd's naming but not its mark is left alone, and said so
        once. Returns the veths deleted."""
        deleted = 0
        ours, theirs = self.links.host_veths(self.mark)
        for name, link in sorted(ours.items()):
            # Looked up after the dump: a veth attached meanwhile is known by
            # now, and one that took a deleted one's name has another index.
            if self.store.by_host_ifname(name) is None:
                if self._quietly("delete orphan veth", self.links.delete_link_index, link.index):
                    deleted += 1
                    log.info("reconciled", action="deleted orphan veth", host_ifname=name)
            elif not link.up:
                self.link_went_down(link.index)  # while netd was down: the healer sets it up
        for name, alias in sorted(theirs.items()):
            log.warning("left_alone", link=name, alias=alias, reason="named like netd's veths, without netd's mark")
        for net in self.networks:
            self._pin_neighbours(net)
        return deleted

    def _pin_neighbours(self, net: NetworkConfig) -> None:
        """The host's pinned entries: those of every ready endpoint of the network, no others."""
        self._quietly("pin neighbours", self.links.pin_neighbours, self._bridges[net.name],
                      [e for e in self.store.list(net.name) if e.ready])

    def verify_containers(self) -> int:
        """After start-up, while netd serves: collect garbage, then check
        inside every container that its interface, address and route are
        still there, and replug those that lost them (entering each netns
        takes ~1 ms)."""
        repairs = self.collect_garbage()
        for endpoint in self.store.list():
            with self._id_locks.hold(endpoint.container_id):
                current = self.store.get(*endpoint.key)
                if current is not None and current.ready:
                    repairs += self._reconcile_one(current, has_veth=True)
        return repairs

    def _reconcile_one(self, endpoint: Endpoint, has_veth: bool) -> int:
        """Leave, replug (same address) or release one endpoint; 1 if it was repaired."""
        if not endpoint.ready:
            return self._release(endpoint, "rolled back interrupted attach")
        try:
            with self._endpoint_netns(endpoint) as ns:
                view = self.links.container_view(ns.fd, endpoint.ifname) if has_veth else None
                if view is not None and not view.problems(endpoint):
                    return 0
                self._replug(endpoint, ns.fd)
        except NetdError as e:
            if has_veth and isinstance(e, (ContainerNotFound, FailedPrecondition)):
                # Its veth lives, so its netns does too, held by something
                # we cannot reach through the recorded pid: leave it be.
                log.warning("reconcile_skipped", container_id=endpoint.container_id, reason=str(e))
                return 0
            return self._release(endpoint, f"released: {e}")
        log.info("reconciled", action="replugged", container_id=endpoint.container_id, address=str(endpoint.address))
        return 1

    def hold_published_ports(self) -> None:
        """At start: hold the host ports of the endpoints that publish some.
        One a host process took while netd was down stays published (its
        DNAT wins) and is logged."""
        if not self.host_ports:
            return
        for e in self.store.list():
            if e.ports:
                try:
                    self.host_ports.hold(e.key, e.ports, dual_stack=e.dual_stack)
                except NetdError as err:
                    log.warning("host_port_not_held", container_id=e.container_id, network=e.network, error=str(err))

    def _release(self, endpoint: Endpoint, action: str) -> int:
        self._unplug(endpoint)
        self._forget(endpoint, "released", action)
        log.info("reconciled", action=action, container_id=endpoint.container_id, address=str(endpoint.address))
        return 1

    def _replug(self, endpoint: Endpoint, ns_fd: int) -> None:
        """Plug the container again with the same address (its veth or config went missing)."""
        self.links.delete_link(endpoint.host_ifname)
        ifindex = self._plug(endpoint, ns_fd)
        self.store.mark_ready(*endpoint.key, ifindex)

    def forget_if_gone(self, host_ifname: str, ifindex: int) -> bool:
        """A netd veth vanished from the kernel (its container's netns died):
        release the endpoint without waiting for a Detach."""
        endpoint = self.store.by_host_ifname(host_ifname)
        if endpoint is None:
            return False
        with self._id_locks.hold(endpoint.container_id):
            # Re-read under the lock: a detach or re-attach may have won the race.
            current = self.store.get(*endpoint.key)
            if current is None or not current.ready or current.host_ifindex != ifindex:
                return False
            link = self.links.host_link(host_ifname)
            if link is not None and link.index == ifindex:
                return False  # still there: not a deletion after all
            self._forget_neighbours(current)
            self._forget(current, "released", "its container's network namespace is gone")
        log.info("container_gone", container_id=current.container_id, address=str(current.address))
        return True

    def sweep(self) -> int:
        """Release every ready endpoint whose veth is gone (after lost link events)."""
        return sum(
            self.forget_if_gone(e.host_ifname, e.host_ifindex)
            for e in self.store.list()
            if e.ready and self.links.link_index(e.host_ifname) != e.host_ifindex
        )

