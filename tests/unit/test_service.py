import threading
from contextlib import contextmanager
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Network

import pytest

from netd.errors import (
    AlreadyAttached,
    AlreadyExists,
    BridgeFull,
    ContainerNotFound,
    EndpointNotFound,
    FailedPrecondition,
    FirewallError,
    InvalidArgument,
    KernelError,
    NetworkNotFound,
    PoolExhausted,
)
from netd.firewall import Forward
from netd.model import AttachRequest, NetworkConfig, PortMapping, host_ifname_for
from netd.service import Busy, KeyedLocks, Service
from netd.store.memory import MemoryStore
from tests.unit.fakes import FakeFirewall, FakeLinks, FakeNamespaces, FakeSysctls


def make(cidr="10.89.0.0/16", alive=(100, 101, 102), icc=True):
    subnet = IPv4Network(cidr)
    net = NetworkConfig("default", "netd0", subnet, next(subnet.hosts()), 1500, icc=icc)
    svc = Service(networks=(net,), store=MemoryStore(), links=FakeLinks(), namespaces=FakeNamespaces(set(alive)),
                  firewall=FakeFirewall(), sysctls=FakeSysctls())
    svc.prepare()
    return svc


def test_attach_records_ready_endpoint_and_plugs_veth():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100))
    assert str(ep.address) == "10.89.0.2/16" and ep.ready
    assert ep.host_ifname == host_ifname_for("c1")
    assert svc.links.veths == {ep.host_ifname: ep.host_ifindex}
    assert svc.links.configured == {"10.89.0.2/16"}


def test_second_attach_of_same_id_is_refused_without_new_address():
    svc = make()
    svc.attach(AttachRequest("c1", pid=100))
    with pytest.raises(AlreadyAttached):
        svc.attach(AttachRequest("c1", pid=101))
    assert len(svc.store.used_addresses("default")) == 1


@pytest.mark.parametrize("step", ["create_veth", "configure_container_side", "settle_port"])
def test_failure_mid_attach_leaves_nothing_behind(step):
    svc = make()
    svc.links.fail_on = step
    with pytest.raises(KernelError, match="injected"):
        svc.attach(AttachRequest("c1", pid=100))
    assert svc.store.list() == []
    assert svc.links.veths == {} and svc.links.pinned == set()


def test_failure_of_the_undo_does_not_hide_the_original_error():
    svc = make()

    def broken(*_):
        raise RuntimeError("store broke")

    svc.store.mark_ready = broken
    svc.links.fail_on = ""
    with pytest.raises(RuntimeError, match="store broke"):
        svc.attach(AttachRequest("c1", pid=100))
    assert svc.links.veths == {} and svc.store.list() == [] and svc.links.pinned == set()


def test_unknown_pid_is_not_found_and_reserves_nothing():
    svc = make()
    with pytest.raises(ContainerNotFound):
        svc.attach(AttachRequest("c1", pid=999))
    assert svc.store.list() == []


def test_detach_removes_veth_then_releases():
    svc = make()
    svc.attach(AttachRequest("c1", pid=100))
    assert svc.links.pinned == {IPv4Address("10.89.0.2")}
    assert svc.detach("c1") == 1
    assert svc.links.veths == {} and svc.store.list() == [] and svc.links.pinned == set()
    assert svc.detach("c1") == 0


def test_detach_keeps_record_when_veth_deletion_fails():
    svc = make()
    svc.attach(AttachRequest("c1", pid=100))
    svc.links.fail_on = "delete_link"
    with pytest.raises(KernelError):
        svc.detach("c1")
    assert svc.store.get("default", "c1") is not None


def test_pool_exhaustion_leaves_nothing_behind():
    svc = make("10.0.0.0/29", alive=range(100, 110))
    for i in range(5):
        svc.attach(AttachRequest(f"c{i}", pid=100 + i))
    with pytest.raises(PoolExhausted):
        svc.attach(AttachRequest("c5", pid=105))
    assert len(svc.links.veths) == 5 and svc.store.get("default", "c5") is None


def test_bridge_full_before_the_kernel_refuses(monkeypatch):
    monkeypatch.setattr("netd.service.core.BRIDGE_MAX_PORTS", 2)
    svc = make()
    svc.attach(AttachRequest("c1", pid=100))
    svc.attach(AttachRequest("c2", pid=101))
    with pytest.raises(BridgeFull, match="netd0"):
        svc.attach(AttachRequest("c3", pid=102))


