"""The link watcher's parsing (pyroute2's) and the kernel-side filter."""

import socket

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from netd import notify
from netd.kernel.watch import deleted_links

RTM_NEWLINK = 16


def message(msg_type: int, index: int, name: str, family: int = 0) -> bytes:
    msg = ifinfmsg()
    msg["family"], msg["index"] = family, index
    msg["attrs"] = [("IFLA_IFNAME", name), ("IFLA_MTU", 1500)]
    msg["header"]["type"] = msg_type
    msg.encode()
    return bytes(msg.data)


def test_parses_deleted_links_and_skips_others():
    data = message(RTM_NEWLINK, 5, "vndnew") + message(notify.RTM_DELLINK, 7, "vndgone") + \
        message(notify.RTM_DELLINK, 8, "eth1")
    assert list(deleted_links(data)) == [("vndgone", 7), ("eth1", 8)]


def test_a_port_leaving_its_bridge_is_not_a_deletion():
    assert list(deleted_links(message(notify.RTM_DELLINK, 7, "vndport", family=socket.AF_BRIDGE))) == []


def test_the_kernel_accepts_the_one_type_filter():
    with notify.subscribe(socket.NETLINK_ROUTE, 0, only=notify.RTM_DELLINK):
        pass  # a malformed BPF program would raise EINVAL
