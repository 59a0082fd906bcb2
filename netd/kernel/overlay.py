"""The host's side of a cluster, through pyroute2: netd's VXLAN device and
the routes, neighbour and forwarding-database entries that reach the other
hosts' subnets. Everything netd adds carries its marks: the device its alias,
routes and neighbour entries protocol 110 (RTPROT_NETD); the forwarding
entries live only on netd's own device."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_network

from pyroute2.netlink.exceptions import NetlinkError as LibraryError

from netd.errors import FailedPrecondition
from netd.kernel.fastpath import RTPROT_NETD
from netd.kernel.links import (
    MAIN_TABLE,
    NUD_PERMANENT,
    claim_link,
    failing_as,
    get_link,
    host_ipr,
    ipv4_uplink,
    main_routes,
    permanent_neighbours,
)

RTNH_F_ONLINK = 0x4
NTF_SELF = 0x2


@dataclass(frozen=True)
class Route:
    """A route netd keeps to another host's subnet."""

    dst: IPv4Network
    gateway: IPv4Address
    oif: int = 0  # 0: whichever interface reaches the gateway
    onlink: bool = False


def ensure_vxlan(name: str, vni: int, local: IPv4Address, port: int, mtu: int, mac: str, mark: str) -> int:
    """netd's VXLAN device (learning off: netd writes every entry), up;
    created, or taken up if it carries netd's mark. Returns its index."""
    ipr = host_ipr()
    with failing_as(f"set up VXLAN device {name}"):
        link = claim_link(ipr, name, "vxlan", mark, f"VXLAN device {name}", vxlan_id=vni, vxlan_local=str(local),
                          vxlan_port=port, vxlan_learning=0, address=mac, mtu=mtu)
        ipr.link("set", index=link.index, ifalias=mark, mtu=mtu, state="up")
        return link.index


def routes(cluster: IPv4Network) -> dict[IPv4Network, Route]:
    """netd's routes (its protocol) in the main table to subnets of the cluster's range."""
    found = {}
    with failing_as("list routes"):
        for r in main_routes(host_ipr(), family=socket.AF_INET, proto=RTPROT_NETD):
            dst = ip_network((r.get("dst") or "0.0.0.0", r["dst_len"]))
            if dst.subnet_of(cluster) and r.get("gateway"):
                found[dst] = Route(dst, IPv4Address(r.get("gateway")), r.get("oif") or 0,
                                   bool(r["flags"] & RTNH_F_ONLINK))
    return found


def set_route(route: Route) -> None:
    kwargs = {"oif": route.oif} if route.oif else {}
    with failing_as(f"add the route to {route.dst} via {route.gateway}"):
        host_ipr().route("replace", dst=str(route.dst), gateway=str(route.gateway), table=MAIN_TABLE,
                     proto=RTPROT_NETD, flags=RTNH_F_ONLINK if route.onlink else 0, **kwargs)


def delete_route(route: Route) -> None:
    try:
        host_ipr().route("del", dst=str(route.dst), gateway=str(route.gateway), table=MAIN_TABLE, proto=RTPROT_NETD)
    except LibraryError as e:
        if e.code != errno.ESRCH:  # gone already
            raise


def neighbours(index: int) -> dict[IPv4Address, str]:
    """The permanent entries netd made on the device: address → MAC."""
    with failing_as("list the VXLAN device's neighbour entries"):
        return {IPv4Address(n.get("dst")): n.get("lladdr")
                for n in permanent_neighbours(host_ipr(), index, socket.AF_INET, RTPROT_NETD)}


def set_neighbour(index: int, address: IPv4Address, mac: str) -> None:
    with failing_as(f"pin the neighbour entry of {address}"):
        host_ipr().neigh("replace", dst=str(address), lladdr=mac, ifindex=index, state="permanent",
                     protocol=RTPROT_NETD)


def delete_neighbour(index: int, address: IPv4Address) -> None:
    try:
        host_ipr().neigh("del", dst=str(address), ifindex=index)
    except LibraryError as e:
        if e.code != errno.ENOENT:
            raise


def forwarding_entries(index: int) -> dict[str, IPv4Address]:
    """The device's forwarding database: VTEP MAC → the host's public address."""
    with failing_as("list the VXLAN device's forwarding entries"):
        return {f.get("lladdr"): IPv4Address(f.get("dst")) for f in host_ipr().fdb("dump", ifindex=index)
                if f["ifindex"] == index and f.get("dst") and f.get("lladdr") != "00:00:00:00:00:00"}


def set_forwarding_entry(index: int, mac: str, dst: IPv4Address) -> None:
    with failing_as(f"add the forwarding entry of {mac}"):
        host_ipr().fdb("replace", ifindex=index, lladdr=mac, dst=str(dst), state=NUD_PERMANENT, flags=NTF_SELF)


def delete_forwarding_entry(index: int, mac: str, dst: IPv4Address) -> None:
    try:
        host_ipr().fdb("del", ifindex=index, lladdr=mac, dst=str(dst))
    except LibraryError as e:
        if e.code != errno.ENOENT:
            raise


def address_of(interface: str) -> IPv4Address | None:
    """The interface's first IPv4 address."""
    ipr = host_ipr()
    with failing_as(f"read the addresses of {interface}"):
        link = get_link(ipr, ifname=interface)
        found = [a.get("address") for a in ipr.addr("dump", family=socket.AF_INET) if link and a["index"] == link.index]
    return IPv4Address(found[0]) if found else None


def on_link(address: IPv4Address) -> bool:
    """Is the address on a subnet of one of the host's interfaces (no router between)?"""
    with failing_as(f"find the route to {address}"):
        try:
            (route,) = host_ipr().route("get", dst=str(address))
        except LibraryError:
            return False
    return route.get("gateway") is None and route.get("type") == 1  # unicast, no gateway: on link


def default_address() -> IPv4Address:
    """The address of the interface holding the main table's IPv4 default route."""
    uplink = ipv4_uplink()
    found = address_of(uplink) if uplink else None
    if found is None:
        raise FailedPrecondition(f"cluster.public_ip: the uplink ({uplink or 'no IPv4 default route'}) "
                                 f"has no IPv4 address; set public_ip")
    return found