@contextmanager
def detaching(svc, container_id):
    """A detach of container_id stopped while its veth goes (the kernel's ~24 ms), until the block ends."""
    deleting, release = threading.Event(), threading.Event()
    delete_link = svc.links.delete_link

    def slow_delete(name):
        deleting.set()
        release.wait(5)
        return delete_link(name)

    svc.links.delete_link = slow_delete
    detach = threading.Thread(target=svc.detach, args=(container_id,))
    detach.start()
    try:
        assert deleting.wait(5)
        yield
    finally:
        release.set()
        detach.join()
        svc.links.delete_link = delete_link


def test_attach_told_not_to_wait_leaves_a_busy_container_id_alone():
    svc = make()
    svc.attach(AttachRequest("c1", pid=100))
    with detaching(svc, "c1"):
        with pytest.raises(Busy):
            svc.attach(AttachRequest("c1", pid=101), wait=False)
        assert [e.pid for e in svc.store.list()] == [100]
    assert svc.attach(AttachRequest("c1", pid=101), wait=False).pid == 101


def test_a_detach_waiting_for_its_veth_holds_up_no_other_container_id():
    svc = make(alive=range(100, 600))
    svc.attach(AttachRequest("c1", pid=100))
    with detaching(svc, "c1"):
        # With locks shared by hash (64 stripes), some of 400 other ids would share c1's and raise Busy.
        for i in range(400):
            svc.attach(AttachRequest(f"other{i}", pid=101 + i), wait=False)
    assert len(svc.store.list()) == 400
    assert len(svc._id_locks) == 0  # nothing kept for ids no call holds


def test_keyed_locks_serialise_one_key_and_raise_busy_when_told_not_to_wait():
    locks = KeyedLocks()
    with locks.hold("a"):
        with pytest.raises(Busy):
            with locks.hold("a", wait=False):
                pass
        with locks.hold("b", wait=False):
            assert len(locks) == 2
    assert len(locks) == 0


def test_parallel_attaches_get_distinct_addresses():
    svc = make(alive=range(1000, 1050))
    results, errors = [], []

    def go(i):
        try:
            results.append(svc.attach(AttachRequest(f"c{i}", pid=1000 + i)).address)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(results)) == 50


def test_reconcile_releases_dead_and_interrupted_and_deletes_orphans():
    svc = make()
    svc.attach(AttachRequest("alive", pid=100))
    svc.attach(AttachRequest("dead", pid=101))
    svc.store.add(_unready(svc, "half"))
    svc.namespaces.alive.discard(101)
    svc.links.veths.pop(host_ifname_for("dead"))
    svc.links.veths["vndorphan"] = 999
    repairs = svc.reconcile()
    assert [e.container_id for e in svc.store.list()] == ["alive"]
    assert repairs == 2
    assert "vndorphan" in svc.links.veths  # orphans wait for garbage collection, after serving
    assert svc.collect_garbage() == 1
    assert set(svc.links.veths) == {host_ifname_for("alive")}


def test_reconcile_deletes_what_an_unrecorded_attach_left():
    """A crash after plugging but before the record was written: no record,
    a veth and a pinned neighbour entry. Both go; the address is free."""
    svc = make()
    svc.attach(AttachRequest("kept", pid=100))
    svc.attach(AttachRequest("lost", pid=101))
    svc.store.remove("default", "lost")
    assert svc.links.pinned == {IPv4Address("10.89.0.2"), IPv4Address("10.89.0.3")}
    svc.reconcile()
    svc.verify_containers()
    assert set(svc.links.veths) == {host_ifname_for("kept")}
    assert svc.links.pinned == {IPv4Address("10.89.0.2")}


def _unready(svc, cid):
    """What a crash mid-attach leaves: a record never marked ready, its veth present."""
    ep = svc.attach(AttachRequest(cid, pid=102))
    svc.store.remove("default", cid)
    return replace(ep, ready=False, host_ifindex=0)


def test_reconcile_replugs_a_live_container_whose_veth_vanished():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100))
    svc.links.veths.clear()
    assert svc.reconcile() == 1
    again = svc.store.get("default", "c1")
    assert again.address == ep.address and again.host_ifindex != ep.host_ifindex
    assert again.host_ifname in svc.links.veths


