"""Has the kernel announced anything since the last look? A periodic check
asks before doing its work: the firewall check before running `nft`, the
healer before dumping the bridges' neighbour tables.

A netlink socket subscribed to multicast groups; a classic BPF filter can
make the kernel drop every message but one type, so Python wakes only for
those.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct

RTMGRP_LINK = 0x1
RTMGRP_NEIGH = 0x4
RTM_DELLINK = 17
RTM_DELNEIGH = 29
SO_ATTACH_FILTER = 26
BPF_LD_H_ABS, BPF_JEQ_K, BPF_RET_K = 0x28, 0x15, 0x06


def only_type(sock: socket.socket, msg_type: int) -> None:
    """Let the kernel drop every notification but those of `msg_type`.

    Each attach sends several RTM_NEWLINK notifications (creation, master,
    flags, carrier); waking Python for each cost about a tenth of netd's CPU
    under load. The filter looks at nlmsg_type, which is in host byte order
    while BPF loads are big-endian.
    """
    wanted = struct.unpack(">H", struct.pack("=H", msg_type))[0]
    program = [(BPF_LD_H_ABS, 0, 0, 4), (BPF_JEQ_K, 0, 1, wanted), (BPF_RET_K, 0, 0, 0xFFFFFFFF), (BPF_RET_K, 0, 0, 0)]
    code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *insn) for insn in program))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("@HP", len(program), ctypes.addressof(code)))


def subscribe(protocol: int, groups: int, only: int | None = None, blocking: bool = False) -> socket.socket:
    """A netlink socket bound to `groups`, optionally filtered to one message type."""
    flags = socket.SOCK_CLOEXEC | (0 if blocking else socket.SOCK_NONBLOCK)
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | flags, protocol)
    try:
        if only is not None:
            only_type(sock, only)
        sock.bind((0, groups))
    except OSError:
        sock.close()
        raise
    return sock


class Notifications:
    """Has the kernel multicast anything to `groups` since the last look?

    The first look, one after lost notifications, and every look once
    subscribing failed say yes: nothing is known then.
    """

    def __init__(self, protocol: int, groups: int, only: int | None = None) -> None:
        self._protocol, self._groups, self._only = protocol, groups, only
        self._sock: socket.socket | None = None
        self._unavailable = False

    def arrived(self) -> bool:
        if self._unavailable:
            return True
        if self._sock is None:
            try:
                self._sock = subscribe(self._protocol, self._groups, self._only)
            except OSError:
                self._unavailable = True
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
