"""Netlink steps on the host and inside containers.

pyroute2 speaks netlink here; the attach and detach requests go through
fastpath.py instead (see there why). pyroute2's sync IPRoute belongs to the
thread that made it and runs an event loop of its own, so each thread keeps
one for the host (never the gRPC loop's thread: only fastpath runs there),
and one is made per look inside a container, on a socket created in its
netns (IPRoute(netns=...) would fork).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_address, ip_interface, ip_network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as LibraryError

from netd import notify
from netd.errors import AlreadyExists, FailedPrecondition, KernelError
from netd.kernel import netns
from netd.kernel.fastpath import RTPROT_NETD, IPAddress, IPInterface, NetlinkError, Rtnl
from netd.model import HOST_IFNAME_PREFIX, Endpoint, Link, NetworkConfig, mac_for

_local = threading.local()
DEFAULT_MTU = 1500
MAIN_TABLE = 254
NUD_PERMANENT = 0x80
IFA_F_NODAD = 0x02


def _rtnl() -> Rtnl:
    sock = getattr(_local, "rtnl", None)
    if sock is None:
        sock = _local.rtnl = Rtnl()
    return sock


def host_ipr() -> IPRoute:
    ipr = getattr(_local, "ipr", None)
    if ipr is None:
        ipr = _local.ipr = IPRoute()
    return ipr


@contextlib.contextmanager
def _inside(ns_fd: int) -> Iterator[IPRoute]:
    ipr = IPRoute(use_socket=netns.socket_in(ns_fd, kind=socket.SOCK_DGRAM))
    try:
        yield ipr
    finally:
        ipr.close()


@contextlib.contextmanager
def failing_as(what: str) -> Iterator[None]:
    """pyroute2's errors as netd's: 'failed to WHAT: cause'."""
    try:
        yield
    except LibraryError as e:
        raise KernelError(f"failed to {what}: {os.strerror(e.code)}") from e


STATS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped")


def _link(msg) -> Link:
    stats = msg.get("stats64") or {}
    return Link(msg["index"], msg.get("ifname") or "", msg["flags"], msg.get("mtu") or 0, msg.get("master") or 0,
                msg.get(("linkinfo", "kind")) or "", msg.get("address") or "", tuple(stats.get(k, 0) for k in STATS),
                msg.get("ifalias") or "")


def get_link(ipr: IPRoute, **key: object) -> Link | None:
    try:
        (msg,) = ipr.link("get", **key)
    except LibraryError as e:
        if e.code == errno.ENODEV:
            return None
        raise
    return _link(msg)


def _addresses(ipr: IPRoute, index: int) -> list[IPInterface]:
    return [ip_interface((a.get("address"), a["prefixlen"])) for a in ipr.addr("dump") if a["index"] == index]


def _gateways(net: NetworkConfig) -> list[IPInterface]:
    """The bridge's addresses: the gateway, and in dual stack the IPv6 gateway."""
    found: list[IPInterface] = [net.interface_for(net.gateway)]
    if net.subnet6 is not None:
        found.append(net.address6_for(net.gateway))
    return found


def ensure_bridge(net: NetworkConfig, mark: str, adopt_unmarked: bool = False) -> int:
    """Create the bridge, or take up the one netd made before (its alias is
    `mark`): gateway address, MTU, pinned MAC, multicast snooping, up.
    adopt_unmarked: a bridge without any alias is netd's too (one made by a
    netd from before marks, whose state dir this is): mark it."""
    ipr = host_ipr()
    # An explicitly set MAC stops the bridge from taking the lowest port's
    # MAC, which would change whenever containers come and go.
    mac = mac_for(net.gateway)
    with failing_as(f"set up bridge {net.bridge}"):
        link = claim_link(ipr, net.bridge, "bridge", mark, f"bridge {net.bridge} of network {net.name}",
                          adopt_unmarked, address=mac, mtu=net.mtu)
        # Setting a MAC, even the same one, flushes every neighbour entry on
        # the bridge, the pinned ones too: only when it differs.
        changes = {"address": mac} if link.mac != mac else {}
        ipr.link("set", index=link.index, kind="bridge", mtu=net.mtu, state="up", ifalias=mark,
                 br_mcast_snooping=int(net.multicast_snooping), **changes)
        present = _addresses(ipr, link.index)
        for gateway in _gateways(net):
            if gateway not in present:
                # No duplicate address detection: an IPv6 gateway is usable at once, not "tentative" for a second.
                ipr.addr("add", index=link.index, address=str(gateway.ip), prefixlen=gateway.network.prefixlen,
                         flags=IFA_F_NODAD if gateway.version == 6 else 0)
        return link.index