def test_reconcile_replugs_a_container_whose_config_vanished():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100))
    svc.links.configured.clear()  # someone flushed the container's address
    assert svc.reconcile() == 0  # start-up only matches records and veths
    assert svc.verify_containers() == 1
    assert svc.links.configured == {str(ep.address)}
    assert svc.store.get("default", "c1").address == ep.address


def test_reconcile_leaves_a_live_veth_whose_pid_is_unreachable():
    svc = make()
    svc.attach(AttachRequest("c1", pid=100))
    svc.namespaces.alive.discard(100)  # pid gone, but the veth (and so the netns) lives on
    assert svc.reconcile() == 0
    assert svc.verify_containers() == 0
    assert svc.store.get("default", "c1") is not None


def test_check_reports_each_mismatch():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100))
    assert svc.check("c1") == []
    svc.links.configured.clear()
    svc.links.veths.clear()
    assert svc.check("c1") == [f"host: veth {ep.host_ifname} is missing", f"container: eth0 lacks address {ep.address}"]
    svc.namespaces.alive.clear()
    assert "container: network namespace is gone" in svc.check("c1")[1]


def test_inspect_unknown_is_not_found():
    with pytest.raises(EndpointNotFound, match="c9"):
        make().inspect("c9")


def test_forget_if_gone_only_for_the_matching_ifindex():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100))
    assert svc.forget_if_gone(ep.host_ifname, ep.host_ifindex + 1) is False
    assert svc.forget_if_gone(ep.host_ifname, ep.host_ifindex) is False  # the link is still there
    svc.links.veths.clear()
    assert svc.forget_if_gone(ep.host_ifname, ep.host_ifindex) is True
    assert svc.store.get("default", "c1") is None and svc.links.pinned == set()


def test_reconcile_pins_the_neighbour_entries_of_ready_endpoints():
    svc = make()
    svc.attach(AttachRequest("c1", pid=100))
    svc.links.pinned.clear()
    svc.reconcile()
    assert svc.links.pinned == {IPv4Address("10.89.0.2")}


def test_sweep_releases_endpoints_whose_veth_is_gone():
    svc = make()
    svc.attach(AttachRequest("c1", pid=100))
    svc.attach(AttachRequest("c2", pid=101))
    svc.links.veths.pop(host_ifname_for("c1"))
    assert svc.sweep() == 1
    assert [e.container_id for e in svc.list()] == ["c2"]


def test_heal_reapplies_firewall_only_when_flushed():
    svc = make()
    assert svc.heal()[0] == {}
    svc.firewall.flushed = True
    assert svc.heal()[0] == {"firewall": 1}
    assert svc.firewall.intact(svc.ruleset())


def test_heal_pins_again_the_neighbour_entries_someone_deleted_and_only_after_a_deletion():
    svc = make()
    kept, lost = svc.attach(AttachRequest("c1", pid=100)), svc.attach(AttachRequest("c2", pid=101))
    svc.links.pins[1].discard(lost.address.ip)
    assert svc.heal()[0] == {} and lost.address.ip not in svc.links.pinned  # no deletion notified: no look
    svc.links.neighbour_deleted = True
    assert svc.heal()[0] == {"neighbour": 1}
    assert svc.links.pinned == {kept.address.ip, lost.address.ip}
    svc.detach("c2")  # its own entries go with it, and stay gone
    svc.links.neighbour_deleted = True
    assert svc.heal()[0] == {} and svc.links.pinned == {kept.address.ip}


def test_heal_recreates_a_deleted_bridge_and_reattaches_ports():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100))
    svc.links.bridge_ok = False
    assert svc.heal()[0] == {"bridge": 1}
    assert svc.links.enslaved == [ep.host_ifname]


def test_static_address_is_used():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100, ip_address=IPv4Address("10.89.7.7")))
    assert str(ep.address) == "10.89.7.7/16"


WEB = PortMapping(8080, 80)


def test_published_ports_reach_the_firewall_with_the_container_address():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100, ports=(WEB,)))
    assert svc.firewall.rules.forwards == (Forward(WEB, ep.address.ip),)
    assert svc.links.port_flags[ep.host_ifname] == (True, False)  # hairpin, not isolated
    svc.detach("c1")
    assert svc.firewall.rules.forwards == ()


