"""The attach and detach requests, encoded by hand: pyroute2 (netd's netlink
library, see links.py) took 1.19 ms to encode an attach's 12 requests and
171 µs to decode one link answer, against 0.05 ms and 8.5 µs here.

Only those fixed requests live here, with the ack and answer parsing they
need; tests/unit/test_fastpath.py decodes each with pyroute2's parser and
compares it, attribute by attribute, with what pyroute2 builds for the same
request. Several requests go in one datagram: the kernel runs them in order,
so a batch costs one round trip (see Rtnl.exchange).
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import struct
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

IPInterface = IPv4Interface | IPv6Interface
IPAddress = IPv4Address | IPv6Address

NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
NLA = struct.Struct("=HH")
ERRNO = struct.Struct("=i")

NLMSG_ERROR = 2
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 18, 20, 24
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_GET = 2  # every RTM_GET* type is 2 modulo 4 (NEW, DEL, GET, SET)
F_REQUEST, F_ACK, F_REPLACE, F_EXCL, F_CREATE = 0x1, 0x4, 0x100, 0x200, 0x400
NUD_PERMANENT = 0x80
NDA_DST, NDA_LLADDR, NDA_PROTOCOL = 1, 2, 12
# The originator netd writes on what it creates (neighbour entries, routes):
# unassigned in iproute2's rt_protos.
RTPROT_NETD = 110
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_GROUP, IFLA_NET_NS_FD = (
    1, 3, 4, 5, 10, 18, 27, 28)
IFLA_IFALIAS, IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES = 20, 31, 32
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_DATA, VETH_INFO_PEER = 1, 2, 5, 1
IFLA_BRPORT_MODE, IFLA_BRPORT_ISOLATED = 4, 33  # hairpin; no forwarding to other isolated ports
IFLA_AF_SPEC, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE = 26, 8, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_FLAGS = 1, 2, 4, 8
IFA_F_NODAD = 0x02
RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 4, 5, 6, 15
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1
LOOPBACK_INDEX = 1  # lo is always ifindex 1 in a network namespace
NLA_F_NESTED = 0x8000

Request = tuple[int, int, bytes]  # type, flags, body


class NetlinkError(OSError):
    step = ""  # which request of a batch failed, when the caller named them


def _raise_first(errors: list[int]) -> None:
    for err in errors:
        if err:
            raise NetlinkError(err, os.strerror(err))


def attr(kind: int, payload: bytes) -> bytes:
    data = NLA.pack(NLA.size + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def text_attr(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def find_attr(data: bytes, offset: int, kind: int) -> bytes | None:
    """The first `kind` rtattr's payload, reading no further: a link's answer
    has ~50 attributes, and parsing them all costs over twice as much."""
    while offset + NLA.size <= len(data):
        length, found = NLA.unpack_from(data, offset)
        if length < NLA.size:
            break
        if found & ~NLA_F_NESTED == kind:
            return data[offset + NLA.size: offset + length]
        offset += (length + 3) & ~3
    return None


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _family(address: IPAddress) -> int:
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


# -- request bodies -------------------------------------------------------------

def veth_body(host: str, peer: str, ns_fd: int, master: int, mtu: int, mac: str) -> bytes:
    """Created down (see Rtnl.create_veth), one queue per end: veth defaults
    to one per CPU, then trims to one after registering, and each trim waits
    for an RCU grace period."""
    queues = u32(IFLA_NUM_TX_QUEUES, 1) + u32(IFLA_NUM_RX_QUEUES, 1)
    peer_info = (IFINFO.pack(0, 0, 0, 0, 0) + text_attr(IFLA_IFNAME, peer) + attr(IFLA_ADDRESS, mac_bytes(mac))
                 + u32(IFLA_MTU, mtu) + u32(IFLA_NET_NS_FD, ns_fd) + queues)
    return (IFINFO.pack(0, 0, 0, 0, 0) + text_attr(IFLA_IFNAME, host) + u32(IFLA_MTU, mtu) + u32(IFLA_MASTER, master)
            + queues + nested(IFLA_LINKINFO, text_attr(IFLA_INFO_KIND, "veth"),
                     nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info))))


def alias_body(name: str, alias: str) -> bytes:
    """The link's alias (the kernel ignores one given at creation)."""
    return IFINFO.pack(0, 0, 0, 0, 0) + text_attr(IFLA_IFNAME, name) + text_attr(IFLA_IFALIAS, alias)