def claim_link(ipr: IPRoute, name: str, kind: str, mark: str, what: str, adopt_unmarked: bool = False,
               **create: object) -> Link:
    """The link `name` of `kind` that netd made (its alias is `mark`),
    created with `create` if there is none; the caller then sets the alias,
    which the kernel ignores at creation. adopt_unmarked: one without any
    alias is netd's too. Anything else holding the name is refused."""
    link, created = get_link(ipr, ifname=name), False
    if link is None:
        try:
            ipr.link("add", ifname=name, kind=kind, **create)
            created = True
        except LibraryError as e:
            if e.code != errno.EEXIST:  # else someone made one meanwhile: looked at below
                raise
        link = get_link(ipr, ifname=name)
    if link is None or link.kind != kind or link.alias not in (mark, "" if created or adopt_unmarked else mark):
        raise FailedPrecondition(f"{what}: {in_the_way(link, mark)}")
    return link


def in_the_way(link: Link | None, mark: str) -> str:
    """Why netd will not use the interface holding a name it needs."""
    if link is None:
        return "the interface vanished while netd set it up"
    found = f"a {link.kind or 'device'} with alias {link.alias!r}" if link.alias else f"a {link.kind or 'device'}"
    return f"{found} holds the name, and netd did not create it (netd marks what it creates with alias {mark!r})"


def bridge_problem(net: NetworkConfig, index: int, mark: str) -> str:
    """What is wrong with the network's bridge, netd's under `index`: "" if nothing."""
    ipr = host_ipr()
    with failing_as(f"read bridge {net.bridge}"):
        link = get_link(ipr, ifname=net.bridge)
        if link is None:
            return "missing"
        if link.alias != mark or link.kind != "bridge":
            return in_the_way(link, mark)
        if link.index != index:
            return "deleted and created again"
        if not link.up:
            return "down"
        missing = set(_gateways(net)) - set(_addresses(ipr, index))
        return f"lacks gateway address {', '.join(map(str, sorted(missing, key=str)))}" if missing else ""


def delete_bridge(name: str, mark: str) -> None:
    """Delete a bridge netd made (it carries `mark`); anything else by that name stays."""
    ipr = host_ipr()
    with failing_as(f"delete bridge {name}"):
        link = get_link(ipr, ifname=name)
        if link is not None and link.kind == "bridge" and link.alias == mark:
            ipr.link("del", index=link.index)


def host_prefixes() -> list[IPv4Network]:
    """The IPv4 networks of the host's addresses and routes (not netd's cluster routes)."""
    ipr = host_ipr()
    with failing_as("list addresses and routes"):
        found = [ip_interface((a.get("address"), a["prefixlen"])).network for a in ipr.addr("dump", family=socket.AF_INET)]
        found += [_route(r).dst for r in main_routes(ipr, family=socket.AF_INET)
                  if r.get("proto") != RTPROT_NETD and r["dst_len"]]
    return [n for n in found if not n.is_loopback]


def set_up(name: str) -> None:
    with failing_as(f"set {name} up"):
        host_ipr().link("set", ifname=name, state="up")


def mark_link(index: int, mark: str) -> None:
    """Mark a link netd made as netd's (its alias)."""
    with failing_as(f"mark link {index}"):
        host_ipr().link("set", index=index, ifalias=mark)


def enslave(name: str, bridge_index: int, hairpin: bool = False, isolated: bool = False) -> None:
    ipr = host_ipr()
    with failing_as(f"attach {name} to the bridge"):
        ipr.link("set", ifname=name, master=bridge_index, state="up")
        ipr.brport("set", ifname=name, mode=int(hairpin), isolated=int(isolated))