def test_a_published_host_port_belongs_to_one_endpoint():
    svc = make()
    svc.attach(AttachRequest("c1", pid=100, ports=(WEB,)))
    applied = svc.firewall.applied
    clash = PortMapping(8080, 9000, host_ip=IPv4Address("198.51.100.2"))
    with pytest.raises(AlreadyExists, match=r"ports\[0\].*8080/tcp is already published by container c1"):
        svc.attach(AttachRequest("c2", pid=101, ports=(clash,)))
    assert svc.store.get("default", "c2") is None and svc.firewall.applied == applied
    svc.attach(AttachRequest("c2", pid=101, ports=(PortMapping(8080, 80, "udp"),)))


def test_firewall_failure_rolls_back_the_attach():
    svc = make()
    svc.firewall.fail = True
    with pytest.raises(FirewallError):
        svc.attach(AttachRequest("c1", pid=100, ports=(WEB,)))
    assert svc.store.list() == [] and svc.links.veths == {}


def test_container_death_unpublishes_its_ports():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100, ports=(WEB,)))
    svc.links.veths.pop(ep.host_ifname)
    assert svc.forget_if_gone(ep.host_ifname, ep.host_ifindex)
    assert svc.firewall.rules.forwards == ()


def test_no_icc_isolates_every_port():
    svc = make(icc=False)
    ep = svc.attach(AttachRequest("c1", pid=100))
    assert svc.links.port_flags[ep.host_ifname] == (False, True)


def test_publishing_needs_a_firewall():
    svc = make()
    svc.firewall.name = "none"
    with pytest.raises(FailedPrecondition, match="--firewall none"):
        svc.attach(AttachRequest("c1", pid=100, ports=(WEB,)))


def two_networks():
    blue = NetworkConfig("blue", "br-blue", IPv4Network("10.91.0.0/24"), IPv4Address("10.91.0.1"), 1500)
    svc = Service(networks=(make().nets["default"], blue), store=MemoryStore(), links=FakeLinks(),
                  namespaces=FakeNamespaces({100, 101}), firewall=FakeFirewall(), sysctls=FakeSysctls())
    svc.prepare()
    return svc


def test_a_container_joins_two_networks_and_leaves_one():
    svc = two_networks()
    a = svc.attach(AttachRequest("c1", pid=100))
    b = svc.attach(AttachRequest("c1", pid=100, ifname="eth1", network="blue"))
    assert (a.network, str(b.address), b.host_ifname) == ("default", "10.91.0.2/24", host_ifname_for("c1", "blue"))
    assert a.host_ifname == host_ifname_for("c1") != b.host_ifname
    with pytest.raises(AlreadyAttached, match="network blue"):
        svc.attach(AttachRequest("c1", pid=100, ifname="eth2", network="blue"))
    with pytest.raises(InvalidArgument, match="blue, default"):
        svc.inspect("c1")
    assert svc.detach("c1", "blue") == 1
    assert [e.network for e in svc.list()] == ["default"] and svc.inspect("c1").endpoint == a
    assert svc.detach("c1") == 1 and svc.list() == []


def test_unknown_network_is_not_found():
    svc = two_networks()
    with pytest.raises(NetworkNotFound, match="'red' is not configured"):
        svc.attach(AttachRequest("c1", pid=100, network="red"))
    with pytest.raises(NetworkNotFound):
        svc.list("red")


def test_reconcile_releases_endpoints_of_a_network_no_longer_configured():
    svc = two_networks()
    svc.attach(AttachRequest("c1", pid=100, network="blue"))
    svc.attach(AttachRequest("c2", pid=101))
    svc.networks = svc.networks[:1]
    svc.nets.pop("blue")
    assert svc.reconcile() == 1
    assert [e.container_id for e in svc.list()] == ["c2"]


def test_a_stale_host_neighbour_entry_is_replaced_and_announced():
    svc = make()
    svc.links.stale.add(IPv4Address("10.89.0.2"))
    ep = svc.attach(AttachRequest("c1", pid=100))
    assert str(ep.address.ip) == "10.89.0.2" and svc.links.stale == set()
    assert svc.links.announced == ["10.89.0.2"]
    svc.attach(AttachRequest("c2", pid=101))
    assert svc.links.announced == ["10.89.0.2"]  # no stale entry, no flood


