"""The link watcher: its kernel-side filter and its reading of what passes,
on messages pyroute2 encodes."""

import socket

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from netd import notify
from netd.kernel import watch

RTM_NEWLINK, IFF_UP = 16, 1


def message(msg_type: int, index: int, name: str, family: int = 0, flags: int = 0, change: int = 0) -> bytes:
    msg = ifinfmsg()
    msg["family"], msg["index"], msg["flags"], msg["change"] = family, index, flags, change
    msg["attrs"] = [("IFLA_MTU", 1500), ("IFLA_IFNAME", name)]
    msg["header"]["type"] = msg_type
    msg.encode()
    return bytes(msg.data)


def test_reads_type_index_and_name_of_device_messages_only():
    data = (message(RTM_NEWLINK, 5, "vndnew") + message(notify.RTM_DELLINK, 7, "vndgone")
            + message(notify.RTM_DELLINK, 8, "vndport", family=socket.AF_BRIDGE))
    assert list(watch.link_events(data)) == [(RTM_NEWLINK, 5, "vndnew"), (notify.RTM_DELLINK, 7, "vndgone")]


def test_a_truncated_datagram_yields_nothing():
    assert list(watch.link_events(message(notify.RTM_DELLINK, 7, "vndgone")[:20])) == []


def run_filter(program, packet: bytes) -> bool:
    """A classic BPF interpreter for the instructions the filter uses."""
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == watch.BPF_RET_K:
            return k != 0
        if code == watch.BPF_LD_B_ABS:
            acc = packet[k]
        elif code == watch.BPF_LD_H_ABS:
            acc = int.from_bytes(packet[k:k + 2], "big")
        elif code == watch.BPF_LD_W_ABS:
            acc = int.from_bytes(packet[k:k + 4], "big")
        elif code in (watch.BPF_JEQ_K, watch.BPF_JSET_K):
            hit = acc == k if code == watch.BPF_JEQ_K else bool(acc & k)
            pc += jt if hit else jf
        pc += 1


@pytest.mark.parametrize("packet,passes", [
    (message(notify.RTM_DELLINK, 7, "vndgone"), True),
    (message(notify.RTM_DELLINK, 7, "vndport", family=socket.AF_BRIDGE), False),
    (message(RTM_NEWLINK, 7, "vnd1", flags=0, change=IFF_UP), True),  # set down
    (message(RTM_NEWLINK, 7, "vnd1", flags=IFF_UP, change=IFF_UP), False),  # set up
    (message(RTM_NEWLINK, 7, "vnd1", flags=0, change=0xFFFFFFFF), False),  # just created, down
    (message(RTM_NEWLINK, 7, "vnd1", flags=0, change=0), False),  # down, something else changed
])
def test_the_filter_passes_deletions_and_links_set_down(packet, passes):
    assert run_filter(watch.deletions_and_downs(), packet) is passes


def test_the_kernel_accepts_the_filters():
    with watch.subscribe():
        pass  # a malformed BPF program would raise EINVAL
    with notify.subscribe(socket.NETLINK_ROUTE, 0, only=notify.RTM_DELLINK):
        pass
