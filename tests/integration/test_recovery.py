"""Nothing lost, nothing leaked: container death, firewall flushes, crashes, signals."""

import os
import random
import signal
import threading
import time

import grpc
import pytest

from tests.integration.conftest import Client
from tests.sandbox import HOST_UPLINK_ADDR, OUTSIDE_ADDR, sh, tcp_peer_seen, wait_for

CHAOS_KILLS = int(os.environ.get("NETD_CHAOS_KILLS", "20"))


def bridge_ports(sandbox):
    return {link["ifname"] for link in sandbox.host_json("link", "show") if link.get("master") == "netd0"}


def pinned_neighbours(sandbox):
    return {n["dst"] for n in sandbox.host_json("neigh", "show", "dev", "netd0") if "PERMANENT" in n["state"]}


def assert_consistent(sandbox, client, containers):
    """Store and kernel agree (ports, pinned neighbour entries), no address
    twice, every endpoint's container is on the network."""
    endpoints = client.list()
    assert {e.host_ifname for e in endpoints} == bridge_ports(sandbox)
    addresses = [e.ip_address for e in endpoints]
    assert len(set(addresses)) == len(addresses)
    assert pinned_neighbours(sandbox) == {a.split("/")[0] for a in addresses}
    by_pid = {c.pid: c for c in containers}
    for e in endpoints:
        c = by_pid[e.pid]
        assert e.ip_address in c.run("ip", "-br", "addr", "show", "eth0").stdout
        assert c.run("ping", "-c1", "-W2", "10.89.0.1", check=False).returncode == 0, e.container_id
    return endpoints


def test_container_death_releases_its_endpoint_within_a_second(netd, client):
    c1, c2 = netd.container(), netd.container()
    ep = client.attach("c1", pid=c1.pid)
    client.attach("c2", pid=c2.pid)
    c1.kill()
    started = time.monotonic()
    wait_for(lambda: [e.container_id for e in client.list()] == ["c2"], "endpoint released", timeout=1.0, interval=0.01)
    print(f"released {time.monotonic() - started:.3f}s after the container died")
    assert ep.host_ifname not in bridge_ports(netd)
    assert any(e["event"] == "container_gone" and e["container_id"] == "c1" for e in netd.netd_log())
    c3 = netd.container()
    assert client.attach("c3", pid=c3.pid, ip_address=ep.ip_address.split("/")[0]).ip_address == ep.ip_address


def test_netns_path_container_death_is_noticed_too(netd, client):
    path = netd.named_netns_add("c1")
    client.attach("c1", netns_path=path)
    sh("ip", "netns", "del", path.rsplit("/", 1)[1])
    wait_for(lambda: client.list() == [], "endpoint released", timeout=1.0, interval=0.01)


def test_container_death_while_netd_is_down(netd, client):
    c1, c2 = netd.container(), netd.container()
    client.attach("c1", pid=c1.pid)
    client.attach("c2", pid=c2.pid)
    netd.stop_netd()
    c1.kill()
    netd.start_netd()
    assert [e.container_id for e in client.list()] == ["c2"]
    assert len(bridge_ports(netd)) == 1


