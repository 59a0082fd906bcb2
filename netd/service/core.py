"""Attach, detach, list, inspect: the orchestration, with rollback.

Everything with a side effect comes in through the constructor (store, links,
namespaces, firewall), so unit tests run this without root.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Network
from types import ModuleType
from typing import Any

import structlog

from netd import firewall as fw
from netd import ipam
from netd.errors import (
    AlreadyAttached,
    AlreadyExists,
    BridgeFull,
    EndpointNotFound,
    FailedPrecondition,
    InvalidArgument,
    NetdError,
    NetworkNotFound,
)
from netd.events import Event, now
from netd.kernel import sysctl
from netd.model import (
    BRIDGE_MAX_PORTS,
    DEFAULT_NETWORK,
    AttachRequest,
    Endpoint,
    NetnsId,
    NetworkConfig,
    PortMapping,
    host_ifname_for,
    mac_for,
)
from netd.service.locks import KeyedLocks
from netd.service.networks import NetworkAdmin
from netd.service.upkeep import Upkeep
from netd.store import Store

log = structlog.get_logger("netd")


@dataclass(frozen=True)
class Inspection:
    endpoint: Endpoint
    host_link: Any  # links.Link | None
    container: Any  # links.ContainerView | None


@dataclass
class Service(Upkeep, NetworkAdmin):
    networks: tuple[NetworkConfig, ...]
    store: Store
    links: ModuleType | Any
    namespaces: ModuleType | Any
    firewall: fw.Firewall
    sysctls: ModuleType | Any  # kernel.sysctl: /proc/sys/net
    host_ports: Any = None  # hostports.HostPorts: published ports held against host processes
    # The alias on every link netd creates: "netd:INSTANCE". netd deletes
    # only links that carry it, and uses no bridge that lacks it.
    mark: str = "netd"
    # This state dir was a netd's from before marks: what it made carries
    # none yet, and is marked as netd finds it.
    adopt_unmarked: bool = False
    # Set accept_ra=2 on uplinks that accept router advertisements before
    # IPv6 forwarding stops them; else refuse to start.
    manage_accept_ra: bool = True
    # cluster.agent.Agent, in cluster mode: the network whose subnet it leased
    # takes no attaches while another host holds that subnet.
    cluster: Any = None
    dns: Any = None  # netd.dns.Dns: names on the networks with dns on
    events: Any = None  # netd.events.Bus
    config_file: str = ""  # where the config networks come from
    address_pools: tuple[tuple[IPv4Network, int], ...] = ((IPv4Network("10.90.0.0/16"), 24),)

    def __post_init__(self) -> None:
        self.nets = {n.name: n for n in self.networks}
        # A container on several networks gets a default route from each,
        # the earlier network's with the lower metric.
        self._route_metric = {n.name: i for i, n in enumerate(self.networks)}
        self._bridges = {n.name: 0 for n in self.networks}  # network → bridge ifindex
        # Allocation must see a consistent set of used addresses.
        self._alloc_lock = threading.Lock()
        # Every firewall change renders the whole ruleset from the store.
        self._firewall_lock = threading.Lock()
        # Calls for one container id run one at a time (an attach and a detach
        # of the same id must not interleave); different ids run in parallel.
        self._id_locks = KeyedLocks()
        # Networks are created and deleted one at a time.
        self._networks_lock = threading.Lock()
        self._downs: set[int] = set()  # ifindexes the link watcher saw set down

    def network(self, name: str = "") -> NetworkConfig:
        """A configured network by name; "" is the default one."""
        if not name:
            return self.nets.get(DEFAULT_NETWORK, self.networks[0])
        net = self.nets.get(name)
        if net is None:
            raise NetworkNotFound(f"network {name!r} is not configured (networks: {', '.join(self.nets)})")
        return net

    # -- networks --------------------------------------------------------

    def prepare(self) -> None:
        """Bridges, forwarding and NAT for every network; safe to repeat."""
        for net in self.networks:
            conflicts = self.links.overlapping(net.subnet, net.bridge)
            if conflicts:
                raise FailedPrecondition(
                    f"network {net.name}: subnet {net.subnet} overlaps {', '.join(conflicts)}: choose another subnet"
                )
        if any(n.subnet6 for n in self.networks):
            self._keep_router_advertisements()
        for knob, _ in self._forwarding():
            self.sysctls.write(knob, "1")
        for net in self.networks:
            self._ensure_bridge(net)
        self.sync_firewall()

    def _keep_router_advertisements(self) -> None:
        """With IPv6 forwarding on, the kernel ignores router advertisements
        on interfaces whose accept_ra is 1: a host that gets its own IPv6
        default route by SLAAC would lose it. accept_ra=2 accepts them
        while forwarding (as Docker asks)."""
        for uplink in self.links.uplinks():
            knob = sysctl.accept_ra(uplink)
            if self.sysctls.read(knob) != "1":
                continue
            if not self.manage_accept_ra:
                raise FailedPrecondition(
                    f"IPv6 forwarding would make {uplink} ignore router advertisements ({sysctl.name(knob)} = 1): "
                    f"set it to 2, or let netd do it (manage_accept_ra = true)")
            self.sysctls.write(knob, "2")
            log.warning("accept_ra_set", interface=uplink, sysctl=sysctl.name(knob), found="1", now="2",
                        reason="IPv6 forwarding on: keep accepting router advertisements")

    def _ensure_bridge(self, net: NetworkConfig) -> None:
        self._bridges[net.name] = self.links.ensure_bridge(net, self.mark, self.adopt_unmarked)
        self._enable_route_localnet(net)

    def _needs_route_localnet(self, net: NetworkConfig) -> bool:
        """Lets 127.0.0.1:PORT be DNATed to a container (the firewall's guard
        rules keep containers away from the host's loopback); an internal
        network publishes no ports."""
        return self.firewall.name != "none" and not net.internal

    def _enable_route_localnet(self, net: NetworkConfig) -> None:
        if self._needs_route_localnet(net):
            self.sysctls.write(sysctl.route_localnet(net.bridge), "1")

    def ruleset(self) -> fw.Ruleset:
        forwards = tuple(fw.Forward(m, e.address.ip, e.address6.ip if e.address6 else None)
                         for e in self.store.list() for m in e.ports)
        return fw.Ruleset(self.networks, forwards)

    def sync_firewall(self, changed: Endpoint | None = None) -> None:
        """Make the firewall match the store; then drop the UDP flows of the
        ports of the endpoint that changed, so they follow the new rules."""
        with self._firewall_lock:
            self.firewall.apply(self.ruleset())
        if changed and changed.ports:
            try:
                fw.forget_udp_flows(changed.ports, dual_stack=changed.dual_stack)
            except NetdError as e:
                log.warning("conntrack_flush_failed", error=str(e))

    def _port_flags(self, endpoint: Endpoint) -> tuple[bool, bool]:
        """(hairpin, isolated) for the endpoint's bridge port: hairpin so it can
        reach its own published ports, isolated when its network has no ICC."""
        return bool(endpoint.ports), not self.nets[endpoint.network].icc

    def attach(self, req: AttachRequest, wait: bool = True) -> Endpoint:
        """wait=False: raise Busy, having done nothing, rather than wait for
        another call on the same container id."""
        started = time.perf_counter()
        net = self.network(req.network)
        if net.cluster and self.cluster and self.cluster.lost:
            raise FailedPrecondition(f"network {net.name} takes no attaches: {self.cluster.lost}")
        with self._id_locks.hold(req.container_id, wait):
            if self.store.get(net.name, req.container_id) is not None:
                raise AlreadyAttached(f"container {req.container_id} is already attached to network {net.name}")
            with self.namespaces.open_netns(req.pid, req.netns_path) as ns, ExitStack() as undo:
                endpoint = self._reserve(net, req, ns.id)
                undo.callback(self._unpublish, endpoint)  # undone last: once the record is gone
                undo.callback(self._quietly, "release address", self.store.remove, *endpoint.key)
                if endpoint.ports and self.host_ports:
                    self.host_ports.hold(endpoint.key, endpoint.ports, dual_stack=endpoint.dual_stack)
                ifindex = self._plug(endpoint, ns.fd)
                undo.callback(self._unplug, endpoint)
                if endpoint.ports:
                    self.sync_firewall(endpoint)
                endpoint = self.store.mark_ready(*endpoint.key, ifindex)
                if net.dns and self.dns:  # its names answer before the attach returns
                    self.dns.add(endpoint)
                undo.pop_all()
        log.info("attached", container_id=req.container_id, network=net.name, address=str(endpoint.address),
                 host_ifname=endpoint.host_ifname, owner=req.owner, ms=_ms(started))
        self._publish("attached", endpoint)
        return endpoint

    def _reserve(self, net: NetworkConfig, req: AttachRequest, nsid: NetnsId) -> Endpoint:
        """Pick the address and reserve it, with the endpoint, before touching
        the kernel. The store writes the record once the endpoint is ready:
        an attach a crash interrupts leaves no record, and reconcile deletes
        its netd-named veth and pinned neighbour entries as orphans."""
        with self._alloc_lock:
            if net.name not in self.nets:
                raise NetworkNotFound(f"network {net.name} was deleted")
            used = self.store.used_addresses(net.name)
            if len(used) >= BRIDGE_MAX_PORTS:
                raise BridgeFull(f"bridge {net.bridge} has {len(used)} ports, the kernel's limit")
            self._refuse_published(req.ports, net)
            address = ipam.pick(net, used, self.store.last_reserved(net.name), req.ip_address)
            endpoint = Endpoint(
                container_id=req.container_id,
                network=net.name,
                ifname=req.ifname,
                host_ifname=host_ifname_for(req.container_id, net.name, self.mark),
                address=net.interface_for(address),
                gateway=net.gateway,
                mac_address=mac_for(address),
                pid=req.pid,
                netns_path=req.netns_path,
                netns_id=nsid,
                created_at=now(),
                owner=req.owner,
                ports=req.ports,
                address6=net.address6_for(address),
                gateway6=net.gateway6,
                name=req.name,
                aliases=req.aliases,
            )
            self.store.add(endpoint)
        return endpoint

    def _refuse_published(self, ports: tuple[PortMapping, ...], net: NetworkConfig) -> None:
        if ports and self.firewall.name == "none":
            raise FailedPrecondition("ports cannot be published: netd runs with --firewall none")
        if ports and net.internal:
            raise FailedPrecondition(f"ports cannot be published: network {net.name} is internal (no way in or out)")
        publishers = [e for e in self.store.list() if e.ports] if ports else []
        for i, mapping in enumerate(ports):
            for other in publishers:
                clash = next((m for m in other.ports if m.overlaps(mapping)), None)
                if clash is not None:
                    raise AlreadyExists(
                        f"ports[{i}] {mapping}: host port {clash.host_ip or '0.0.0.0'}:"
                        f"{max(clash.host_port, mapping.host_port)}/{mapping.protocol} is already published "
                        f"by container {other.container_id} ({clash})"
                    )

    def _plug(self, endpoint: Endpoint, ns_fd: int) -> int:
        """Create the veth and configure the container side; undo it all on failure."""
        net = self.nets[endpoint.network]
        bridge = self._bridges[net.name]
        ifindex, peer_index = self.links.create_veth(endpoint.host_ifname, endpoint.ifname, ns_fd, bridge, net.mtu,
                                                     endpoint.mac_address, self.mark, *self._port_flags(endpoint))
        try:
            self.links.configure_container_side(ns_fd, endpoint, peer_index, self._route_metric[net.name])
            # A gratuitous ARP floods every port of the bridge (5 ms of kernel
            # work at 1000 ports), and MACs derived from addresses keep every
            # neighbour entry right when an address is reused: announce only
            # when the host held another MAC for it (a holder netd did not plug).
            if self.links.settle_port(bridge, ifindex, endpoint):
                self.links.announce(ns_fd, endpoint)
        except BaseException:
            self._unplug(endpoint)
            raise
        return ifindex

    def _unplug(self, endpoint: Endpoint) -> None:
        """Undo _plug, quietly: the veth, the host's neighbour entries."""
        self._quietly("delete veth", self.links.delete_link, endpoint.host_ifname)
        self._forget_neighbours(endpoint)

    def _forget_neighbours(self, endpoint: Endpoint) -> None:
        bridge = self._bridges.get(endpoint.network)
        if bridge:  # else its network is no longer configured, its bridge not netd's
            self._quietly("forget neighbours", self.links.forget_neighbours, bridge, endpoint)

    # -- detach / list ---------------------------------------------------

    def detach(self, container_id: str, network: str = "") -> int:
        """Detach the container from one network, or from all when network is
        "". Returns how many endpoints were detached (0: none was attached)."""
        started = time.perf_counter()
        net_name = self.network(network).name if network else ""
        with self._id_locks.hold(container_id):
            endpoints = [e for e in self.store.of_container(container_id) if not net_name or e.network == net_name]
            for endpoint in endpoints:
                # The address is released only once the device is really gone.
                self.links.delete_link(endpoint.host_ifname)
                self._forget_neighbours(endpoint)
                self._forget(endpoint, "detached")
                log.info("detached", container_id=container_id, network=endpoint.network,
                         address=str(endpoint.address), owner=endpoint.owner, ms=_ms(started))
        return len(endpoints)

    def _forget(self, endpoint: Endpoint, kind: str, detail: str = "") -> None:
        """Its veth is gone: the endpoint's address, published ports and names go too."""
        self.store.remove(*endpoint.key)
        self._unpublish(endpoint)
        if self.dns:
            self._quietly("forget DNS names", self.dns.remove, endpoint)
        self._publish(kind, endpoint, detail=detail)

    def _publish(self, kind: str, endpoint: Endpoint | None = None, network: str = "", detail: str = "") -> None:
        if self.events is not None:
            self.events.publish(Event(kind, endpoint.network if endpoint else network,
                                      endpoint.container_id if endpoint else "",
                                      str(endpoint.address.ip) if endpoint else "", detail,
                                      endpoint.owner if endpoint else ""))

    def list(self, network: str = "") -> list[Endpoint]:
        return self.store.list(self.network(network).name if network else None)

    def endpoint(self, container_id: str, network: str = "") -> Endpoint:
        """The container's endpoint on a network; with network "" its only one."""
        if network:
            found = self.store.get(self.network(network).name, container_id)
            if found is None:
                raise EndpointNotFound(f"container {container_id} is not attached to network {network}")
            return found
        endpoints = self.store.of_container(container_id)
        if not endpoints:
            raise EndpointNotFound(f"container {container_id} is not attached")
        if len(endpoints) > 1:
            names = ", ".join(sorted(e.network for e in endpoints))
            raise InvalidArgument(f"container {container_id} is attached to networks {names}: name the network")
        return endpoints[0]

    def inspect(self, container_id: str, network: str = "") -> Inspection:
        """The record and what the kernel shows for it now."""
        endpoint = self.endpoint(container_id, network)
        view = None
        try:
            with self._endpoint_netns(endpoint) as ns:
                view = self.links.container_view(ns.fd, endpoint.ifname)
        except NetdError:
            pass
        return Inspection(endpoint, self.links.host_link(endpoint.host_ifname), view)

    @contextmanager
    def _endpoint_netns(self, endpoint: Endpoint) -> Iterator[Any]:
        """The endpoint's netns, opened again by its pid or path, if it is still the same one."""
        with self.namespaces.open_netns(endpoint.pid, endpoint.netns_path) as ns:
            if ns.id != endpoint.netns_id:
                raise FailedPrecondition("netns changed (PID reused)")
            yield ns

    def check(self, container_id: str, network: str = "") -> list[str]:
        """Where the kernel no longer gives the endpoint its network: both
        ends of its veth, its bridge, forwarding, and inside the container
        its address, route and gateway's neighbour entry. Empty when all is well."""
        found = self.inspect(container_id, network)
        e = found.endpoint
        net = self.nets[e.network]
        problems = []
        host = found.host_link
        if host is None:
            problems.append(f"host: veth {e.host_ifname} is missing")
        elif host.master != self._bridges.get(e.network):
            problems.append(f"host: veth {e.host_ifname} is not a port of bridge {net.bridge}")
        elif not host.up:
            problems.append(f"host: veth {e.host_ifname} is down")
        bridge = self.links.bridge_problem(net, self._bridges[net.name], self.mark)
        if bridge:
            problems.append(f"host: bridge {net.bridge}: {bridge}")
        problems += [f"host: {text}" for text in self._forwarding_off()]
        if found.container is None:
            problems.append("container: network namespace is gone or no longer at its pid/path")
        else:
            problems += found.container.problems(e)
        return problems

    def responsive(self, timeout: float) -> bool:
        """Can a call get through allocation now? (for the systemd watchdog)"""
        if not self._alloc_lock.acquire(timeout=timeout):
            return False
        self._alloc_lock.release()
        return True

    def pool_usage(self, network: str) -> tuple[int, int]:
        """Addresses used and free in the network's pool."""
        net = self.network(network)
        used = len(self.store.used_addresses(net.name))
        return used, ipam.capacity(net) - used

    # -- reconcile -------------------------------------------------------

    def _unpublish(self, endpoint: Endpoint) -> None:
        """After the record is gone. A failure leaves stale rules that the
        healer removes on its next check, so it is logged, not raised."""
        if endpoint.ports:
            if self.host_ports:
                self.host_ports.release(endpoint.key)
            self._quietly("unpublish ports", self.sync_firewall, endpoint)

    def _quietly(self, what: str, fn: Any, *args: Any) -> Any:
        """Run an undo step; a failure is logged (and None returned), never hides the original error."""
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - rollback keeps going
            log.error("rollback_failed", step=what, target=str(args[0]) if args else "", error=str(e))
            return None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
