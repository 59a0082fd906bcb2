"""Notice netd veths vanishing: when a container's netns dies the kernel
destroys its veth pair, and the host end's RTM_DELLINK tells us at once.
Notifications tells a periodic check whether anything changed since its
last look (nftables rulesets, neighbour entries deleted).

A raw rtnetlink socket subscribed to link events, parsed by hand: only the
header, the ifindex and IFLA_IFNAME are needed.
"""

from __future__ import annotations

import ctypes
import errno
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterator

from netd.model import HOST_IFNAME_PREFIX

RTMGRP_LINK = 0x1
RTMGRP_NEIGH = 0x4
RTM_DELLINK = 17
RTM_DELNEIGH = 29
IFLA_IFNAME = 3
NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
RTA_HDR = struct.Struct("=HH")  # len, type
SO_ATTACH_FILTER = 26
BPF_LD_H_ABS, BPF_JEQ_K, BPF_RET_K = 0x28, 0x15, 0x06


def _align(n: int) -> int:
    return (n + 3) & ~3


def parse_deleted_links(data: bytes) -> Iterator[tuple[str, int]]:
    """(ifname, ifindex) for each RTM_DELLINK message in a netlink datagram."""
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, msg_type, _, _, _ = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size:
            return
        body = offset + NLMSG_HDR.size
        # AF_BRIDGE deletions only say a port left its bridge; the device lives.
        if msg_type == RTM_DELLINK and IFINFOMSG.unpack_from(data, body)[0] == socket.AF_UNSPEC:
            _, _, index, _, _ = IFINFOMSG.unpack_from(data, body)
            attr = body + IFINFOMSG.size
            while attr + RTA_HDR.size <= offset + length:
                rta_len, rta_type = RTA_HDR.unpack_from(data, attr)
                if rta_len < RTA_HDR.size:
                    break
                if rta_type == IFLA_IFNAME:
                    name = data[attr + RTA_HDR.size: attr + rta_len].split(b"\0", 1)[0]
                    yield name.decode(errors="replace"), index
                    break
                attr += _align(rta_len)
        offset += _align(length)


def only_deletions(sock: socket.socket, msg_type: int = RTM_DELLINK) -> None:
    """Let the kernel drop every notification but those of `msg_type`.

    Each attach sends several RTM_NEWLINK notifications (creation, master,
    flags, carrier); waking Python for each cost about a tenth of netd's CPU
    under load. A classic BPF filter on the socket looks at nlmsg_type, which
    is in host byte order while BPF loads are big-endian.
    """
    wanted = struct.unpack(">H", struct.pack("=H", msg_type))[0]
    program = [(BPF_LD_H_ABS, 0, 0, 4), (BPF_JEQ_K, 0, 1, wanted), (BPF_RET_K, 0, 0, 0xFFFFFFFF), (BPF_RET_K, 0, 0, 0)]
    code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *insn) for insn in program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("@HP", len(program), ctypes.addressof(code)))


class Notifications:
    """Has the kernel multicast anything to `groups` since the last look?

    Lets a periodic check skip work while nothing changed: the firewall
    check its `nft` run, the healer its dump of the bridges' neighbour
    tables (1000 entries at scale). The first look, one after lost
    notifications, and every look once subscribing failed say yes: nothing
    is known then. `only`: a message type; the kernel drops the others.
    """

    def __init__(self, protocol: int, groups: int, only: int | None = None) -> None:
        self._protocol, self._groups, self._only = protocol, groups, only
        self._sock: socket.socket | None = None
        self._unavailable = False

    def _subscribe(self) -> socket.socket | None:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                 self._protocol)
        except OSError:
            return None
        try:
            if self._only is not None:
                only_deletions(sock, self._only)
            sock.bind((0, self._groups))
        except OSError:
            sock.close()
            return None
        return sock

    def arrived(self) -> bool:
        if self._unavailable:
            return True
        if self._sock is None:
            self._sock = self._subscribe()
            self._unavailable = self._sock is None
            return True
        arrived = False
        while True:
            try:
                self._sock.recv(1 << 16)
            except BlockingIOError:
                return arrived
            except OSError as e:
                if e.errno != errno.ENOBUFS:  # ENOBUFS: notifications were lost
                    raise
            arrived = True


def watch_deleted_veths(
    on_deleted: Callable[[str, int], object],
    on_resync: Callable[[], object],
    stop: threading.Event,
) -> None:
    """Call on_deleted(name, ifindex) for every netd veth the kernel deletes,
    and on_resync() once subscribed and whenever events were lost: the caller
    then compares its records with the kernel."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        only_deletions(sock)
        sock.bind((0, RTMGRP_LINK))
        on_resync()  # deaths between start-up reconcile and this subscription
        while not stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.5)
            if not ready:
                continue
            try:
                data = sock.recv(1 << 16)
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    on_resync()
                    continue
                raise
            for name, index in parse_deleted_links(data):
                if name.startswith(HOST_IFNAME_PREFIX):
                    on_deleted(name, index)
