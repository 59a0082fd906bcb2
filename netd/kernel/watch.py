"""Notice netd veths vanishing: when a container's netns dies the kernel
destroys its veth pair, and the host end's RTM_DELLINK tells us at once.
The kernel passes only deletions (notify.only_type); pyroute2 parses them.
"""

from __future__ import annotations

import errno
import select
import socket
import threading
from collections.abc import Callable, Iterator

from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from netd import notify
from netd.model import HOST_IFNAME_PREFIX


def deleted_links(data: bytes) -> Iterator[tuple[str, int]]:
    """(ifname, ifindex) for each RTM_DELLINK of a device in a netlink datagram.
    (AF_BRIDGE deletions only say a port left its bridge; the device lives.)"""
    for msg in MarshalRtnl().parse(data):
        if msg["header"]["type"] == notify.RTM_DELLINK and msg["family"] == socket.AF_UNSPEC:
            yield msg.get("ifname") or "", msg["index"]


def watch_deleted_veths(
    on_deleted: Callable[[str, int], object],
    on_resync: Callable[[], object],
    stop: threading.Event,
) -> None:
    """Call on_deleted(name, ifindex) for every netd veth the kernel deletes,
    and on_resync() once subscribed and whenever events were lost: the caller
    then compares its records with the kernel."""
    with notify.subscribe(socket.NETLINK_ROUTE, notify.RTMGRP_LINK, only=notify.RTM_DELLINK, blocking=True) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
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
            for name, index in deleted_links(data):
                if name.startswith(HOST_IFNAME_PREFIX):
                    on_deleted(name, index)
