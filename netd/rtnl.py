"""Hand-built rtnetlink messages: just what netd sends and reads.

pyroute2's high-level calls cost ~7 ms per attach in Python; the same work as
a handful of raw messages costs well under 2, and there is nothing to import.

Several requests may go in one datagram: the kernel runs them in order, so a
batch costs one round trip (see Rtnl.exchange).
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_interface,
    ip_network,
)

IPInterface = IPv4Interface | IPv6Interface
IPAddress = IPv4Address | IPv6Address

NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
NLA = struct.Struct("=HH")
ERRNO = struct.Struct("=i")

NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR, RTM_NEWROUTE, RTM_GETROUTE = 16, 17, 18, 20, 22, 24, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_GET = 2  # every RTM_GET* type is 2 modulo 4 (NEW, DEL, GET, SET)
NUD_PERMANENT, F_REPLACE = 0x80, 0x100
NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
NDA_DST, NDA_LLADDR = 1, 2
F_REQUEST, F_ACK, F_DUMP, F_EXCL, F_CREATE = 0x1, 0x4, 0x300, 0x200, 0x400
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_GROUP, IFLA_NET_NS_FD = (
    1, 3, 4, 5, 10, 18, 27, 28)
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_DATA, VETH_INFO_PEER = 1, 2, 5, 1
IFLA_BRPORT_MODE, IFLA_BRPORT_ISOLATED = 4, 33  # hairpin; no forwarding to other isolated ports
IFLA_AF_SPEC, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE = 26, 8, 1
IFLA_STATS64 = 23
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES = 31, 32
IFLA_BR_MCAST_SNOOPING = 23  # in a bridge's IFLA_INFO_DATA
STATS64 = struct.Struct("=8Q")  # rx/tx packets, rx/tx bytes, rx/tx errors, rx/tx dropped
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
IFA_F_NODAD = 0x02
IFLA_INET_CONF, IPV4_DEVCONF_ARP_NOTIFY = 1, 22
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 1, 4, 5, 6, 15
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1
LOOPBACK_INDEX = 1  # lo is always ifindex 1 in a network namespace
NLA_F_NESTED = 0x8000


class NetlinkError(OSError):
    step = ""  # which request of a batch failed, when the caller named them


def _raise_first(errors: list[int]) -> None:
    """NetlinkError for the first failed request of a batch, if any."""
    for err in errors:
        if err:
            raise NetlinkError(err, os.strerror(err))


def attr(kind: int, payload: bytes) -> bytes:
    data = NLA.pack(NLA.size + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def name_attr(name: str) -> bytes:
    return attr(IFLA_IFNAME, name.encode() + b"\0")


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """rtattrs from offset to the end: type (nested flag cleared) → payload."""
    found = {}
    while offset + NLA.size <= len(data):
        length, kind = NLA.unpack_from(data, offset)
        if length < NLA.size:
            break
        found[kind & ~NLA_F_NESTED] = data[offset + NLA.size: offset + length]
        offset += (length + 3) & ~3
    return found


def find_attr(data: bytes, offset: int, kind: int) -> bytes | None:
    """The first `kind` rtattr's payload, reading no further: a link's reply
    has ~50 attributes, and parsing them all costs over twice as much."""
    while offset + NLA.size <= len(data):
        length, found = NLA.unpack_from(data, offset)
        if length < NLA.size:
            break
        if found & ~NLA_F_NESTED == kind:
            return data[offset + NLA.size: offset + length]
        offset += (length + 3) & ~3
    return None


def text(payload: bytes | None) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace") if payload else ""


def num(payload: bytes | None) -> int:
    return struct.unpack("=I", payload[:4])[0] if payload else 0


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    flags: int
    mtu: int
    master: int
    kind: str
    mac: str = ""
    stats: tuple[int, ...] = (0,) * 8  # rx/tx packets, rx/tx bytes, rx/tx errors, rx/tx dropped


@dataclass(frozen=True)
class Addr:
    index: int
    address: IPInterface


@dataclass(frozen=True)
class Route:
    dst: IPv4Network | IPv6Network
    oif: int
    gateway: IPAddress | None
    table: int


def parse_link(body: bytes) -> Link:
    _, _, index, flags, _ = IFINFO.unpack_from(body)
    attrs = parse_attrs(body, IFINFO.size)
    kind = text(parse_attrs(attrs[IFLA_LINKINFO]).get(IFLA_INFO_KIND)) if IFLA_LINKINFO in attrs else ""
    stats = STATS64.unpack_from(attrs[IFLA_STATS64]) if len(attrs.get(IFLA_STATS64, b"")) >= STATS64.size else (0,) * 8
    return Link(index, text(attrs.get(IFLA_IFNAME)), flags, num(attrs.get(IFLA_MTU)), num(attrs.get(IFLA_MASTER)),
                kind, mac_text(attrs.get(IFLA_ADDRESS, b"")), stats)


def _zero(family: int) -> bytes:
    return bytes(16 if family == socket.AF_INET6 else 4)


def parse_addr(body: bytes) -> Addr:
    family, prefixlen, _, _, index = IFADDR.unpack_from(body)
    attrs = parse_attrs(body, IFADDR.size)
    raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS) or _zero(family)
    return Addr(index, ip_interface((ip_address(raw), prefixlen)))


def parse_route(body: bytes) -> Route:
    family, dst_len, _, _, table, _, _, _, _ = RTMSG.unpack_from(body)
    attrs = parse_attrs(body, RTMSG.size)
    dst = ip_address(attrs.get(RTA_DST, _zero(family)))
    gateway = ip_address(attrs[RTA_GATEWAY]) if RTA_GATEWAY in attrs else None
    return Route(ip_network((dst, dst_len), strict=False), num(attrs.get(RTA_OIF)),
                 gateway, num(attrs.get(RTA_TABLE)) or table)


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def veth_body(host: str, peer: str, ns_fd: int, master: int, mtu: int, mac: str) -> bytes:
    """Created down (see Rtnl.create_veth), one queue per end: veth defaults
    to one per CPU, then trims to one after registering, and each trim waits
    for an RCU grace period."""
    queues = u32(IFLA_NUM_TX_QUEUES, 1) + u32(IFLA_NUM_RX_QUEUES, 1)
    peer_info = IFINFO.pack(0, 0, 0, 0, 0) + name_attr(peer) + attr(IFLA_ADDRESS, mac_bytes(mac)) \
        + u32(IFLA_MTU, mtu) + u32(IFLA_NET_NS_FD, ns_fd) + queues
    return (IFINFO.pack(0, 0, 0, 0, 0) + name_attr(host) + u32(IFLA_MTU, mtu) + u32(IFLA_MASTER, master) + queues
            + nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth\0"),
                     nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))))


def link_up_body(index: int) -> bytes:
    return IFINFO.pack(0, 0, index, IFF_UP, IFF_UP)


def no_ipv6_link_local_body(index: int) -> bytes:
    """No IPv6 link-local address on the container's link, hence no DAD, MLD
    or router solicitations: on a bridge every such multicast is flooded to
    all ports, so with N containers each attach would cost O(N) packets."""
    return (IFINFO.pack(0, 0, index, 0, 0)
            + nested(IFLA_AF_SPEC, nested(socket.AF_INET6, attr(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE])))))


def bridge_port_body(name: str, hairpin: bool, isolated: bool) -> bytes:
    """Bridge port flags of an enslaved link (the master's slave_changelink;
    a link being created cannot carry them)."""
    return (IFINFO.pack(0, 0, 0, 0, 0) + name_attr(name)
            + nested(IFLA_LINKINFO, nested(IFLA_INFO_SLAVE_DATA, attr(IFLA_BRPORT_MODE, bytes([hairpin])),
                                           attr(IFLA_BRPORT_ISOLATED, bytes([isolated])))))


def address_body(index: int, address: IPInterface) -> bytes:
    ip = address.ip.packed
    if address.version == 6:
        # No duplicate address detection: the address is usable at once (netd
        # hands out each address once), instead of "tentative" for a second.
        return IFADDR.pack(socket.AF_INET6, address.network.prefixlen, IFA_F_NODAD, 0, index) + attr(IFA_LOCAL, ip)
    return (IFADDR.pack(socket.AF_INET, address.network.prefixlen, 0, 0, index)
            + attr(IFA_LOCAL, ip) + attr(IFA_ADDRESS, ip)
            + attr(IFA_BROADCAST, address.network.broadcast_address.packed))


def default_route_body(index: int, gateway: IPAddress, metric: int = 0) -> bytes:
    family = socket.AF_INET6 if gateway.version == 6 else socket.AF_INET
    return (RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, 0, RTN_UNICAST, 0)
            + attr(RTA_GATEWAY, gateway.packed) + u32(RTA_OIF, index) + u32(RTA_PRIORITY, metric))


def neighbour_body(index: int, address: IPAddress, mac: str = "") -> bytes:
    """A neighbour entry: permanent with a MAC, or just its key without."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return (NDMSG.pack(family, index, NUD_PERMANENT if mac else 0, 0, 0) + attr(NDA_DST, address.packed)
            + (attr(NDA_LLADDR, mac_bytes(mac)) if mac else b""))