def test_forwarding_switched_off_is_reported_then_repaired():
    svc = make()
    assert svc.sysctls.values["ipv4/ip_forward"] == "1"  # on since prepare()
    svc.sysctls.values["ipv4/ip_forward"] = "0"
    assert [str(p) for p in svc.problems()] == ["net.ipv4.ip_forward is 0, not 1"]
    ep = svc.attach(AttachRequest("c1", pid=100))
    assert "host: net.ipv4.ip_forward is 0, not 1" in svc.check(ep.container_id)
    repairs, left = svc.heal()
    assert (repairs, left) == ({"forwarding": 1}, []) and svc.sysctls.values["ipv4/ip_forward"] == "1"
    assert svc.check(ep.container_id) == []


def test_route_localnet_reset_on_a_bridge_is_repaired():
    svc = make()
    svc.sysctls.values["ipv4/conf/netd0/route_localnet"] = "0"
    assert [(p.network, p.what) for p in svc.problems()] == [("default", "net.ipv4.conf.netd0.route_localnet is off")]
    assert svc.heal() == ({"bridge": 1}, [])


def test_an_internal_network_created_at_run_time_wants_no_route_localnet():
    svc = make()
    svc.create_network(NetworkConfig("vault", "netd-vault", IPv4Network("10.91.0.0/24"), IPv4Address("10.91.0.1"),
                                     1500, internal=True))
    assert "ipv4/conf/netd-vault/route_localnet" not in svc.sysctls.values  # no published ports on it
    assert svc.problems() == [] and svc.heal() == ({}, [])


def test_a_host_end_set_down_is_reported_until_the_healer_sets_it_up():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100))
    svc.links.down.add(ep.host_ifname)
    svc.link_went_down(ep.host_ifindex)
    svc.link_went_down(9999)  # not netd's: forgotten
    assert f"host: veth {ep.host_ifname} is down" in svc.check("c1")
    assert [str(p) for p in svc.problems()] == [f"network default: host end {ep.host_ifname} of container c1 is down"]
    assert svc.heal() == ({"host_end": 1}, [])
    assert svc.links.down == set() and svc.check("c1") == []


def test_a_bridge_netd_cannot_repair_is_a_problem_of_its_network():
    svc = make()
    svc.links.bridge_ok = False
    svc.links.ensure_bridge = lambda *args: (_ for _ in ()).throw(FailedPrecondition("bridge netd0: in the way"))
    repairs, left = svc.heal()
    assert repairs == {} and [(p.network, p.what) for p in left] == [("default", "bridge netd0: down")]


def test_dual_stack_keeps_the_uplink_accepting_router_advertisements():
    net = NetworkConfig("default", "netd0", IPv4Network("10.89.0.0/16"), IPv4Address("10.89.0.1"), 1500,
                        subnet6=IPv6Network("fd89::/64"))
    svc = Service(networks=(net,), store=MemoryStore(), links=FakeLinks(), namespaces=FakeNamespaces(),
                  firewall=FakeFirewall(), sysctls=FakeSysctls())
    svc.prepare()
    assert svc.sysctls.values["ipv6/conf/uplink0/accept_ra"] == "2"
    assert svc.sysctls.values["ipv6/conf/all/forwarding"] == "1"
    refusing = replace(svc, sysctls=FakeSysctls(), manage_accept_ra=False)
    with pytest.raises(FailedPrecondition, match="uplink0 ignore router advertisements"):
        refusing.prepare()
    assert refusing.sysctls.values["ipv6/conf/all/forwarding"] == "0"  # refused before forwarding went on


def test_garbage_collection_leaves_links_without_netds_mark_alone():
    svc = make()
    svc.links.foreign["vndvpn0"] = ""
    svc.links.veths["vndorphan"] = 999
    assert svc.collect_garbage() == 1
    assert "vndorphan" not in svc.links.veths


def test_a_state_dir_from_before_marks_has_its_veths_marked():
    svc = make()
    ep = svc.attach(AttachRequest("c1", pid=100))
    upgraded = replace(svc, adopt_unmarked=True, mark="netd:abcd1234")
    upgraded.reconcile()
    assert upgraded.links.marked == {ep.host_ifindex: "netd:abcd1234"}
