"""Cluster mode: hosts lease subnets of one range in a real etcd and route to
each other (vxlan, host-gw); a container on one host reaches a container on
another by address, with its own source address. Hosts are network
namespaces on an underlay (tests/cluster.py)."""

import json
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.cluster import Underlay
from tests.integration.conftest import Client
from tests.sandbox import serve_in, sh, tcp_peer_seen, wait_for

BULK_PORT = 9000
BULK_SERVER = f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {BULK_PORT})); s.listen(8)
while True:
    c, _ = s.accept(); n = 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        n += len(b)
    c.sendall(str(n).encode()); c.close()
"""
BULK_CLIENT = f"""
import socket, sys, time
started = time.monotonic()
c = socket.create_connection((sys.argv[1], {BULK_PORT}), timeout=20)
c.sendall(b"x" * int(sys.argv[2])); c.shutdown(socket.SHUT_WR)
print(c.recv(64).decode(), time.monotonic() - started)
"""


@pytest.fixture
def underlay():
    ul = Underlay()
    try:
        yield ul.up()
    finally:
        ul.down()


def start_hosts(ul, backend, sides=(0, 0, 0), **config):
    hosts = [ul.host(side) for side in sides]
    for h in hosts:
        h.write_config(backend, **config)
    for h in hosts:
        h.start()
    return hosts


def attach_one(host, name="c1"):
    c = host.container()
    endpoint = Client(host.socket).attach(name, pid=c.pid)
    return c, endpoint.ip_address.split("/")[0]


def nodes(host):
    return {n["name"]: n for n in json.loads(host.netctl("nodes", "-o", "json").stdout)}


def bulk(host, sender, receiver, receiver_ip, size=10 * 2**20):
    """Send `size` bytes from one container to another; (bytes received, seconds)."""
    host.procs.append(subprocess.Popen(["nsenter", f"--net={receiver.netns}", sys.executable, "-c", BULK_SERVER]))
    wait_for(lambda: f":{BULK_PORT}" in receiver.run("ss", "-ltn").stdout, "bulk server")
    received, seconds = sender.run(sys.executable, "-c", BULK_CLIENT, receiver_ip, str(size), timeout=60).stdout.split()
    return int(received), float(seconds)


def ping_ms(container, address):
    out = container.run("ping", "-c", "5", "-i", "0.2", "-W", "2", address).stdout
    return float(re.search(r"= [\d.]+/([\d.]+)/", out).group(1))


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_containers_on_three_hosts_reach_each_other_by_address(underlay, backend):
    hosts = start_hosts(underlay, backend, sides=(0, 0))
    late = underlay.host()
    late.write_config(backend)
    launched = time.monotonic()
    late.start()
    serving = time.monotonic()
    wait_for(lambda: all(len(h.routes()) == 2 for h in hosts), "the others route to the host that joined")
    joined = time.monotonic() - serving
    assert joined <= 2.0, f"the others learned the new host {joined:.2f} s after it was serving"
    hosts.append(late)
    pods = [attach_one(h) for h in hosts]
    subnets = {n["subnet"] for n in nodes(hosts[0]).values()}
    assert len(subnets) == 3 and all(n["reachable"] for n in nodes(hosts[0]).values())
    for h, (c, _) in zip(hosts, pods):
        serve_in(h, c)
    for i, (sender, sender_ip) in enumerate(pods):
        for j, (_, receiver_ip) in enumerate(pods):
            if i != j:  # the receiver sees the sender's own address: no NAT between hosts
                assert tcp_peer_seen(sender, receiver_ip) == sender_ip, (i, j)
        assert tcp_peer_seen(sender, underlay.outside_ip) == hosts[i].public_ip  # NAT to the outside
    received, seconds = bulk(hosts[1], pods[0][0], pods[1][0], pods[1][1])
    assert received == 10 * 2**20  # the MTU is right: no black-holed large segments
    local, local_ip = attach_one(hosts[0], "c2")
    serve_in(hosts[0], local)
    _, local_seconds = bulk(hosts[0], pods[0][0], local, local_ip)
    print(f"{backend}: a host that joins is routed to by the others {joined:.2f} s after it serves "
          f"({serving - launched:.2f} s from its start); 10 MiB across hosts in {seconds:.3f} s ({10 / seconds:.0f} MiB/s), on one host in "
          f"{local_seconds:.3f} s; ping across {ping_ms(pods[0][0], pods[1][1]):.3f} ms, on one host "
          f"{ping_ms(pods[0][0], local_ip):.3f} ms")


def test_vxlan_crosses_a_router_where_host_gw_reports_the_far_host_unreachable(underlay):
    hosts = start_hosts(underlay, "vxlan", sides=(0, 0, 1))
    pods = [attach_one(h) for h in hosts]
    serve_in(hosts[2], pods[2][0])
    assert tcp_peer_seen(pods[0][0], pods[2][1]) == pods[0][1]
    for h in hosts:
        h.stop_netd()
        sh("ip", "-n", h.host, "link", "del", "netdvx1")
    underlay.prefix = "/netd-hostgw"  # another cluster in the same etcd
    for h in hosts:
        h.write_config("host-gw")
        h.start()
    seen = nodes(hosts[0])
    assert seen["h2"]["reachable"] and not seen["h3"]["reachable"]
    assert "a router is between them" in seen["h3"]["reason"]
    assert [e["node"] for e in hosts[0].netd_log() if e["event"] == "node_unreachable"] == ["h3"]
    assert not any(r["gateway"] == hosts[2].public_ip for r in hosts[0].routes().values())  # no black hole


def test_a_dead_hosts_routes_stay_until_its_lease_expires(underlay):
    hosts = start_hosts(underlay, "vxlan")
    dead = hosts[1]
    dead_subnet = next(n["subnet"] for n in nodes(hosts[0]).values() if n["name"] == "h2")
    dead.stop_netd(signal.SIGKILL)
    killed = time.monotonic()
    time.sleep(underlay.lease_ttl - 2)
    assert dead_subnet in hosts[0].routes() and dead_subnet in hosts[2].routes()
    wait_for(lambda: dead_subnet not in hosts[0].routes() and dead_subnet not in hosts[2].routes(),
             "the dead host's routes withdrawn", timeout=underlay.lease_ttl + 4)
    withdrawn = time.monotonic() - killed
    print(f"withdrawn {withdrawn:.1f} s after kill -9 (lease TTL {underlay.lease_ttl} s)")
    assert withdrawn <= underlay.lease_ttl + 3


def test_a_host_restarted_before_its_lease_expires_keeps_its_subnet_and_no_route_flaps(underlay):
    hosts = start_hosts(underlay, "vxlan")
    pods = [attach_one(h) for h in hosts]
    serve_in(hosts[2], pods[2][0])
    subnet = next(n["subnet"] for n in nodes(hosts[0]).values() if n["name"] == "h3")
    seen_routes, stop = [], threading.Event()

    def watch_h1():
        while not stop.is_set():
            seen_routes.append(subnet in hosts[0].routes())
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_h1)
    watcher.start()
    try:
        hosts[2].stop_netd(signal.SIGKILL)
        hosts[2].start()
        time.sleep(1)
    finally:
        stop.set()
        watcher.join()
    assert seen_routes and all(seen_routes), "h1's route to h3 flapped"
    assert next(n["subnet"] for n in nodes(hosts[0]).values() if n["name"] == "h3") == subnet
    assert tcp_peer_seen(pods[0][0], pods[2][1]) == pods[0][1]  # h3's container untouched


def test_etcd_down_changes_nothing_and_a_host_that_joins_after_is_learned(underlay):
    hosts = start_hosts(underlay, "vxlan")
    before = [h.routes() for h in hosts]
    underlay.stop_etcd()
    outage = time.monotonic()
    for h in hosts:
        cs = [h.container() for _ in range(3)]
        for i, c in enumerate(cs):
            Client(h.socket).attach(f"during{i}", pid=c.pid)
        assert Client(h.socket).detach("during0")
    wait_for(lambda: any("etcd unreachable" in p for p in json.loads(
        hosts[0].netctl("status", "-o", "json", check=False).stdout)["problems"]), "degraded status")
    time.sleep(max(0.0, 10 - (time.monotonic() - outage)))
    assert [h.routes() for h in hosts] == before  # nothing withdrawn
    underlay.start_etcd()
    late = underlay.host()
    late.write_config("vxlan")
    late.start()
    for h in hosts:
        wait_for(lambda h=h: "h4" in nodes(h) and len(h.routes()) == 3, f"{h.name} learns h4", timeout=15)
    for h in hosts:  # the outage logged once, not once per retry
        assert len([e for e in h.netd_log() if e["event"] == "etcd_unreachable"]) == 1
    c4, ip4 = attach_one(late)
    serve_in(late, c4)
    c1, ip1 = attach_one(hosts[0], "after")
    assert tcp_peer_seen(c1, ip4) == ip1


def test_hosts_starting_at_the_same_instant_never_share_a_subnet(underlay):
    a, b = underlay.host(), underlay.host()
    for run in range(20):
        underlay.prefix = f"/race{run}"
        for h in (a, b):
            h.write_config("host-gw", network="10.244.0.0/23")  # two subnets: both hosts often want the same
        for h in (a, b):
            h.start(wait=False)
        for h in (a, b):
            wait_for(lambda h=h: h.netctl("status", check=False).returncode == 0, f"{h.name} serving")
        leased = [json.loads((h.state_dir / "cluster.json").read_text())["subnet"] for h in (a, b)]
        assert leased[0] != leased[1], f"run {run}: both leased {leased[0]}"
        for h in (a, b):
            h.stop_netd()
            subprocess.run(["rm", "-rf", str(h.state_dir)], check=True)
            sh("ip", "-n", h.host, "link", "del", "netd0")


def test_a_host_configured_with_another_cluster_range_refuses_to_start(underlay):
    (first,) = start_hosts(underlay, "vxlan", sides=(0,))
    other = underlay.host()
    other.write_config("vxlan", network="10.245.0.0/16")
    with pytest.raises(RuntimeError, match="netd exited 1") as failed:
        other.start()
    assert "network 10.245.0.0/16 here, 10.244.0.0/16 in etcd" in str(failed.value)
    assert first.netd_proc.poll() is None
