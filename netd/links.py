"""Netlink steps on the host and inside containers, through rtnl.py's
hand-built messages (pyroute2's high-level calls cost several milliseconds per
attach in Python, and its import a fifth of a second at start).

One socket per thread: gRPC workers are long-lived, so each keeps its own.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import socket
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_address

from netd import netns, watch
from netd.errors import AlreadyExists, FailedPrecondition, KernelError
from netd.model import HOST_IFNAME_PREFIX, Endpoint, NetworkConfig, mac_for
from netd.rtnl import IFF_UP, IPAddress, IPInterface, Link, NetlinkError, Route, Rtnl

_local = threading.local()
DEFAULT_MTU = 1500
MAIN_TABLE = 254


def _rtnl() -> Rtnl:
    sock = getattr(_local, "rtnl", None)
    if sock is None:
        sock = _local.rtnl = Rtnl()
    return sock


def _has_address(rtnl: Rtnl, index: int, address: IPInterface) -> bool:
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return any(a.index == index and a.address == address for a in rtnl.addresses(family))


def _gateways(net: NetworkConfig) -> list[IPInterface]:
    """The bridge's addresses: the gateway, and in dual stack the IPv6 gateway."""
    found: list[IPInterface] = [net.interface_for(net.gateway)]
    if net.subnet6 is not None:
        found.append(net.address6_for(net.gateway))
    return found


def ensure_bridge(net: NetworkConfig) -> int:
    """Create or adopt the bridge: gateway address, MTU, pinned MAC, multicast snooping, up."""
    rtnl = _rtnl()
    # An explicitly set MAC stops the bridge from taking the lowest port's
    # MAC, which would change whenever containers come and go.
    mac = mac_for(net.gateway)
    try:
        link = rtnl.link(net.bridge)
        if link is None:
            try:
                rtnl.create_bridge(net.bridge, mac, net.mtu)
            except NetlinkError as e:
                if e.errno != errno.EEXIST:
                    raise
            link = rtnl.link(net.bridge)
        if link is None or link.kind != "bridge":
            kind = (link.kind if link else "") or "unknown"
            raise FailedPrecondition(f"bridge {net.bridge}: an interface of kind {kind} already has that name")
        # Setting a MAC, even the same one, flushes every neighbour entry on
        # the bridge, the pinned ones too: only when it differs.
        rtnl.set_bridge(link.index, mac if link.mac != mac else "", net.mtu, net.multicast_snooping)
        for gateway in _gateways(net):
            if not _has_address(rtnl, link.index, gateway):
                rtnl.add_address(link.index, gateway)
        return link.index
    except NetlinkError as e:
        raise KernelError(f"failed to set up bridge {net.bridge}: {e.strerror}") from e


def bridge_intact(net: NetworkConfig, index: int) -> bool:
    """Is the bridge still there under the same index, up, with the gateway address?"""
    rtnl = _rtnl()
    link = rtnl.link(net.bridge)
    return (link is not None and link.index == index and bool(link.flags & IFF_UP)
            and all(_has_address(rtnl, index, gateway) for gateway in _gateways(net)))


def enslave(name: str, bridge_index: int, hairpin: bool = False, isolated: bool = False) -> None:
    try:
        _rtnl().set_master(name, bridge_index, hairpin, isolated)
    except NetlinkError as e:
        raise KernelError(f"failed to attach {name} to the bridge: {e.strerror}") from e


