"""Notice links vanishing or going down.

When a container's netns dies the kernel destroys its veth pair, and the
host end's RTM_DELLINK tells us at once; when someone sets a link down
(`ip link set vnd… down`), an RTM_NEWLINK says its IFF_UP changed and is off.
A BPF filter lets through only those two (not the handful of RTM_NEWLINKs
every attach causes), and Python reads just the header and the name, as
fastpath reads link answers: a deletion per detach, parsed whole by
pyroute2, cost ~0.17 ms of netd's CPU each (tests/unit/test_watch.py
decodes messages pyroute2 encodes).
"""

from __future__ import annotations

import ctypes
import errno
import select
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator

from netd import notify
from netd.kernel.fastpath import IFF_UP, IFINFO, IFLA_IFNAME, NLMSG, RTM_NEWLINK, find_attr
from netd.model import HOST_IFNAME_PREFIX

BPF_LD_W_ABS, BPF_LD_H_ABS, BPF_LD_B_ABS = 0x20, 0x28, 0x30
BPF_JEQ_K, BPF_JSET_K, BPF_RET_K = 0x15, 0x45, 0x06
ALL_CHANGED = 0xFFFFFFFF  # ifi_change of a link being registered


def _u32_low_byte(offset: int) -> int:
    """Where a u32's lowest byte sits (BPF loads bytes by address)."""
    return offset if sys.byteorder == "little" else offset + 3


def _host_u16(value: int) -> int:
    """nlmsg_type as BPF's big-endian half-word load sees it."""
    return struct.unpack(">H", struct.pack("=H", value))[0]


def deletions_and_downs() -> list[tuple[int, int, int, int]]:
    """The filter: RTM_DELLINK of a device, or RTM_NEWLINK of a device
    whose IFF_UP changed and is now off. A jump skips that many
    instructions after its own."""
    family, flags, change = NLMSG.size, NLMSG.size + 8, NLMSG.size + 12
    accept, reject = (BPF_RET_K, 0, 0, 0xFFFFFFFF), (BPF_RET_K, 0, 0, 0)
    return [
        (BPF_LD_B_ABS, 0, 0, family),                      # 0
        (BPF_JEQ_K, 0, 10, socket.AF_UNSPEC),              # 1: a bridge port's family: reject
        (BPF_LD_H_ABS, 0, 0, 4),                           # 2: nlmsg_type
        (BPF_JEQ_K, 7, 0, _host_u16(notify.RTM_DELLINK)),  # 3: deleted: accept
        (BPF_JEQ_K, 0, 7, _host_u16(RTM_NEWLINK)),         # 4
        (BPF_LD_B_ABS, 0, 0, _u32_low_byte(flags)),        # 5
        (BPF_JSET_K, 5, 0, IFF_UP),                        # 6: up: reject
        (BPF_LD_W_ABS, 0, 0, change),                      # 7
        (BPF_JEQ_K, 3, 0, ALL_CHANGED),                    # 8: just registered: reject
        (BPF_LD_B_ABS, 0, 0, _u32_low_byte(change)),       # 9
        (BPF_JSET_K, 0, 1, IFF_UP),                        # 10: IFF_UP changed: accept
        accept,                                            # 11
        reject,                                            # 12
    ]


def subscribe() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    program = deletions_and_downs()
    code = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *insn) for insn in program))
    sock.setsockopt(socket.SOL_SOCKET, notify.SO_ATTACH_FILTER, struct.pack("@HP", len(program), ctypes.addressof(code)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((0, notify.RTMGRP_LINK))
    return sock


def link_events(data: bytes) -> Iterator[tuple[int, int, str]]:
    """(message type, ifindex, ifname) of each link message of a device in a
    datagram. (AF_BRIDGE ones only say a port left its bridge; the device lives.)"""
    offset = 0
    while offset + NLMSG.size + IFINFO.size <= len(data):
        length, msg_type, _, _, _ = NLMSG.unpack_from(data, offset)
        if length < NLMSG.size + IFINFO.size:
            return
        family, _, index, _, _ = IFINFO.unpack_from(data, offset + NLMSG.size)
        if family == socket.AF_UNSPEC:
            name = find_attr(data[:offset + length], offset + NLMSG.size + IFINFO.size, IFLA_IFNAME)
            yield msg_type, index, name.split(b"\0", 1)[0].decode(errors="replace") if name else ""
        offset += (length + 3) & ~3


def watch_links(
    on_deleted: Callable[[str, int], object],
    on_down: Callable[[int], object],
    on_resync: Callable[[], object],
    stop: threading.Event,
) -> None:
    """Call on_deleted(name, ifindex) for every netd veth the kernel
    deletes, on_down(ifindex) for every link set down, and on_resync() once
    subscribed and whenever events were lost: the caller then compares its
    records with the kernel."""
    with subscribe() as sock:
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
            for msg_type, index, name in link_events(data):
                if msg_type == RTM_NEWLINK:
                    on_down(index)
                elif name.startswith(HOST_IFNAME_PREFIX):
                    on_deleted(name, index)
