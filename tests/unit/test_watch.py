import struct

from netd.watch import IFINFOMSG, NLMSG_HDR, RTA_HDR, RTM_DELLINK, parse_deleted_links

RTM_NEWLINK = 16


def message(msg_type: int, index: int, name: str, family: int = 0) -> bytes:
    raw = name.encode() + b"\0"
    attr = RTA_HDR.pack(RTA_HDR.size + len(raw), 3) + raw
    attr += b"\0" * (-len(attr) % 4)
    body = IFINFOMSG.pack(family, 1, index, 0, 0) + struct.pack("=HH", 8, 4) + b"\xdc\x05\0\0" + attr
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), msg_type, 0, 0, 0) + body


def test_parses_deleted_links_and_skips_others():
    data = message(RTM_NEWLINK, 5, "vndnew") + message(RTM_DELLINK, 7, "vndgone") + message(RTM_DELLINK, 8, "eth1")
    assert list(parse_deleted_links(data)) == [("vndgone", 7), ("eth1", 8)]


def test_a_port_leaving_its_bridge_is_not_a_deletion():
    assert list(parse_deleted_links(message(RTM_DELLINK, 7, "vndport", family=7))) == []


def test_truncated_datagram_yields_nothing():
    assert list(parse_deleted_links(message(RTM_DELLINK, 7, "vndgone")[:10])) == []


def test_the_kernel_accepts_the_deletions_only_filter():
    import socket

    from netd.watch import only_deletions

    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        only_deletions(sock)  # a malformed BPF program would raise EINVAL