def get_link_body(index: int = 0, name: str = "") -> bytes:
    return IFINFO.pack(0, 0, index, 0, 0) + (text_attr(IFLA_IFNAME, name) if name else b"")


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
    return (IFINFO.pack(0, 0, 0, 0, 0) + text_attr(IFLA_IFNAME, name)
            + nested(IFLA_LINKINFO, text_attr(IFLA_INFO_KIND, "bridge_slave"),
                     nested(IFLA_INFO_SLAVE_DATA, attr(IFLA_BRPORT_MODE, bytes([hairpin])),
                            attr(IFLA_BRPORT_ISOLATED, bytes([isolated])))))


def set_mac_body(index: int, mac: str) -> bytes:
    return IFINFO.pack(0, 0, index, 0, 0) + attr(IFLA_ADDRESS, mac_bytes(mac))


def set_group_body(name: str, group: int) -> bytes:
    return IFINFO.pack(0, 0, 0, 0, 0) + text_attr(IFLA_IFNAME, name) + u32(IFLA_GROUP, group)


def group_body(group: int) -> bytes:
    return IFINFO.pack(0, 0, 0, 0, 0) + u32(IFLA_GROUP, group)


def address_body(index: int, address: IPInterface) -> bytes:
    ip = address.ip.packed
    if address.version == 6:
        # No duplicate address detection: the address is usable at once (netd
        # hands out each address once), instead of "tentative" for a second.
        return (IFADDR.pack(socket.AF_INET6, address.network.prefixlen, 0, 0, index) + attr(IFA_ADDRESS, ip)
                + u32(IFA_FLAGS, IFA_F_NODAD))
    return (IFADDR.pack(socket.AF_INET, address.network.prefixlen, 0, 0, index)
            + attr(IFA_LOCAL, ip) + attr(IFA_ADDRESS, ip)
            + attr(IFA_BROADCAST, address.network.broadcast_address.packed))


def default_route_body(index: int, gateway: IPAddress, metric: int = 0) -> bytes:
    return (RTMSG.pack(_family(gateway), 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, 0, RTN_UNICAST, 0)
            + attr(RTA_GATEWAY, gateway.packed) + u32(RTA_OIF, index) + u32(RTA_PRIORITY, metric)
            + u32(RTA_TABLE, RT_TABLE_MAIN))


def neighbour_body(index: int, address: IPAddress, mac: str = "") -> bytes:
    """A neighbour entry: permanent with a MAC and netd's mark, or just its key without."""
    if not mac:
        return NDMSG.pack(_family(address), index, 0, 0, 0) + attr(NDA_DST, address.packed)
    return (NDMSG.pack(_family(address), index, NUD_PERMANENT, 0, 0) + attr(NDA_DST, address.packed)
            + attr(NDA_LLADDR, mac_bytes(mac)) + attr(NDA_PROTOCOL, bytes([RTPROT_NETD])))


