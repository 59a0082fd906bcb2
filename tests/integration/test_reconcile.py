"""Reconcile at start: netd was down while the kernel changed under it."""

import json
import threading

from tests.sandbox import sh, wait_for


def container_addrs(c):
    out = c.run("ip", "-j", "addr", "show", "dev", "eth0", check=False).stdout
    info = json.loads(out or "[]")
    return [f"{a['local']}/{a['prefixlen']}" for i in info for a in i["addr_info"]]


def test_config_flushed_inside_a_live_container_is_repaired(netd, client):
    c = netd.container()
    ep = client.attach("c1", pid=c.pid)
    netd.stop_netd()
    c.run("ip", "addr", "flush", "dev", "eth0")
    netd.start_netd()
    # checked inside each container right after start-up, while serving
    wait_for(lambda: container_addrs(c) == [ep.ip_address], "address restored", timeout=5)
    assert c.run("ping", "-c1", "-W2", "10.89.0.1", check=False).returncode == 0
    assert [e.ip_address for e in client.list()] == [ep.ip_address]
    assert any(e.get("action") == "replugged" for e in netd.netd_log())


def test_veth_deleted_under_a_live_container_is_replugged(netd, client):
    c = netd.container()
    ep = client.attach("c1", pid=c.pid)
    netd.stop_netd()
    sh("ip", "-n", netd.host, "link", "del", ep.host_ifname)
    netd.start_netd()
    assert container_addrs(c) == [ep.ip_address]
    assert c.run("ping", "-c1", "-W2", "10.89.0.1", check=False).returncode == 0


def test_what_an_attach_left_without_a_record_is_deleted(netd, client):
    """netd records an endpoint once it is plugged: an attach a crash cut
    short leaves a veth and pinned neighbour entries, with netd's marks, and
    no record. They go; what does not carry netd's marks stays."""
    c = netd.container()
    client.attach("c1", pid=c.pid)
    netd.stop_netd()
    sh("ip", "-n", netd.host, "link", "add", "vndorphan", "type", "veth", "peer", "name", "vndorphanp")
    sh("ip", "-n", netd.host, "link", "set", "vndorphan", "alias", f"netd:{netd.instance}")
    sh("ip", "-n", netd.host, "link", "add", "keepme0", "type", "veth", "peer", "name", "keepme1")
    for address in ("10.89.0.77", "fd00::77"):
        sh("ip", "-n", netd.host, "neigh", "replace", address, "lladdr", "02:42:0a:59:00:4d", "nud", "permanent",
           "proto", "110", "dev", "netd0")
    sh("ip", "-n", netd.host, "neigh", "replace", "10.89.0.78", "lladdr", "02:42:0a:59:00:4e", "nud", "permanent",
       "dev", "netd0")
    netd.start_netd()
    names = {link["ifname"] for link in netd.host_json("link", "show")}
    assert "vndorphan" not in names and "vndorphanp" not in names
    assert {"keepme0", "keepme1"} <= names  # not ours: untouched
    pinned = {n["dst"] for n in netd.host_json("neigh", "show", "dev", "netd0") if "PERMANENT" in n["state"]}
    assert pinned == {"10.89.0.2", "10.89.0.78"}  # the last one someone else's


def test_parallel_detaches_are_batched_and_complete(netd, client):
    containers = [netd.container() for _ in range(20)]
    for i, c in enumerate(containers):
        client.attach(f"c{i}", pid=c.pid)
    results = {}
    threads = [threading.Thread(target=lambda i=i: results.setdefault(i, client.detach(f"c{i}"))) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: True for i in range(20)}
    assert [link for link in netd.host_json("link", "show") if link.get("master") == "netd0"] == []
    assert all("eth0" not in c.run("ip", "-br", "link").stdout for c in containers)


def test_container_side_has_no_ipv6_chatter(netd, client):
    """No IPv6 link-local on either veth end: nothing for the bridge to flood to every port."""
    c = netd.container()
    ep = client.attach("c1", pid=c.pid)
    assert "inet6" not in c.run("ip", "addr", "show", "dev", "eth0").stdout
    assert "inet6" not in sh("ip", "-n", netd.host, "addr", "show", "dev", ep.host_ifname).stdout