def pin_request(index: int, address: IPAddress, mac: str) -> tuple[int, int, bytes]:
    """Make the entry permanent with `mac`, whatever was there (see Rtnl.settle_port)."""
    return RTM_NEWNEIGH, F_CREATE | F_REPLACE, neighbour_body(index, address, mac)


def arp_notify_body(index: int) -> bytes:
    """arp_notify=1: the kernel announces the address (gratuitous ARP) when
    the link comes up or its MAC changes."""
    return (IFINFO.pack(0, 0, index, 0, 0)
            + nested(IFLA_AF_SPEC, nested(socket.AF_INET, nested(IFLA_INET_CONF, u32(IPV4_DEVCONF_ARP_NOTIFY, 1)))))


class Rtnl:
    """One NETLINK_ROUTE socket; bound to the netns it was created in."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = itertools.count(1)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batch(self, *requests: tuple[int, int, bytes]) -> list[bytes]:
        """Send (type, flags, body) requests in one datagram; wait for each answer.

        Returns each request's reply body (empty for a plain ACK). The first
        error raises NetlinkError with its errno; later requests in the batch
        still ran (or failed) in the kernel.
        """
        replies, errors = self.exchange(*requests)
        _raise_first(errors)
        return replies

    def exchange(self, *requests: tuple[int, int, bytes]) -> tuple[list[bytes], list[int]]:
        """Like batch, but every request's errno (0 for success) instead of raising.

        Only the last request asks for an acknowledgement (none if it is a
        read, whose reply answers): the kernel answers a failed request
        anyway, and runs them in order, so the last one's answer comes after
        every other. Each answer is a datagram of its own, and a recv()
        (which lets go of the GIL) apiece: an ack per request cost a
        configure batch eight of them instead of one."""
        seqs, out = [], bytearray()
        for i, (msg_type, flags, body) in enumerate(requests, 1):
            seq = next(self._seq)
            seqs.append(seq)
            ack = F_ACK if i == len(requests) and msg_type % 4 != RTM_GET else 0
            out += NLMSG.pack(NLMSG.size + len(body), msg_type, flags | F_REQUEST | ack, seq, 0) + body
        self.sock.send(out)
        replies: dict[int, bytes] = {}
        errors: dict[int, int] = {}
        while seqs[-1] not in errors and seqs[-1] not in replies:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + NLMSG.size <= len(data):
                length, msg_type, _, seq, _ = NLMSG.unpack_from(data, offset)
                if msg_type == NLMSG_ERROR:
                    errors[seq] = -ERRNO.unpack_from(data, offset + NLMSG.size)[0]
                else:
                    replies[seq] = bytes(data[offset + NLMSG.size: offset + length])
                offset += (length + 3) & ~3
        return [replies.get(seq, b"") for seq in seqs], [errors.get(seq, 0) for seq in seqs]

    def dump(self, msg_type: int, body: bytes) -> list[bytes]:
        """Every reply body of a dump request."""
        seq = next(self._seq)
        self.sock.send(NLMSG.pack(NLMSG.size + len(body), msg_type, F_REQUEST | F_DUMP, seq, 0) + body)
        bodies = []
        while True:
            data = self.sock.recv(1 << 20)
            offset = 0
            while offset + NLMSG.size <= len(data):
                length, kind, _, got, _ = NLMSG.unpack_from(data, offset)
                if got == seq:
                    if kind == NLMSG_DONE:
                        return bodies
                    if kind == NLMSG_ERROR:
                        err = -ERRNO.unpack_from(data, offset + NLMSG.size)[0]
                        raise NetlinkError(err, os.strerror(err))
                    bodies.append(bytes(data[offset + NLMSG.size: offset + length]))
                offset += (length + 3) & ~3

    def links(self) -> list[Link]:
        return [parse_link(b) for b in self.dump(RTM_GETLINK, IFINFO.pack(0, 0, 0, 0, 0))]

    def addresses(self, family: int = socket.AF_INET) -> list[Addr]:
        return [parse_addr(b) for b in self.dump(RTM_GETADDR, IFADDR.pack(family, 0, 0, 0, 0))]

    def routes(self, family: int = socket.AF_INET) -> list[Route]:
        return [parse_route(b) for b in self.dump(RTM_GETROUTE, RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0))]

    def _getlink(self, name: str) -> bytes | None:
        """The link's RTM_NEWLINK body; None if no such link."""
        try:
            (body,) = self.batch((RTM_GETLINK, 0, IFINFO.pack(0, 0, 0, 0, 0) + name_attr(name)))
        except NetlinkError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        return body

    def pin_neighbours(self, index: int, entries: list[tuple[IPAddress, str]]) -> None:
        """Permanent neighbour entries (address, MAC) on the link, replacing
        what is there; a round trip per 256 (should all fail, their errors
        still fit the socket's buffer)."""
        for start in range(0, len(entries), 256):
            self.batch(*(pin_request(index, a, mac) for a, mac in entries[start:start + 256]))

    def pinned_neighbours(self, index: int) -> set[bytes]:
        """Addresses (packed) with a permanent neighbour entry on the link.

        The healer asks after neighbour entries were deleted: at 1000 entries,
        reading NDA_DST where the kernel puts it (first) and leaving the
        bytes as they are takes a third of the time of parsing every
        attribute into address objects (2.3 against 7 ms)."""
        found = set()
        for family in (socket.AF_INET, socket.AF_INET6):
            for body in self.dump(RTM_GETNEIGH, NDMSG.pack(family, 0, 0, 0, 0)):
                _, ifindex, state, _, _ = NDMSG.unpack_from(body)
                if ifindex != index or not state & NUD_PERMANENT:
                    continue
                dst = find_attr(body, NDMSG.size, NDA_DST)
                if dst:
                    found.add(dst)
        return found

    def forget_neighbours(self, index: int, addresses: list[IPAddress]) -> None:
        """Delete the neighbour entries of `addresses` on the link; absent ones are fine."""
        _, errors = self.exchange(*((RTM_DELNEIGH, 0, neighbour_body(index, a)) for a in addresses))
        _raise_first([0 if err == errno.ENOENT else err for err in errors])

    def link(self, name: str) -> Link | None:
        body = self._getlink(name)
        return parse_link(body) if body else None

    def link_index(self, name: str) -> int | None:
        body = self._getlink(name)
        return IFINFO.unpack_from(body)[2] if body else None

    def create_bridge(self, name: str, mac: str, mtu: int) -> None:
        self.batch((RTM_NEWLINK, F_CREATE | F_EXCL,
                    IFINFO.pack(0, 0, 0, IFF_UP, IFF_UP) + name_attr(name) + attr(IFLA_ADDRESS, mac_bytes(mac))
                    + u32(IFLA_MTU, mtu) + nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge\0"))))

    def set_bridge(self, index: int, mac: str, mtu: int, multicast_snooping: bool) -> None:
        """MAC (unless ""), MTU, multicast snooping and up, on an existing bridge."""
        self.batch((RTM_NEWLINK, 0, IFINFO.pack(0, 0, index, IFF_UP, IFF_UP)
                    + (attr(IFLA_ADDRESS, mac_bytes(mac)) if mac else b"") + u32(IFLA_MTU, mtu)
                    + nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge\0"),
                             nested(IFLA_INFO_DATA, attr(IFLA_BR_MCAST_SNOOPING, bytes([multicast_snooping]))))))

    def set_mac(self, index: int, mac: str) -> None:
        self.batch((RTM_NEWLINK, 0, IFINFO.pack(0, 0, index, 0, 0) + attr(IFLA_ADDRESS, mac_bytes(mac))))

    def set_master(self, name: str, master: int, hairpin: bool, isolated: bool) -> None:
        self.batch((RTM_NEWLINK, 0, IFINFO.pack(0, 0, 0, IFF_UP, IFF_UP) + name_attr(name) + u32(IFLA_MASTER, master)),
                   (RTM_NEWLINK, 0, bridge_port_body(name, hairpin, isolated)))

    def add_address(self, index: int, address: IPInterface) -> None:
        self.batch((RTM_NEWADDR, F_CREATE | F_EXCL, address_body(index, address)))

    def create_veth(self, host: str, peer: str, ns_fd: int, master: int, mtu: int, mac: str,
                    hairpin: bool = False, isolated: bool = False) -> tuple[int, int] | None:
        """The pair, the host end down on `master` (settle_port sets it up);
        returns the host end's index and the peer's in its netns (None if
        the pair vanished at once). One round trip.

        The read makes the kernel handle the new link's carrier-off event
        while it is down. Handled once it is up, that event deactivates its
        queue and waits for an RCU grace period. (When creation fails, the
        later requests fail too, or touch the netd-named link that was in the
        way.)

        Not NLM_F_ECHO for the index: with it, attach latency grew with the
        bridge's ports (p50 10.6 → 17.9 ms at 1000; cause not pinned down)."""
        port_flags = [(RTM_NEWLINK, 0, bridge_port_body(host, hairpin, isolated))] if hairpin or isolated else []
        replies, errors = self.exchange(
            (RTM_NEWLINK, F_CREATE | F_EXCL, veth_body(host, peer, ns_fd, master, mtu, mac)),
            (RTM_GETLINK, 0, IFINFO.pack(0, 0, 0, 0, 0) + name_attr(host)),
            *port_flags,
        )
        if not errors[0] and errors[1] == errno.ENODEV:
            return None
        _raise_first(errors)
        index = IFINFO.unpack_from(replies[1])[2]
        # The kernel leaves IFLA_LINK out when the peer's index equals the link's own.
        peer = find_attr(replies[1], IFINFO.size, IFLA_LINK)
        return index, num(peer) if peer is not None else index

    def settle_port(self, index: int, bridge: int, addresses: list[IPAddress], mac: str) -> str | None:
        """Set the host end up and handle its carrier event now, pin the
        host's neighbour entries for `addresses` to `mac`, and return the MAC
        the host held for the first address before, if any.

        Up with its peer up, the host end has its carrier; the kernel enables
        the bridge port on that event from a worker thread, usually at once
        but later when the CPUs are busy, and the bridge drops what the
        container sends until then. Reading the link makes the kernel handle
        the pending event in this request.

        Permanent entries are outside the kernel's neighbour garbage
        collection, whose limit (gc_thresh3, 1024 by default) counts every
        namespace's entries together: with two dynamic entries per container
        (the host's for it, its own for the gateway) a few hundred busy
        containers would fill the machine's whole ARP table."""
        replies, errors = self.exchange(
            (RTM_NEWLINK, 0, link_up_body(index)),
            (RTM_GETLINK, 0, IFINFO.pack(0, 0, index, 0, 0)),
            (RTM_GETNEIGH, 0, neighbour_body(bridge, addresses[0])),
            *(pin_request(bridge, a, mac) for a in addresses),
        )
        up_error, link_error, neighbour_error, *pinned = errors
        _raise_first([up_error, link_error, 0 if neighbour_error == errno.ENOENT else neighbour_error, *pinned])
        lladdr = find_attr(replies[2], NDMSG.size, NDA_LLADDR) if replies[2] else None
        return mac_text(lladdr) if lladdr else None

    def configure(self, index: int, addresses: list[IPInterface], gateways: list[IPAddress], gateway_mac: str,
                  metric: int = 0) -> None:
        """Addresses, link up, lo up, the gateways' permanent neighbour
        entries (see settle_port), default routes: in that order (a route
        needs the first two). A failure names its step (NetlinkError.step)."""
        # Steps are named (and their addresses formatted) only when one fails.
        steps = [
            ("link settings", None, (RTM_NEWLINK, 0, no_ipv6_link_local_body(index))),
            ("link settings", None, (RTM_NEWLINK, 0, arp_notify_body(index))),
            *(("address", a, (RTM_NEWADDR, F_CREATE | F_EXCL, address_body(index, a))) for a in addresses),
            ("link up", None, (RTM_NEWLINK, 0, link_up_body(index))),
            ("lo up", None, (RTM_NEWLINK, 0, link_up_body(LOOPBACK_INDEX))),
            *(("neighbour entry of", g, pin_request(index, g, gateway_mac)) for g in gateways),
            *(("default route via", g, (RTM_NEWROUTE, F_CREATE | F_EXCL, default_route_body(index, g, metric)))
              for g in gateways),
        ]
        _, errors = self.exchange(*(request for _, _, request in steps))
        for (step, subject, _), err in zip(steps, errors):
            if err:
                error = NetlinkError(err, os.strerror(err))
                error.step = step if subject is None else f"{step} {subject}"
                raise error

    def set_group(self, names: list[str], group: int) -> list[int]:
        """Move links into a group, one batch; each link's errno (0: moved)."""
        return self.exchange(*((RTM_NEWLINK, 0, IFINFO.pack(0, 0, 0, 0, 0) + name_attr(name) + u32(IFLA_GROUP, group))
                               for name in names))[1]

    def delete_group(self, group: int) -> None:
        """Delete every link in a group: the kernel unregisters them together,
        so they share one RCU grace period instead of paying one each."""
        self.batch((RTM_DELLINK, 0, IFINFO.pack(0, 0, 0, 0, 0) + u32(IFLA_GROUP, group)))