def create_veth(host_ifname: str, peer_ifname: str, ns_fd: int, bridge_index: int, mtu: int, mac: str,
                mark: str, hairpin: bool = False, isolated: bool = False) -> tuple[int, int]:
    """The pair, its peer already in the container netns, the host end down
    on the bridge (settle_port sets it up), without IPv6 and marked netd's
    (alias `mark`). Returns the host end's index and the peer's.

    hairpin: the port may send a frame back where it came from (a container
    reaching its own published port when br_netfilter DNATs bridged traffic).
    isolated: no frames to other isolated ports (inter-container traffic off).

    A netd veth already holding the name is one an attach a crash
    interrupted left behind (the caller holds the container id, which has
    no endpoint): it is deleted and the pair created again.
    """
    rtnl = _rtnl()
    for leftover in (True, False):
        try:
            indexes = rtnl.create_veth(host_ifname, peer_ifname, ns_fd, bridge_index, mtu, mac, hairpin, isolated, mark)
            break
        except NetlinkError as e:
            if e.errno != errno.EEXIST:
                raise KernelError(f"failed to create veth {host_ifname}: {e.strerror}") from e
            alias = rtnl.link_alias(host_ifname)
            if alias is None:
                raise AlreadyExists(f"ifname {peer_ifname} already exists in the container's network namespace") from None
            if alias != mark:
                raise FailedPrecondition(f"host interface {host_ifname}: "
                                         f"{in_the_way(Link(0, host_ifname, 0, 0, 0, '', alias=alias), mark)}") from None
            if not leftover:
                raise KernelError(f"failed to create veth {host_ifname}: netd's leftover came back") from None
            delete_link(host_ifname)
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
    winning), on the container's link `index`."""
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
    """A gratuitous ARP from the container, now that its port forwards: with
    arp_notify on, setting the MAC again makes the kernel announce the
    address (and no AF_PACKET socket, whose close would wait for an RCU
    grace period). arp_notify's own announcement at link up went out before
    the bridge enabled the host end's port, and was lost."""
    netns.write_sysctl_in(ns_fd, f"ipv4/conf/{endpoint.ifname}/arp_notify", "1")
    with Rtnl(netns.socket_in(ns_fd)) as rtnl:
        try:
            index = rtnl.link_index(endpoint.ifname)
            if index is not None:
                rtnl.set_mac(index, endpoint.mac_address)
        except NetlinkError as err:
            raise KernelError(f"failed to announce {endpoint.address.ip} from the container: {err.strerror}") from err


@dataclass(frozen=True)
class Route:
    dst: IPv4Network
    gateway: IPAddress | None


@dataclass(frozen=True)
class ContainerView:
    """What the kernel shows inside a container for its interface."""

    link: Link | None
    addresses: list[IPInterface]
    routes: list[Route]
    neighbours: set[IPAddress] = frozenset()  # with a permanent entry on the link

    def problems(self, endpoint: Endpoint) -> list[str]:
        ifname = endpoint.ifname
        if self.link is None:
            return [f"container: no interface {ifname}"]
        found = []
        if not self.link.up:
            found.append(f"container: {ifname} is down")
        for address in (endpoint.address, endpoint.address6):
            if address and address not in self.addresses:
                found.append(f"container: {ifname} lacks address {address}")
        for gateway in (endpoint.gateway, endpoint.gateway6):
            if gateway and not any(r.dst.prefixlen == 0 and r.gateway == gateway for r in self.routes):
                found.append(f"container: no default route via {gateway}")
            if gateway and gateway not in self.neighbours:
                found.append(f"container: no pinned neighbour entry for gateway {gateway}")
        return found


def _route(msg) -> Route:
    dst, gateway = msg.get("dst"), msg.get("gateway")
    family_zero = "::" if msg["family"] == socket.AF_INET6 else "0.0.0.0"
    return Route(ip_network((dst or family_zero, msg["dst_len"]), strict=False),
                 ip_address(gateway) if gateway else None)


