"""The hand-built rtnetlink messages, checked as bytes (no kernel needed)."""

import socket
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address

from netd import rtnl


def test_attr_is_padded_to_four_bytes():
    data = rtnl.attr(3, b"eth0\0")
    assert len(data) == 12 and data[:4] == rtnl.NLA.pack(9, 3)


def test_parse_attrs_round_trips_nested():
    body = rtnl.name_attr("vndx") + rtnl.u32(rtnl.IFLA_MTU, 1400) + rtnl.nested(
        rtnl.IFLA_LINKINFO, rtnl.attr(rtnl.IFLA_INFO_KIND, b"veth\0"))
    attrs = rtnl.parse_attrs(body)
    assert rtnl.text(attrs[rtnl.IFLA_IFNAME]) == "vndx"
    assert rtnl.num(attrs[rtnl.IFLA_MTU]) == 1400
    assert rtnl.text(rtnl.parse_attrs(attrs[rtnl.IFLA_LINKINFO])[rtnl.IFLA_INFO_KIND]) == "veth"


def test_find_attr_returns_the_first_of_its_kind_and_none_when_absent():
    body = rtnl.name_attr("vndx") + rtnl.u32(rtnl.IFLA_LINK, 7) + rtnl.u32(rtnl.IFLA_LINK, 9)
    assert rtnl.num(rtnl.find_attr(body, 0, rtnl.IFLA_LINK)) == 7
    assert rtnl.text(rtnl.find_attr(body, 0, rtnl.IFLA_IFNAME)) == "vndx"
    assert rtnl.find_attr(body, 0, rtnl.IFLA_MTU) is None
    assert rtnl.find_attr(rtnl.NLA.pack(2, rtnl.IFLA_MTU) + body, 0, rtnl.IFLA_LINK) is None  # malformed: stop


def test_veth_request_carries_peer_with_netns_fd_mac_and_mtu():
    body = rtnl.veth_body("vndhost", "eth0", 7, 3, 1400, "02:42:0a:59:00:02")
    link = rtnl.parse_link(body)
    assert (link.name, link.mtu, link.master, link.kind, link.flags) == ("vndhost", 1400, 3, "veth", 0)  # down
    host_attrs = rtnl.parse_attrs(body, rtnl.IFINFO.size)
    assert rtnl.num(host_attrs[rtnl.IFLA_NUM_TX_QUEUES]) == rtnl.num(host_attrs[rtnl.IFLA_NUM_RX_QUEUES]) == 1
    info = rtnl.parse_attrs(host_attrs[rtnl.IFLA_LINKINFO])
    peer = rtnl.parse_attrs(info[rtnl.IFLA_INFO_DATA])[rtnl.VETH_INFO_PEER]
    peer_attrs = rtnl.parse_attrs(peer, rtnl.IFINFO.size)
    assert rtnl.text(peer_attrs[rtnl.IFLA_IFNAME]) == "eth0"
    assert rtnl.num(peer_attrs[rtnl.IFLA_NET_NS_FD]) == 7
    assert peer_attrs[rtnl.IFLA_ADDRESS] == bytes.fromhex("02420a590002")
    assert rtnl.num(peer_attrs[rtnl.IFLA_NUM_TX_QUEUES]) == rtnl.num(peer_attrs[rtnl.IFLA_NUM_RX_QUEUES]) == 1


def test_address_request_has_local_and_broadcast():
    body = rtnl.address_body(5, IPv4Interface("10.89.0.2/16"))
    assert rtnl.parse_addr(body) == rtnl.Addr(5, IPv4Interface("10.89.0.2/16"))
    attrs = rtnl.parse_attrs(body, rtnl.IFADDR.size)
    assert IPv4Address(attrs[rtnl.IFA_BROADCAST]) == IPv4Address("10.89.255.255")
    assert rtnl.IFADDR.unpack_from(body)[0] == socket.AF_INET


def test_default_route_request():
    route = rtnl.parse_route(rtnl.default_route_body(5, IPv4Address("10.89.0.1")))
    assert route == rtnl.Route(IPv4Network("0.0.0.0/0"), 5, IPv4Address("10.89.0.1"), rtnl.RT_TABLE_MAIN)


def test_neighbour_request_is_permanent_with_a_mac_and_a_bare_key_without():
    pinned = rtnl.neighbour_body(5, IPv6Address("fd91::2"), "02:42:0a:5b:00:02")
    family, index, state, _, _ = rtnl.NDMSG.unpack_from(pinned)
    attrs = rtnl.parse_attrs(pinned, rtnl.NDMSG.size)
    assert (family, index, state) == (socket.AF_INET6, 5, rtnl.NUD_PERMANENT)
    assert IPv6Address(attrs[rtnl.NDA_DST]) == IPv6Address("fd91::2")
    assert attrs[rtnl.NDA_LLADDR] == bytes.fromhex("02420a5b0002")
    key = rtnl.neighbour_body(5, IPv4Address("10.89.0.2"))
    assert rtnl.NDMSG.unpack_from(key)[:3] == (socket.AF_INET, 5, 0)
    assert rtnl.parse_attrs(key, rtnl.NDMSG.size).keys() == {rtnl.NDA_DST}