def pin_request(index: int, address: IPAddress, mac: str) -> Request:
    """Make the entry permanent with `mac`, whatever was there (see Rtnl.settle_port)."""
    return RTM_NEWNEIGH, F_CREATE | F_REPLACE, neighbour_body(index, address, mac)


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

    def batch(self, *requests: Request) -> list[bytes]:
        """Send requests in one datagram; each one's answer body (empty for
        an ack). The first error raises NetlinkError with its errno; later
        requests in the batch still ran (or failed) in the kernel."""
        replies, errors = self.exchange(*requests)
        _raise_first(errors)
        return replies

    def exchange(self, *requests: Request) -> tuple[list[bytes], list[int]]:
        """Like batch, but every request's errno (0 for success) instead of raising.

        Only the last request asks for an acknowledgement (none if it is a
        read, whose answer is its ack): the kernel answers a failed request
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

    def _get_link(self, name: str) -> bytes | None:
        try:
            (body,) = self.batch((RTM_GETLINK, 0, get_link_body(name=name)))
        except NetlinkError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        return body

    def link_index(self, name: str) -> int | None:
        body = self._get_link(name)
        return IFINFO.unpack_from(body)[2] if body else None

    def link_alias(self, name: str) -> str | None:
        """The link's alias ("" without one); None if there is no such link."""
        body = self._get_link(name)
        if body is None:
            return None
        alias = find_attr(body, IFINFO.size, IFLA_IFALIAS)
        return alias.split(b"\0", 1)[0].decode(errors="replace") if alias else ""

    def set_mac(self, index: int, mac: str) -> None:
        self.batch((RTM_NEWLINK, 0, set_mac_body(index, mac)))

    def create_veth(self, host: str, peer: str, ns_fd: int, master: int, mtu: int, mac: str,
                    hairpin: bool = False, isolated: bool = False, alias: str = "") -> tuple[int, int] | None:
        """The pair, the host end down on `master` (settle_port sets it up);
        returns the host end's index and the peer's in its netns (None if
        the pair vanished at once); `alias` marks the host end. One round trip.

        The read makes the kernel handle the new link's carrier-off event
        while it is down. Handled once it is up, that event deactivates its
        queue and waits for an RCU grace period. The mark goes in the same
        datagram: netd dying a moment later leaves no unmarked veth. (When
        creation fails for the peer's name, the later requests find no link.)

        Not NLM_F_ECHO for the index: with it, attach latency grew with the
        bridge's ports (p50 10.6 → 17.9 ms at 1000; cause not pinned down)."""
        # The later requests name the link: were it someone else's, they
        # would change it. So a link holding the name fails the call first.
        if self._get_link(host) is not None:
            raise NetlinkError(errno.EEXIST, os.strerror(errno.EEXIST))
        port_flags = [(RTM_NEWLINK, 0, bridge_port_body(host, hairpin, isolated))] if hairpin or isolated else []
        replies, errors = self.exchange(
            (RTM_NEWLINK, F_CREATE | F_EXCL, veth_body(host, peer, ns_fd, master, mtu, mac)),
            (RTM_GETLINK, 0, get_link_body(name=host)),
            *([(RTM_NEWLINK, 0, alias_body(host, alias))] if alias else []),
            *port_flags,
        )
        if not errors[0] and errors[1] == errno.ENODEV:
            return None
        _raise_first(errors)
        index = IFINFO.unpack_from(replies[1])[2]
        # The kernel leaves IFLA_LINK out when the peer's index equals the link's own.
        peer_index = find_attr(replies[1], IFINFO.size, IFLA_LINK)
        return index, struct.unpack("=I", peer_index[:4])[0] if peer_index else index

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
            (RTM_GETLINK, 0, get_link_body(index)),
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
        return self.exchange(*((RTM_NEWLINK, 0, set_group_body(name, group)) for name in names))[1]

    def delete_group(self, group: int) -> None:
        """Delete every link in a group: the kernel unregisters them together,
        so they share one RCU grace period instead of paying one each."""
        self.batch((RTM_DELLINK, 0, group_body(group)))

    def forget_neighbours(self, index: int, addresses: list[IPAddress]) -> None:
        """Delete the neighbour entries of `addresses` on the link; absent ones are fine."""
        _, errors = self.exchange(*((RTM_DELNEIGH, 0, neighbour_body(index, a)) for a in addresses))
        _raise_first([0 if err == errno.ENOENT else err for err in errors])