@pytest.mark.parametrize("driver,flush", [
    ("nftables", ["nft", "flush", "ruleset"]),
    ("iptables", ["iptables", "-t", "nat", "-F"]),
    ("iptables", ["nft", "flush", "ruleset"]),
])
def test_firewall_heals_after_a_flush(sandbox, driver, flush):
    sandbox.start_netd("--firewall", driver)
    client = Client(sandbox.socket)
    c = sandbox.container()
    client.attach("c1", pid=c.pid)
    assert tcp_peer_seen(c, OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    assert repairs(sandbox) == 0  # rules as rendered are recognised as intact
    sandbox.in_host(*flush)
    flushed = time.monotonic()
    wait_for(lambda: repairs(sandbox) == 1, "repair", timeout=5)
    assert tcp_peer_seen(c, OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    print(f"{driver}: NAT back {time.monotonic() - flushed:.2f}s after `{' '.join(flush)}`")


@pytest.mark.parametrize("driver", ["nftables", "iptables"])
def test_an_idle_netd_checks_its_rules_without_running_the_firewall_tool(sandbox, driver):
    """nftables announces every ruleset change (nft and iptables-nft alike):
    while none comes, the periodic check runs no `nft` or `iptables-save`."""
    sandbox.start_netd("--firewall", driver)
    time.sleep(1.5)  # the first checks do run the tool
    before = children_cpu_ticks(sandbox.netd_proc.pid)
    time.sleep(3)  # six check intervals
    assert children_cpu_ticks(sandbox.netd_proc.pid) == before


def children_cpu_ticks(pid):
    """CPU time of the finished child processes of pid (cutime + cstime)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[13]) + int(fields[14])


def repairs(sandbox):
    return sum(e["event"] == "firewall_repaired" for e in sandbox.netd_log())


def storm(client, containers, stop, outcomes):
    """One client: attach and detach random containers until told to stop."""
    rng = random.Random()
    while not stop.is_set():
        c = rng.choice(containers)
        cid = f"c{c.pid}"
        try:
            if rng.random() < 0.6:
                client.attach(cid, pid=c.pid)
                outcomes.append(("attached", cid))
            else:
                client.detach(cid)
                outcomes.append(("detached", cid))
        except grpc.RpcError as e:
            outcomes.append((e.code().name, cid))
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                time.sleep(0.05)


def run_storm(sandbox, containers, clients=16):
    stop, outcomes = threading.Event(), []
    channel_clients = [Client(sandbox.socket) for _ in range(clients)]
    threads = [threading.Thread(target=storm, args=(cl, containers, stop, outcomes)) for cl in channel_clients]
    for t in threads:
        t.start()
    return stop, threads, outcomes, channel_clients


def end_storm(stop, threads, clients):
    stop.set()
    for t in threads:
        t.join()
    for cl in clients:
        cl.channel.close()


def test_kill_9_at_random_points_leaves_a_consistent_state(netd, client):
    containers = [netd.container() for _ in range(24)]
    rng = random.Random(7)
    calls = 0
    for _ in range(CHAOS_KILLS):
        stop, threads, outcomes, clients = run_storm(netd, containers)
        time.sleep(rng.uniform(0.2, 1.2))
        netd.stop_netd(signal.SIGKILL)
        end_storm(stop, threads, clients)
        calls += sum(code in ("attached", "detached") for code, _ in outcomes)
        netd.start_netd()
        assert_consistent(netd, client, containers)
    assert calls > CHAOS_KILLS  # the storms really ran
    # and every live endpoint still reaches the outside world
    by_pid = {c.pid: c for c in containers}
    for e in client.list():
        assert tcp_peer_seen(by_pid[e.pid], OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    print(f"survived {CHAOS_KILLS} kill -9 during 16-client storms ({calls} calls completed)")


def test_sigterm_mid_storm_finishes_or_refuses_every_call(netd, client):
    containers = [netd.container() for _ in range(16)]
    stop, threads, outcomes, clients = run_storm(netd, containers)
    time.sleep(1.0)
    assert netd.stop_netd(signal.SIGTERM) == 0
    end_storm(stop, threads, clients)
    codes = {code for code, _ in outcomes}
    assert codes <= {"attached", "detached", "ALREADY_EXISTS", "UNAVAILABLE", "CANCELLED"}, codes
    assert ("attached", f"c{containers[0].pid}") in outcomes or any(o[0] == "attached" for o in outcomes)
    netd.start_netd()
    assert_consistent(netd, client, containers)


def test_deleted_bridge_is_recreated_with_its_ports(netd, client):
    c = netd.container()
    client.attach("c1", pid=c.pid)
    netd.in_host("ip", "link", "del", "netd0")
    wait_for(lambda: any(e["event"] == "bridge_repaired" for e in netd.netd_log()), "bridge repair", timeout=5)
    wait_for(lambda: len(bridge_ports(netd)) == 1, "port re-attached", timeout=2)
    assert pinned_neighbours(netd) == {"10.89.0.2"}
    assert c.run("ping", "-c1", "-W2", "10.89.0.1", check=False).returncode == 0
    assert tcp_peer_seen(c, OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    assert netd.netctl("status").returncode == 0


def test_a_port_taken_off_the_bridge_is_not_mistaken_for_a_dead_container(netd, client):
    c = netd.container()
    ep = client.attach("c1", pid=c.pid)
    netd.in_host("ip", "link", "set", ep.host_ifname, "nomaster")  # the kernel says RTM_DELLINK (AF_BRIDGE)
    time.sleep(0.5)
    assert [e.container_id for e in client.list()] == ["c1"]
    result = netd.netctl("check", "c1", check=False)
    assert result.returncode == 1 and "is not a port of bridge netd0" in result.stdout


def test_pinned_neighbour_entries_lost_while_netd_was_down_come_back_at_start(netd, client):
    c = netd.container()
    client.attach("c1", pid=c.pid)
    netd.stop_netd()
    netd.in_host("ip", "neigh", "del", "10.89.0.2", "dev", "netd0")
    assert pinned_neighbours(netd) == set()
    netd.start_netd()
    assert pinned_neighbours(netd) == {"10.89.0.2"}
    assert c.run("ping", "-c1", "-W2", "10.89.0.1", check=False).returncode == 0


def test_pinned_neighbour_entries_deleted_while_netd_runs_come_back(netd, client):
    kept, lost = netd.container(), netd.container()
    client.attach("c1", pid=kept.pid)
    client.attach("c2", pid=lost.pid)
    netd.in_host("ip", "neigh", "del", "10.89.0.3", "dev", "netd0")
    assert pinned_neighbours(netd) == {"10.89.0.2"}
    wait_for(lambda: pinned_neighbours(netd) == {"10.89.0.2", "10.89.0.3"}, "the deleted entry pinned again", timeout=5)
    client.detach("c2")  # deletes its entry itself: that one must stay gone
    time.sleep(1.5)  # three of the sandbox's heal intervals
    assert pinned_neighbours(netd) == {"10.89.0.2"}
    assert kept.run("ping", "-c1", "-W2", "10.89.0.1", check=False).returncode == 0
