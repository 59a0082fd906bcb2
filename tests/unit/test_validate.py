import dataclasses
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from netd import validate
from netd.errors import AddressOutOfRange, InvalidArgument
from netd.model import NetworkConfig

NET = NetworkConfig("default", "netd0", IPv4Network("10.89.0.0/16"), IPv4Address("10.89.0.1"), 1500)


def attach(net=NET, **kw):
    fields = dict(container_id_="c1", pid_=1234, netns_path_="", ifname_="", ip_address="")
    fields.update(kw)
    return validate.attach_request(net, **fields)


def test_defaults():
    req = attach()
    assert (req.container_id, req.pid, req.ifname, req.ip_address) == ("c1", 1234, "eth0", None)


@pytest.mark.parametrize("cid", ["", "-x", "a/b", "a b", "x" * 129, "é", "a\0b", "../etc"])
def test_bad_container_ids_name_the_field(cid):
    with pytest.raises(InvalidArgument, match="container_id"):
        attach(container_id_=cid)


@pytest.mark.parametrize("name", ["x" * 16, "a/b", "lo", ".", "..", "a b", "a:b", "é", "tab\t"])
def test_bad_ifnames_name_the_field(name):
    with pytest.raises(InvalidArgument, match="ifname"):
        attach(ifname_=name)


def test_fifteen_byte_ifname_is_fine():
    assert attach(ifname_="x" * 15).ifname == "x" * 15


@pytest.mark.parametrize("pid", [-1, 1, 4194305, 2**31 - 1])
def test_bad_pids(pid):
    with pytest.raises(InvalidArgument, match="pid"):
        attach(pid_=pid)


def test_both_pid_and_netns_path_is_refused():
    with pytest.raises(InvalidArgument, match="exactly one of pid and netns_path"):
        attach(netns_path_="/run/netns/x")


def test_neither_pid_nor_netns_path_is_refused():
    with pytest.raises(InvalidArgument, match="exactly one of pid and netns_path"):
        attach(pid_=0)


@pytest.mark.parametrize("path", ["relative/path", "/a\0b", "/" + "a" * 5000])
def test_bad_netns_paths(path):
    with pytest.raises(InvalidArgument, match="netns_path"):
        attach(pid_=0, netns_path_=path)


@pytest.mark.parametrize("addr", ["10.89.0.2/16", "banana", "::1", "10.89.0.256", "1.2.3"])
def test_malformed_addresses(addr):
    with pytest.raises(InvalidArgument, match="ip_address"):
        attach(ip_address=addr)


@pytest.mark.parametrize("addr,why", [
    ("10.90.0.2", "outside"), ("10.89.0.1", "gateway"), ("10.89.0.0", "network"), ("10.89.255.255", "broadcast"),
])
def test_unusable_addresses(addr, why):
    with pytest.raises(AddressOutOfRange, match=why):
        attach(ip_address=addr)


def test_static_address_is_parsed():
    assert attach(ip_address="10.89.3.4").ip_address == IPv4Address("10.89.3.4")


def test_ports_default_to_tcp_and_every_host_address():
    (m,) = attach(ports_=[("", "", 8080, 80, 0)]).ports
    assert (m.protocol, m.host_ip, m.host_port, m.container_port, m.count) == ("tcp", None, 8080, 80, 1)
    (m,) = attach(ports_=[("UDP", "0.0.0.0", 53, 53, 3)]).ports
    assert (m.protocol, m.host_ip, m.count, str(m)) == ("udp", None, 3, "0.0.0.0:53-55->53-55/udp")


@pytest.mark.parametrize("item, field", [
    (("sctp", "", 80, 80, 0), "ports[0].protocol"),
    (("tcp", "", 0, 80, 0), "ports[0].host_port"),
    (("tcp", "", 80, 70000, 0), "ports[0].container_port"),
    (("tcp", "", 65535, 80, 2), "ports[0].range"),
    (("tcp", "nope", 80, 80, 0), "ports[0].host_ip"),
    (("tcp", "224.0.0.1", 80, 80, 0), "ports[0].host_ip"),
])
def test_bad_ports_name_the_field(item, field):
    with pytest.raises(InvalidArgument, match=field.replace("[", r"\[").replace("]", r"\]")):
        attach(ports_=[item])


def test_overlapping_ports_in_one_request_are_refused():
    with pytest.raises(InvalidArgument, match=r"ports\[1\].*overlaps"):
        attach(ports_=[("tcp", "", 8000, 80, 10), ("tcp", "10.0.0.1", 8005, 90, 0)])
    # other protocol, or other host addresses, do not overlap
    assert len(attach(ports_=[("tcp", "", 8000, 80, 0), ("udp", "", 8000, 80, 0)]).ports) == 2
    assert len(attach(ports_=[("tcp", "10.0.0.1", 80, 80, 0), ("tcp", "10.0.0.2", 80, 80, 0)]).ports) == 2


def test_ipv6_host_ip_needs_a_dual_stack_network():
    dual = dataclasses.replace(NET, subnet6=IPv6Network("fd89::/64"))
    (m,) = attach(dual, ports_=[("tcp", "[2001:db8::2]", 8080, 80, 0)]).ports
    assert (m.host_ip, m.versions(True), str(m)) == (IPv6Address("2001:db8::2"), [6], "[2001:db8::2]:8080->80/tcp")
    (m,) = attach(dual, ports_=[("tcp", "::", 8080, 80, 0)]).ports  # every IPv6 address
    assert (m.host_ip, m.only_address, m.versions(True)) == (IPv6Address("::"), None, [6])
    (m,) = attach(dual, ports_=[("tcp", "", 8080, 80, 0)]).ports
    assert (m.versions(True), m.versions(False)) == ([4, 6], [4])
    with pytest.raises(InvalidArgument, match=r"ports\[0\].host_ip 2001:db8::2 is IPv6, but network default has no subnet6"):
        attach(ports_=[("tcp", "2001:db8::2", 8080, 80, 0)])
    with pytest.raises(InvalidArgument, match=r"ports\[0\].host_ip ::1 cannot be published"):
        attach(dual, ports_=[("tcp", "::1", 8080, 80, 0)])


def test_ipv4_and_ipv6_mappings_of_a_port_overlap_only_when_their_families_meet():
    dual = dataclasses.replace(NET, subnet6=IPv6Network("fd89::/64"))
    assert len(attach(dual, ports_=[("tcp", "10.0.0.1", 80, 80, 0), ("tcp", "::", 80, 80, 0)]).ports) == 2
    assert len(attach(dual, ports_=[("tcp", "fd00::1", 80, 80, 0), ("tcp", "fd00::2", 80, 80, 0)]).ports) == 2
    for first, second in (("", "fd00::1"), ("::", "fd00::1"), ("", "::")):
        with pytest.raises(InvalidArgument, match=r"ports\[1\].*overlaps"):
            attach(dual, ports_=[("tcp", first, 80, 80, 0), ("tcp", second, 80, 80, 0)])


def test_too_many_published_ports():
    with pytest.raises(InvalidArgument, match="more than 1024"):
        attach(ports_=[("tcp", "", 1000, 1000, 1000), ("udp", "", 1000, 1000, 25)])
