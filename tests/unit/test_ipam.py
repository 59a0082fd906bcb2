from ipaddress import IPv4Address as A, IPv4Network

import pytest

from netd import ipam
from netd.errors import AddressInUse, PoolExhausted
from netd.model import NetworkConfig


def net(cidr: str = "10.0.0.0/29") -> NetworkConfig:
    subnet = IPv4Network(cidr)
    return NetworkConfig("default", "br", subnet, next(subnet.hosts()), 1500)


def test_first_address_skips_network_and_gateway():
    assert ipam.next_free(net(), set(), None) == A("10.0.0.2")


def test_round_robin_continues_after_last_handed_out():
    assert ipam.next_free(net(), set(), A("10.0.0.3")) == A("10.0.0.4")


def test_round_robin_does_not_reuse_a_just_released_address():
    # .2 was released, .3 was the last handed out: .4 comes next, not .2
    assert ipam.next_free(net(), {A("10.0.0.3")}, A("10.0.0.3")) == A("10.0.0.4")


def test_wraps_around_skipping_broadcast_and_gateway():
    used = {A("10.0.0.3"), A("10.0.0.4"), A("10.0.0.5")}
    assert ipam.next_free(net(), used, A("10.0.0.6")) == A("10.0.0.2")


def test_skips_used_addresses():
    assert ipam.next_free(net(), {A("10.0.0.2"), A("10.0.0.3")}, None) == A("10.0.0.4")


def test_capacity_of_slash_29_is_five():
    assert ipam.capacity(net()) == 5


def test_exhaustion_raises_pool_exhausted_naming_subnet():
    used = {A(f"10.0.0.{i}") for i in range(2, 7)}
    with pytest.raises(PoolExhausted, match="10.0.0.0/29"):
        ipam.next_free(net(), used, None)


def test_last_outside_subnet_is_ignored():
    assert ipam.next_free(net(), set(), A("192.0.2.9")) == A("10.0.0.2")


def test_static_address_is_returned_when_free():
    assert ipam.pick(net(), {A("10.0.0.2")}, None, A("10.0.0.5")) == A("10.0.0.5")


def test_static_address_in_use_is_refused():
    with pytest.raises(AddressInUse, match="10.0.0.5"):
        ipam.pick(net(), {A("10.0.0.5")}, None, A("10.0.0.5"))


def test_every_address_of_a_pool_is_handed_out_once():
    n, used, last = net("10.1.0.0/24"), set(), None
    for _ in range(ipam.capacity(n)):
        last = ipam.next_free(n, used, last)
        assert last not in used and last != n.gateway
        used.add(last)
    assert len(used) == 253