def create_veth(host_ifname: str, peer_ifname: str, ns_fd: int, bridge_index: int, mtu: int, mac: str,
                hairpin: bool = False, isolated: bool = False) -> tuple[int, int]:
    """The pair, its peer already in the container netns, the host end down
    on the bridge (settle_port sets it up) and without IPv6. Returns the host
    end's index and the peer's.

    hairpin: the port may send a frame back where it came from (a container
    reaching its own published port when br_netfilter DNATs bridged traffic).
    isolated: no frames to other isolated ports (inter-container traffic off).
    """
    rtnl = _rtnl()
    try:
        indexes = rtnl.create_veth(host_ifname, peer_ifname, ns_fd, bridge_index, mtu, mac, hairpin, isolated)
    except NetlinkError as e:
        if e.errno == errno.EEXIST:
            if rtnl.link_index(host_ifname) is not None:
                raise AlreadyExists(f"host interface {host_ifname} already exists") from None
            raise AlreadyExists(f"ifname {peer_ifname} already exists in the container's network namespace") from None
        raise KernelError(f"failed to create veth {host_ifname}: {e.strerror}") from e
    if indexes is None:
        raise KernelError(f"failed to create veth {host_ifname}: it vanished (container exited?)")
    _disable_ipv6(host_ifname)
    return indexes


def _disable_ipv6(name: str) -> None:
    """A bridge port needs no IPv6 of its own, and with it each port coming
    up adds a multicast route to the host's one IPv6 table and walks all of
    it, so attach and detach grew with the bridge's ports. Only a sysctl
    does this, and only before the link is up. Best effort: without it the
    port works, at that cost (and the file is absent when IPv6 is).
    os.open and os.write: half the cost of a buffered text file (~25 µs)."""
    with contextlib.suppress(OSError):
        fd = os.open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"1")
        finally:
            os.close(fd)


def configure_container_side(ns_fd: int, endpoint: Endpoint, index: int, metric: int = 0) -> None:
    """Addresses, link up, lo up, default routes (with `metric`, so a
    container on several networks has one per network, the lowest metric
    winning); arp_notify on; on the container's link `index`."""
    e = endpoint
    with Rtnl(netns.socket_in(ns_fd)) as rtnl:
        try:
            rtnl.configure(index, [a for a in (e.address, e.address6) if a], [g for g in (e.gateway, e.gateway6) if g],
                           mac_for(e.gateway), metric)
        except NetlinkError as err:
            if err.errno == errno.EEXIST and err.step:
                # e.g. a second container id attached to the same netns on the same network
                raise AlreadyExists(f"the container's network namespace already has the {err.step}") from None
            raise KernelError(f"failed to configure {e.ifname} in the container: {err.step}: {err.strerror}") from err


def announce(ns_fd: int, endpoint: Endpoint) -> None:
    """A gratuitous ARP from the container, now that its port forwards.

    arp_notify's own announcement at link up goes out before the bridge has
    enabled the host end's port, and is lost. Setting the MAC again makes
    the kernel announce once more (and no AF_PACKET socket, whose close would
    wait for an RCU grace period)."""
    with Rtnl(netns.socket_in(ns_fd)) as rtnl:
        try:
            index = rtnl.link_index(endpoint.ifname)
            if index is not None:
                rtnl.set_mac(index, endpoint.mac_address)
        except NetlinkError as err:
            raise KernelError(f"failed to announce {endpoint.address.ip} from the container: {err.strerror}") from err


@dataclass(frozen=True)
class ContainerView:
    """What the kernel shows inside a container for its interface."""

    link: Link | None
    addresses: list[IPInterface]
    routes: list[Route]

    def problems(self, endpoint: Endpoint) -> list[str]:
        ifname = endpoint.ifname
        if self.link is None:
            return [f"container: no interface {ifname}"]
        found = []
        if not self.link.flags & IFF_UP:
            found.append(f"container: {ifname} is down")
        for address in (endpoint.address, endpoint.address6):
            if address and address not in self.addresses:
                found.append(f"container: {ifname} lacks address {address}")
        for gateway in (endpoint.gateway, endpoint.gateway6):
            if gateway and not any(r.dst.prefixlen == 0 and r.gateway == gateway for r in self.routes):
                found.append(f"container: no default route via {gateway}")
        return found


