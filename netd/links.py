"""Netlink steps on the host and inside containers.

The attach/detach hot path uses hand-built messages (rtnl.py); start-up work
(bridge, dumps for reconcile) uses pyroute2. Both keep one socket per thread
(pyroute2's IPRoute has thread-local state; gRPC workers are long-lived).
"""

from __future__ import annotations

import errno
import socket
import threading
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as PyNetlinkError

from netd import netns
from netd.errors import AlreadyExists, FailedPrecondition, KernelError
from netd.model import HOST_IFNAME_PREFIX, NetworkConfig, mac_for
from netd.rtnl import NetlinkError, Rtnl

_local = threading.local()
DEFAULT_MTU = 1500


def _host() -> IPRoute:
    ipr = getattr(_local, "ipr", None)
    if ipr is None:
        ipr = _local.ipr = IPRoute()
    return ipr


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _kernel_error(action: str, e: PyNetlinkError) -> KernelError:
    return KernelError(f"failed to {action}: {e.args[1] if len(e.args) > 1 else e}")


def ensure_bridge(net: NetworkConfig) -> int:
    """Create or adopt the bridge: gateway address, MTU, pinned MAC, up."""
    ipr = _host()
    try:
        index = _index(ipr, net.bridge)
        if index is None:
            try:
                ipr.link("add", ifname=net.bridge, kind="bridge")
            except PyNetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
            index = _index(ipr, net.bridge)
        link = ipr.get_links(index)[0]
        kind = link.get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
        if kind != "bridge":
            raise FailedPrecondition(f"bridge {net.bridge}: an interface of kind {kind} already has that name")
        # An explicitly set MAC stops the bridge from taking the lowest port's
        # MAC, which would change whenever containers come and go.
        ipr.link("set", index=index, address=mac_for(net.gateway), mtu=net.mtu, state="up")
        have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=socket.AF_INET)}
        if (str(net.gateway), net.subnet.prefixlen) not in have:
            ipr.addr("add", index=index, address=str(net.gateway), prefixlen=net.subnet.prefixlen)
        return index
    except PyNetlinkError as e:
        raise _kernel_error(f"set up bridge {net.bridge}", e) from e


def _rtnl() -> Rtnl:
    sock = getattr(_local, "rtnl", None)
    if sock is None:
        sock = _local.rtnl = Rtnl()
    return sock


def create_veth(host_ifname: str, peer_ifname: str, ns_fd: int, bridge_index: int, mtu: int, mac: str) -> int:
    """One request: the pair, its peer already in the container netns, the host end up on the bridge."""
    rtnl = _rtnl()
    try:
        rtnl.create_veth(host_ifname, peer_ifname, ns_fd, bridge_index, mtu, mac)
    except NetlinkError as e:
        if e.errno == errno.EEXIST:
            if rtnl.link_index(host_ifname) is not None:
                raise AlreadyExists(f"host interface {host_ifname} already exists") from None
            raise AlreadyExists(f"ifname {peer_ifname} already exists in the container's network namespace") from None
        raise KernelError(f"failed to create veth {host_ifname}: {e.strerror}") from e
    index = rtnl.link_index(host_ifname)
    if index is None:
        raise KernelError(f"failed to create veth {host_ifname}: it vanished (container exited?)")
    return index


def configure_container_side(ns_fd: int, ifname: str, address: IPv4Interface, gateway: IPv4Address) -> None:
    with Rtnl(netns.netlink_socket_in(ns_fd)) as rtnl:
        try:
            index = rtnl.link_index(ifname)
            if index is None:
                raise KernelError(f"failed to configure {ifname}: not in the container's network namespace")
            rtnl.configure(index, address, gateway)
        except NetlinkError as e:
            raise KernelError(f"failed to configure {ifname} in the container: {e.strerror}") from e


def delete_link(name: str) -> bool:
    """Delete a link; False when it was already gone."""
    try:
        _rtnl().delete_link(name)
        return True
    except NetlinkError as e:
        if e.errno == errno.ENODEV:
            return False
        raise KernelError(f"failed to delete link {name}: {e.strerror}") from e


def host_veths() -> dict[str, int]:
    """netd-named links on the host: name → ifindex."""
    ipr = _host()
    return {
        name: link["index"]
        for link in ipr.get_links()
        if (name := link.get("IFLA_IFNAME", "")).startswith(HOST_IFNAME_PREFIX)
    }


def uplink_mtu() -> int:
    """MTU of the interface holding the main table's IPv4 default route."""
    ipr = _host()
    for route in ipr.get_routes(family=socket.AF_INET, table=254):
        if route["dst_len"] == 0 and route.get("RTA_OIF"):
            link = ipr.get_links(route.get("RTA_OIF"))[0]
            if link.get("IFLA_IFNAME") != "lo":
                return link.get("IFLA_MTU") or DEFAULT_MTU
    return DEFAULT_MTU


def overlapping(subnet: IPv4Network, bridge: str) -> list[str]:
    """Addresses and routes on interfaces other than the bridge that overlap the subnet."""
    ipr = _host()
    names = {link["index"]: link.get("IFLA_IFNAME") for link in ipr.get_links()}
    found: dict[IPv4Network, str] = {}
    for addr in ipr.get_addr(family=socket.AF_INET):
        name = names.get(addr["index"])
        net = ip_network(f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}", strict=False)
        if name not in (bridge, "lo") and net.overlaps(subnet):
            found[net] = f"address {addr.get('IFA_ADDRESS')}/{addr['prefixlen']} on {name}"
    for route in ipr.get_routes(family=socket.AF_INET, table=254):
        name = names.get(route.get("RTA_OIF"))
        if not route["dst_len"] or name in (bridge, "lo"):
            continue
        net = ip_network(f"{route.get('RTA_DST')}/{route['dst_len']}", strict=False)
        if net.overlaps(subnet):
            found.setdefault(net, f"route {net} via {name}")
    return list(found.values())


def enable_ip_forwarding() -> None:
    try:
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")
    except OSError as e:
        raise KernelError(f"failed to enable IPv4 forwarding: {e.strerror}") from e