def permanent_neighbours(ipr: IPRoute, index: int, family: int = socket.AF_UNSPEC, protocol: int | None = None) -> list:
    """The permanent neighbour entries on link `index` (only `protocol`'s, if given)."""
    return [n for n in ipr.neigh("dump", family=family) if n["ifindex"] == index and n["state"] & NUD_PERMANENT
            and n.get("dst") and (protocol is None or n.get("protocol") == protocol)]


def main_routes(ipr: IPRoute, **match: object) -> list:
    return [r for r in ipr.route("dump", family=socket.AF_UNSPEC) if r.get("table") == MAIN_TABLE
            and all(r.get(k) == v for k, v in match.items())]


def container_view(ns_fd: int, ifname: str) -> ContainerView:
    with _inside(ns_fd) as ipr, failing_as(f"read {ifname} in the container"):
        link = get_link(ipr, ifname=ifname)
        if link is None:
            return ContainerView(None, [], [])
        pinned = {ip_address(n.get("dst")) for n in permanent_neighbours(ipr, link.index)}
        return ContainerView(link, _addresses(ipr, link.index), [_route(r) for r in main_routes(ipr, oif=link.index)],
                             pinned)


def _ips(endpoint: Endpoint) -> list[IPAddress]:
    return [a.ip for a in (endpoint.address, endpoint.address6) if a]


def settle_port(bridge_index: int, index: int, endpoint: Endpoint) -> bool:
    """Set the host end up, have the bridge forward it now and pin the host's neighbour
    entries for the endpoint (see Rtnl.settle_port); did the host hold
    another MAC for its address (a previous holder's)?"""
    try:
        held = _rtnl().settle_port(index, bridge_index, _ips(endpoint), endpoint.mac_address)
    except NetlinkError as e:
        raise KernelError(f"failed to bring up the bridge port of {endpoint.address.ip}: {e.strerror}") from e
    return held is not None and held != endpoint.mac_address


def pinned_neighbours(bridge_index: int) -> set[IPAddress]:
    """Addresses with a permanent neighbour entry netd made (its protocol) on the bridge."""
    with failing_as(f"list the neighbour entries of bridge {bridge_index}"):
        return {ip_address(n.get("dst")) for n in permanent_neighbours(host_ipr(), bridge_index, protocol=RTPROT_NETD)}


def pin_neighbours(bridge_index: int, endpoints: list[Endpoint]) -> None:
    """Make the host's pinned neighbour entries on the bridge exactly the
    endpoints' (see Rtnl.settle_port): pin those missing, delete netd's
    others (those of an attach a crash interrupted, which left no record)."""
    wanted = {a: e.mac_address for e in endpoints for a in _ips(e)}
    pinned = pinned_neighbours(bridge_index)
    ipr = host_ipr()
    with failing_as(f"pin the neighbour entries of {len(endpoints)} endpoints"):
        for address in wanted.keys() - pinned:
            _pin(ipr, bridge_index, address, wanted[address])
        for address in pinned - wanted.keys():
            ipr.neigh("del", dst=str(address), ifindex=bridge_index, family=_family(address))


def _family(address: IPAddress) -> int:
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def _pin(ipr: IPRoute, bridge_index: int, address: IPAddress, mac: str) -> None:
    ipr.neigh("replace", dst=str(address), lladdr=mac, ifindex=bridge_index, state="permanent",
              family=_family(address), protocol=RTPROT_NETD)


_neighbour_deletions = notify.Notifications(socket.NETLINK_ROUTE, notify.RTMGRP_NEIGH, only=notify.RTM_DELNEIGH)


def neighbours_deleted() -> bool:
    """Were neighbour entries deleted (by anyone) since the last call?"""
    return _neighbour_deletions.arrived()


def unpinned(bridge_index: int, endpoints: list[Endpoint]) -> list[Endpoint]:
    """The endpoints whose pinned neighbour entries on the bridge are (partly) gone."""
    pinned = pinned_neighbours(bridge_index)
    return [e for e in endpoints if not pinned.issuperset(_ips(e))]


def repin(bridge_index: int, endpoint: Endpoint) -> None:
    """Pin the host's neighbour entries for the endpoint again."""
    ipr = host_ipr()
    with failing_as(f"pin the neighbour entry of {endpoint.address.ip}"):
        for address in _ips(endpoint):
            _pin(ipr, bridge_index, address, endpoint.mac_address)