def container_view(ns_fd: int, ifname: str) -> ContainerView:
    with Rtnl(netns.socket_in(ns_fd)) as rtnl:
        link = rtnl.link(ifname)
        if link is None:
            return ContainerView(None, [], [])
        return ContainerView(
            link,
            [a.address for a in rtnl.addresses(socket.AF_UNSPEC) if a.index == link.index],
            [r for r in rtnl.routes(socket.AF_UNSPEC) if r.table == MAIN_TABLE and r.oif == link.index],
        )


def _addresses(endpoint: Endpoint) -> list[IPAddress]:
    return [a.ip for a in (endpoint.address, endpoint.address6) if a]


def settle_port(bridge_index: int, index: int, endpoint: Endpoint) -> bool:
    """Set the host end up, have the bridge forward it now and pin the host's neighbour
    entries for the endpoint (see Rtnl.settle_port); did the host hold
    another MAC for its address (a previous holder's)?"""
    try:
        held = _rtnl().settle_port(index, bridge_index, _addresses(endpoint), endpoint.mac_address)
    except NetlinkError as e:
        raise KernelError(f"failed to bring up the bridge port of {endpoint.address.ip}: {e.strerror}") from e
    return held is not None and held != endpoint.mac_address


def pin_neighbours(bridge_index: int, endpoints: list[Endpoint]) -> None:
    """Make the host's pinned neighbour entries on the bridge exactly the
    endpoints' (see Rtnl.settle_port): pin theirs, delete the others (those of
    an attach a crash interrupted, which left no record)."""
    entries = [(a, e.mac_address) for e in endpoints for a in _addresses(e)]
    rtnl = _rtnl()
    try:
        if entries:
            rtnl.pin_neighbours(bridge_index, entries)
        kept = {a.packed for a, _ in entries}
        stale = [ip_address(a) for a in rtnl.pinned_neighbours(bridge_index) - kept]
        if stale:
            rtnl.forget_neighbours(bridge_index, stale)
    except NetlinkError as e:
        raise KernelError(f"failed to pin the neighbour entries of {len(endpoints)} endpoints: {e.strerror}") from e


_neighbour_deletions = watch.Notifications(socket.NETLINK_ROUTE, watch.RTMGRP_NEIGH, only=watch.RTM_DELNEIGH)


def neighbours_deleted() -> bool:
    """Were neighbour entries deleted (by anyone) since the last call?"""
    return _neighbour_deletions.arrived()


def unpinned(bridge_index: int, endpoints: list[Endpoint]) -> list[Endpoint]:
    """The endpoints whose pinned neighbour entries on the bridge are (partly) gone."""
    try:
        pinned = _rtnl().pinned_neighbours(bridge_index)
    except NetlinkError as e:
        raise KernelError(f"failed to list the neighbour entries of bridge {bridge_index}: {e.strerror}") from e
    return [e for e in endpoints if not pinned.issuperset(a.packed for a in _addresses(e))]


def repin(bridge_index: int, endpoint: Endpoint) -> None:
    """Pin the host's neighbour entries for the endpoint again."""
    try:
        _rtnl().pin_neighbours(bridge_index, [(a, endpoint.mac_address) for a in _addresses(endpoint)])
    except NetlinkError as e:
        raise KernelError(f"failed to pin the neighbour entry of {endpoint.address.ip}: {e.strerror}") from e


def forget_neighbours(bridge_index: int, endpoint: Endpoint) -> None:
    """Delete the host's pinned neighbour entries for the endpoint."""
    try:
        _rtnl().forget_neighbours(bridge_index, _addresses(endpoint))
    except NetlinkError as e:
        raise KernelError(f"failed to delete the neighbour entry of {endpoint.address.ip}: {e.strerror}") from e


def host_link(name: str) -> Link | None:
    return _rtnl().link(name)


