"""The hand-built attach/detach requests against pyroute2, the reference: each
message fastpath builds is decoded with pyroute2's parser and compared,
attribute by attribute, with what pyroute2 builds for the same request."""

import errno
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

import pytest
from pyroute2 import IPBatch
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from netd.kernel import fastpath as fp

MAC = "02:42:0a:59:00:02"


def decoded(message: bytes) -> dict:
    (msg,) = MarshalRtnl().parse(message)
    return canonical(msg)


def canonical(msg) -> dict:
    """Fixed fields and attributes, nested ones too, as plain data; the
    header's sequence, port and length left out (they say nothing about the
    request), and NLA_F_NESTED, which pyroute2 does not set, ignored."""
    fields = {k: v for k, v in msg.items() if k not in ("attrs", "header", "value")}
    header = msg.get("header")
    if header:
        # fastpath asks for an ack on a batch's last request only
        fields["header"] = (header["type"], header["flags"] & ~fp.F_ACK)
    attrs = sorted((a[0], canonical(a[1]) if hasattr(a[1], "items") else a[1]) for a in msg.get("attrs", ()))
    return {**fields, "attrs": attrs}


def ours(request: fp.Request) -> dict:
    msg_type, flags, body = request
    return decoded(fp.NLMSG.pack(fp.NLMSG.size + len(body), msg_type, flags | fp.F_REQUEST, 1, 0) + body)


def pyroute2s(call) -> dict:
    batch = IPBatch()
    call(batch)
    return decoded(bytes(batch.batch))


CASES = {
    "veth with its peer in the container": (
        (fp.RTM_NEWLINK, fp.F_CREATE | fp.F_EXCL, fp.veth_body("vndhost", "eth0", 7, 3, 1400, MAC)),
        lambda b: b.link("add", ifname="vndhost", kind="veth", mtu=1400, master=3, num_tx_queues=1, num_rx_queues=1,
                         peer={"ifname": "eth0", "address": MAC, "mtu": 1400, "net_ns_fd": 7,
                               "num_tx_queues": 1, "num_rx_queues": 1})),
    "netd's mark": (
        (fp.RTM_NEWLINK, 0, fp.alias_body("vndhost", "netd:abc")), lambda b: b.link("set", ifname="vndhost", ifalias="netd:abc")),
    "read a link by name": (
        (fp.RTM_GETLINK, 0, fp.get_link_body(name="vndhost")), lambda b: b.link("get", ifname="vndhost")),
    "read a link by index": ((fp.RTM_GETLINK, 0, fp.get_link_body(9)), lambda b: b.link("get", index=9)),
    "link up": ((fp.RTM_NEWLINK, 0, fp.link_up_body(5)), lambda b: b.link("set", index=5, state="up")),
    "no IPv6 link-local address": (
        (fp.RTM_NEWLINK, 0, fp.no_ipv6_link_local_body(5)),
        lambda b: b.link("set", index=5, IFLA_AF_SPEC={"attrs": [("AF_INET6", {"attrs": [("IFLA_INET6_ADDR_GEN_MODE", 1)]})]})),
    "bridge port flags": (
        (fp.RTM_NEWLINK, 0, fp.bridge_port_body("vndhost", True, False)),
        lambda b: b.brport("set", ifname="vndhost", mode=1, isolated=0)),
    "set the MAC": ((fp.RTM_NEWLINK, 0, fp.set_mac_body(5, MAC)), lambda b: b.link("set", index=5, address=MAC)),
    "move into a link group": (
        (fp.RTM_NEWLINK, 0, fp.set_group_body("vndhost", 0x6E640001)),
        lambda b: b.link("set", ifname="vndhost", group=0x6E640001)),
    "delete a link group": (
        (fp.RTM_DELLINK, 0, fp.group_body(0x6E640001)), lambda b: b.link("del", group=0x6E640001)),
    "IPv4 address": (
        (fp.RTM_NEWADDR, fp.F_CREATE | fp.F_EXCL, fp.address_body(5, IPv4Interface("10.89.0.2/16"))),
        lambda b: b.addr("add", index=5, address="10.89.0.2", prefixlen=16, broadcast="10.89.255.255")),
    "IPv6 address without DAD": (
        (fp.RTM_NEWADDR, fp.F_CREATE | fp.F_EXCL, fp.address_body(5, IPv6Interface("fd91::2/64"))),
        lambda b: b.addr("add", index=5, address="fd91::2", prefixlen=64, flags=fp.IFA_F_NODAD)),
    "default route": (
        (fp.RTM_NEWROUTE, fp.F_CREATE | fp.F_EXCL, fp.default_route_body(5, IPv4Address("10.89.0.1"), 2)),
        lambda b: b.route("add", dst="default", gateway="10.89.0.1", oif=5, priority=2, table=254, proto="static")),
    # (pyroute2 writes metric 0 of an IPv6 route as 1024, which the kernel makes of 0 too)
    "IPv6 default route": (
        (fp.RTM_NEWROUTE, fp.F_CREATE | fp.F_EXCL, fp.default_route_body(5, IPv6Address("fd91::1"), 1)),
        lambda b: b.route("add", family=10, dst="default", gateway="fd91::1", oif=5, priority=1, table=254,
                          proto="static")),
    "pinned neighbour entry": (
        fp.pin_request(5, IPv4Address("10.89.0.1"), MAC),
        lambda b: b.neigh("replace", dst="10.89.0.1", lladdr=MAC, ifindex=5, state="permanent",
                          protocol=fp.RTPROT_NETD)),
    "pinned IPv6 neighbour entry": (
        fp.pin_request(5, IPv6Address("fd91::1"), MAC),
        lambda b: b.neigh("replace", dst="fd91::1", lladdr=MAC, ifindex=5, state="permanent", family=10,
                          protocol=fp.RTPROT_NETD)),
    "read a neighbour entry": (
        (fp.RTM_GETNEIGH, 0, fp.neighbour_body(5, IPv4Address("10.89.0.2"))),
        lambda b: b.neigh("get", dst="10.89.0.2", ifindex=5)),
    "delete a neighbour entry": (
        (fp.RTM_DELNEIGH, 0, fp.neighbour_body(5, IPv4Address("10.89.0.2"))),
        lambda b: b.neigh("del", dst="10.89.0.2", ifindex=5, state=0)),
}