def forget_neighbours(bridge_index: int, endpoint: Endpoint) -> None:
    """Delete the host's pinned neighbour entries for the endpoint."""
    try:
        _rtnl().forget_neighbours(bridge_index, _ips(endpoint))
    except NetlinkError as e:
        raise KernelError(f"failed to delete the neighbour entry of {endpoint.address.ip}: {e.strerror}") from e


def host_link(name: str) -> Link | None:
    with failing_as(f"read link {name}"):
        return get_link(host_ipr(), ifname=name)


def link_index(name: str) -> int | None:
    """The index of a host link; None if there is none. (Cheap enough to ask per endpoint.)"""
    try:
        return _rtnl().link_index(name)
    except NetlinkError as e:
        raise KernelError(f"failed to read link {name}: {e.strerror}") from e


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


def delete_link_index(index: int) -> bool:
    """Delete a link by index, alone (garbage collection); False when it was already gone."""
    try:
        host_ipr().link("del", index=index)
    except LibraryError as e:
        if e.code == errno.ENODEV:
            return False
        raise KernelError(f"failed to delete link {index}: {os.strerror(e.code)}") from e
    return True


def host_veths(mark: str) -> tuple[dict[str, Link], dict[str, str]]:
    """netd-named links on the host: (name → link, of the veths netd made,
    marked `mark`; name → alias, of those it did not). A dump of every link
    (~0.3 ms each through pyroute2): for garbage collection, not start-up."""
    with failing_as("list links"):
        links = [_link(msg) for msg in host_ipr().link("dump")]
    named = [link for link in links if link.name.startswith(HOST_IFNAME_PREFIX)]
    ours = {link.name: link for link in named if link.alias == mark and link.kind == "veth"}
    return ours, {link.name: link.alias for link in named if link.name not in ours}


def _uplinks(family: int) -> list[Link]:
    """The interfaces holding the main table's default routes of `family`."""
    ipr = host_ipr()
    with failing_as("find the uplink"):
        found = [get_link(ipr, index=r.get("oif")) for r in main_routes(ipr, dst_len=0, family=family) if r.get("oif")]
    return [link for link in found if link is not None and link.name != "lo"]


def uplink_mtu() -> int:
    """MTU of the interface holding the main table's IPv4 default route."""
    found = _uplinks(socket.AF_INET)
    return (found[0].mtu or DEFAULT_MTU) if found else DEFAULT_MTU


def ipv4_uplink() -> str:
    """The interface holding the main table's IPv4 default route; "" if none."""
    found = _uplinks(socket.AF_INET)
    return found[0].name if found else ""


def uplinks() -> list[str]:
    """Names of the interfaces holding a default route, IPv6 or IPv4."""
    return list(dict.fromkeys(link.name for family in (socket.AF_INET6, socket.AF_INET) for link in _uplinks(family)))


def overlapping(subnet: IPv4Network, bridge: str) -> list[str]:
    """Addresses and routes on interfaces other than the bridge that overlap
    the subnet (but netd's own routes to a cluster's hosts, which netd
    itself keeps in step with etcd)."""
    ipr = host_ipr()
    with failing_as("list addresses and routes"):
        names: dict[int, str] = {}

        def name(index: int) -> str:
            if index not in names:
                link = get_link(ipr, index=index) if index else None
                names[index] = link.name if link else ""
            return names[index]

        found: dict[IPv4Network, str] = {}
        for addr in ipr.addr("dump", family=socket.AF_INET):
            address = ip_interface((addr.get("address"), addr["prefixlen"]))
            if address.network.overlaps(subnet) and name(addr["index"]) not in (bridge, "lo"):
                found[address.network] = f"address {address} on {name(addr['index'])}"
        for route in main_routes(ipr, family=socket.AF_INET):
            if route.get("proto") == RTPROT_NETD:
                continue
            dst = _route(route).dst
            oif = route.get("oif") or 0
            if dst.prefixlen and dst.overlaps(subnet) and name(oif) not in (bridge, "lo"):
                found.setdefault(dst, f"route {dst} via {name(oif)}")
        return list(found.values())