class _Reaper:
    """Deletes links in batches.

    Unregistering a netdevice waits for an RCU grace period (~24 ms here)
    under the rtnl lock, so deleting veths one by one caps detach at ~40/s
    however many callers there are. While one batch is being deleted the next
    requests queue up; then they are moved into a group of their own and
    deleted with one RTM_DELLINK by group, sharing one grace period. Every
    caller still returns only once its own link is gone.
    """

    GROUP_BASE = 0x6E640000  # "nd": link groups netd uses only for a moment

    def __init__(self) -> None:
        self._pending: list[tuple[str, Future]] = []
        self._cond = threading.Condition()
        self._batches = itertools.count()
        self._thread: threading.Thread | None = None

    def delete(self, name: str) -> bool:
        done: Future = Future()
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="link-reaper", daemon=True)
                self._thread.start()
            self._pending.append((name, done))
            self._cond.notify()
        return done.result()

    def _loop(self) -> None:
        rtnl = Rtnl()
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                batch, self._pending = self._pending, []
            try:
                self._delete_batch(rtnl, batch)
            except BaseException as e:  # noqa: BLE001 - callers must never hang
                for _, done in batch:
                    if not done.done():
                        done.set_exception(KernelError(f"failed to delete links: {e}"))

    def _delete_batch(self, rtnl: Rtnl, batch: list[tuple[str, Future]]) -> None:
        group = self.GROUP_BASE + next(self._batches) % 0x10000
        grouped = []
        for (name, done), err in zip(batch, rtnl.set_group([n for n, _ in batch], group)):
            if err == errno.ENODEV:
                done.set_result(False)
            elif err:
                done.set_exception(KernelError(f"failed to delete link {name}: {os.strerror(err)}"))
            else:
                grouped.append(done)
        if grouped:
            try:
                rtnl.delete_group(group)
            except NetlinkError as e:
                raise KernelError(f"failed to delete link group {group:#x}: {e.strerror}") from e
            for done in grouped:
                done.set_result(True)


_reaper = _Reaper()


def delete_link(name: str) -> bool:
    """Delete a link (batched with concurrent deletions); False when it was already gone."""
    return _reaper.delete(name)


def host_veths() -> dict[str, int]:
    """netd-named links on the host: name → ifindex."""
    return {link.name: link.index for link in _rtnl().links() if link.name.startswith(HOST_IFNAME_PREFIX)}


def uplink_mtu() -> int:
    """MTU of the interface holding the main table's IPv4 default route."""
    rtnl = _rtnl()
    mtus = {link.index: (link.name, link.mtu) for link in rtnl.links()}
    for route in rtnl.routes():
        name, mtu = mtus.get(route.oif, ("", 0))
        if route.table == MAIN_TABLE and route.dst.prefixlen == 0 and name not in ("", "lo"):
            return mtu or DEFAULT_MTU
    return DEFAULT_MTU


def overlapping(subnet: IPv4Network, bridge: str) -> list[str]:
    """Addresses and routes on interfaces other than the bridge that overlap the subnet."""
    rtnl = _rtnl()
    names = {link.index: link.name for link in rtnl.links()}
    found: dict[IPv4Network, str] = {}
    for addr in rtnl.addresses():
        name = names.get(addr.index, "")
        if name not in (bridge, "lo") and addr.address.network.overlaps(subnet):
            found[addr.address.network] = f"address {addr.address} on {name}"
    for route in rtnl.routes():
        name = names.get(route.oif, "")
        if (route.table == MAIN_TABLE and route.dst.prefixlen and name not in (bridge, "lo")
                and route.dst.overlaps(subnet)):
            found.setdefault(route.dst, f"route {route.dst} via {name}")
    return list(found.values())


def _enable(knob: str, what: str) -> None:
    try:
        with open(f"/proc/sys/net/{knob}", "w") as f:
            f.write("1")
    except OSError as e:
        raise KernelError(f"failed to enable {what}: {e.strerror}") from e


def enable_ip_forwarding(ipv6: bool = False) -> None:
    _enable("ipv4/ip_forward", "IPv4 forwarding")
    if ipv6:
        _enable("ipv6/conf/all/forwarding", "IPv6 forwarding")


def enable_route_localnet(bridge: str) -> None:
    _enable(f"ipv4/conf/{bridge}/route_localnet", f"route_localnet on {bridge}")