@pytest.mark.parametrize("case", CASES)
def test_each_request_is_what_pyroute2_builds(case):
    request, build = CASES[case]
    assert ours(request) == pyroute2s(build)


def test_the_comparison_can_fail():
    request, build = CASES["veth with its peer in the container"]
    assert ours(request) != pyroute2s(lambda b: b.link(
        "add", ifname="vndhost", kind="veth", mtu=1400, master=3, num_tx_queues=1, num_rx_queues=1,
        peer={"ifname": "eth1", "address": MAC, "mtu": 1400, "net_ns_fd": 7, "num_tx_queues": 1, "num_rx_queues": 1}))


def test_every_request_builder_is_compared():
    built = {name for name in dir(fp) if name.endswith("_body")} | {"pin_request"}
    compared = {"veth_body", "alias_body", "get_link_body", "link_up_body", "no_ipv6_link_local_body", "bridge_port_body",
                "set_mac_body", "set_group_body", "group_body", "address_body", "default_route_body",
                "neighbour_body", "pin_request"}
    assert built == compared


def answer(msg_type: int, seq: int, body: bytes) -> bytes:
    return fp.NLMSG.pack(fp.NLMSG.size + len(body), msg_type, 0, seq, 0) + body


class FakeSocket:
    """Answers a batch as the kernel would: the datagrams given, in order."""

    def __init__(self, *datagrams: bytes) -> None:
        self.datagrams, self.sent = list(datagrams), []

    def bind(self, address):
        pass

    def send(self, data):
        self.sent.append(data)

    def recv(self, size):
        return self.datagrams.pop(0)


def test_exchange_asks_one_ack_and_reads_each_answer_and_errno():
    link = fp.IFINFO.pack(0, 0, 42, 0, 0) + fp.u32(fp.IFLA_LINK, 7)
    sock = FakeSocket(answer(fp.RTM_NEWLINK, 2, link), answer(fp.NLMSG_ERROR, 3, fp.ERRNO.pack(-errno.EEXIST)))
    replies, errors = fp.Rtnl(sock).exchange((fp.RTM_NEWLINK, 0, b""), (fp.RTM_GETLINK, 0, b""),
                                             (fp.RTM_NEWNEIGH, 0, b""))
    assert errors == [0, 0, errno.EEXIST] and replies[1] == link
    flags = []
    offset = 0
    while offset < len(sock.sent[0]):
        length, _, flag, _, _ = fp.NLMSG.unpack_from(sock.sent[0], offset)
        flags.append(flag)
        offset += length
    assert [bool(f & fp.F_ACK) for f in flags] == [False, False, True]


def test_the_peer_index_is_read_from_the_link_answer_or_is_its_own():
    no_such_link = answer(fp.NLMSG_ERROR, 1, fp.ERRNO.pack(-errno.ENODEV))
    for link, peer in ((fp.IFINFO.pack(0, 0, 42, 0, 0) + fp.u32(fp.IFLA_LINK, 7), 7),
                       (fp.IFINFO.pack(0, 0, 42, 0, 0) + fp.text_attr(fp.IFLA_IFNAME, "vndx"), 42)):
        sock = FakeSocket(no_such_link, answer(fp.RTM_NEWLINK, 3, link))
        assert fp.Rtnl(sock).create_veth("vndx", "eth0", 5, 3, 1500, MAC) == (42, peer)


def test_find_attr_stops_at_a_malformed_attribute():
    body = fp.text_attr(fp.IFLA_IFNAME, "vndx") + fp.u32(fp.IFLA_LINK, 7)
    assert fp.find_attr(body, 0, fp.IFLA_LINK) == (7).to_bytes(4, "little")
    assert fp.find_attr(fp.NLA.pack(2, fp.IFLA_MTU) + body, 0, fp.IFLA_LINK) is None


def test_a_link_holding_the_name_fails_creation_before_anything_names_it():
    sock = FakeSocket(answer(fp.RTM_NEWLINK, 1, fp.IFINFO.pack(0, 0, 9, 0, 0)))
    with pytest.raises(fp.NetlinkError) as failed:
        fp.Rtnl(sock).create_veth("vndx", "eth0", 5, 3, 1500, MAC, alias="netd:abc")
    assert failed.value.errno == errno.EEXIST and len(sock.sent) == 1  # only the look
