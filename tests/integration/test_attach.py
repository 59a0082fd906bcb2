"""AttachContainer / DetachContainer / ListEndpoints against a real kernel."""

import json
import signal
import threading
import time

import grpc
import pytest

from netd.v1 import netd_pb2 as pb
from tests.integration.conftest import Client
from tests.sandbox import HOST_UPLINK_ADDR, OUTSIDE_ADDR, serve_in, sh, tcp_peer_seen, wait_for


def addresses(container, ifname="eth0"):
    info = json.loads(container.run("ip", "-j", "addr", "show", "dev", ifname).stdout)[0]
    return info, [f"{a['local']}/{a['prefixlen']}" for a in info["addr_info"] if a["family"] == "inet"]


def default_route(container):
    return json.loads(container.run("ip", "-j", "route", "show", "default").stdout)


def host_link_names(sandbox):
    return {link["ifname"] for link in sandbox.host_json("link", "show")}


def test_attach_configures_the_container(netd, client):
    c = netd.container()
    ep = client.attach("c1", pid=c.pid)
    info, addrs = addresses(c)
    assert addrs == [ep.ip_address] == ["10.89.0.2/16"]
    assert "UP" in info["flags"] and info["address"] == ep.mac_address
    assert info["mtu"] == 1500
    assert [(r["gateway"], r["dev"]) for r in default_route(c)] == [("10.89.0.1", "eth0")]
    lo = json.loads(c.run("ip", "-j", "link", "show", "lo").stdout)[0]
    assert "UP" in lo["flags"]
    assert c.run("ping", "-c1", "-W2", "10.89.0.1", check=False).returncode == 0
    # the host end is a port of netd's bridge
    host = {link["ifname"]: link for link in netd.host_json("link", "show")}
    assert host[ep.host_ifname]["master"] == "netd0" and "UP" in host[ep.host_ifname]["flags"]
    # ... without IPv6: no route of its own in the host's IPv6 tables, which every link up walks
    assert netd.host_json("-6", "addr", "show", "dev", ep.host_ifname) == []
    routes6 = netd.host_json("-6", "route", "show", "table", "all")
    assert [r for r in routes6 if r.get("dev") == ep.host_ifname] == []
    assert [r for r in routes6 if r.get("dev") == "netd0"]
    assert ep.gateway == "10.89.0.1" and ep.network == "default" and ep.pid == c.pid and ep.created_at


def test_custom_ifname(netd, client):
    c = netd.container()
    client.attach("c1", pid=c.pid, ifname="net1")
    assert addresses(c, "net1")[1] == ["10.89.0.2/16"]


@pytest.mark.parametrize("driver", ["nftables", "iptables"])
def test_nat_to_outside_and_direct_between_containers(sandbox, driver):
    sandbox.start_netd("--firewall", driver)
    client = Client(sandbox.socket)
    c1, c2 = sandbox.container(), sandbox.container()
    ep1, ep2 = client.attach("c1", pid=c1.pid), client.attach("c2", pid=c2.pid)
    # leaving through the uplink, the source is rewritten to the host's address
    assert tcp_peer_seen(c1, OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    # container to container keeps container addresses
    serve_in(sandbox, c2)
    assert tcp_peer_seen(c1, ep2.ip_address.split("/")[0]) == ep1.ip_address.split("/")[0]
    assert c2.run("ping", "-c1", "-W2", ep1.ip_address.split("/")[0], check=False).returncode == 0


def test_detach_removes_veth_and_frees_the_address(netd, client):
    c1 = netd.container()
    ep = client.attach("c1", pid=c1.pid)
    assert client.detach("c1") is True
    assert ep.host_ifname not in host_link_names(netd)
    assert "eth0" not in c1.run("ip", "-br", "link").stdout
    assert client.list() == []
    c2 = netd.container()
    again = client.attach("c2", pid=c2.pid, ip_address="10.89.0.2")
    assert again.ip_address == ep.ip_address


def test_detach_twice_and_unknown(netd, client):
    c = netd.container()
    client.attach("c1", pid=c.pid)
    assert client.detach("c1") is True
    assert client.detach("c1") is False
    assert client.detach("never-attached") is False


def test_detach_after_the_container_was_killed(netd, client):
    c = netd.container()
    ep = client.attach("c1", pid=c.pid)
    c.kill()
    client.detach("c1")  # True or False: netd may have noticed the death first
    assert client.list() == []
    wait_for(lambda: ep.host_ifname not in host_link_names(netd), "veth gone")


def test_attach_by_netns_path(netd, client):
    path = netd.named_netns_add("c1")
    ep = client.attach("c1", netns_path=path)
    out = sh("ip", "-n", path.rsplit("/", 1)[1], "-br", "addr", "show", "eth0").stdout
    assert ep.ip_address in out and ep.netns_path == path
    assert client.detach("c1") is True


def test_restart_keeps_endpoints_and_traffic(netd, client):
    c1, c2 = netd.container(), netd.container()
    ep1, ep2 = client.attach("c1", pid=c1.pid), client.attach("c2", pid=c2.pid)
    assert netd.stop_netd(signal.SIGTERM) == 0
    # netd is down: containers keep their network
    assert ep1.host_ifname in host_link_names(netd)
    assert tcp_peer_seen(c1, OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    netd.start_netd()
    listed = {e.container_id: e for e in client.list()}
    assert listed == {"c1": ep1, "c2": ep2}
    assert tcp_peer_seen(c2, OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    assert client.detach("c1") is True
    c3 = netd.container()
    assert client.attach("c3", pid=c3.pid).ip_address == "10.89.0.4/16"  # round robin survives restarts


def test_fifty_parallel_attaches_get_distinct_addresses(netd, client):
    containers = [netd.container() for _ in range(50)]
    results, errors = {}, []

    def go(i, c):
        try:
            results[i] = client.attach(f"c{i}", pid=c.pid).ip_address
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i, c)) for i, c in enumerate(containers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results.values())) == 50
    ports = [link for link in netd.host_json("link", "show") if link.get("master") == "netd0"]
    assert len(ports) == 50


def test_an_attach_waiting_for_a_detach_of_its_id_holds_up_no_other_attach(sandbox):
    sandbox.start_netd()
    client = Client(sandbox.socket)
    other = "other"
    first, second, third = sandbox.container(), sandbox.container(), sandbox.container()
    # Published ports make the detach slow (veth deletion, then nft) and the first attach go to the pool.
    veth = client.attach("old", pid=first.pid, ports=[pb.PortMapping(host_port=18081, container_port=80)]).host_ifname
    finished = {}

    def being_deleted():  # netd moves a veth into a link group of its own, then deletes the group
        return [link.get("group") for link in sandbox.host_json("link", "show") if link["ifname"] == veth] != ["default"]

    def call(name, fn, *args, **fields):
        fn(*args, **fields)
        finished[name] = time.monotonic()

    detach = threading.Thread(target=call, args=("detach", client.detach, "old"))
    detach.start()
    wait_for(being_deleted, "the detach to hold the id's lock", timeout=5, interval=0.001)  # for ~30 ms more
    again = threading.Thread(target=call, args=("again", client.attach, "old"), kwargs={"pid": second.pid})
    again.start()
    time.sleep(0.003)
    call("other", client.attach, other, pid=third.pid)
    detach.join()
    again.join()
    assert finished["other"] < finished["again"], "an attach of another id waited behind the busy one"
    assert finished["detach"] < finished["again"], "the second attach of the id finished before its detach"
    by_id = {e.container_id: e for e in client.list()}
    assert by_id["old"].pid == second.pid and other in by_id
    assert addresses(second)[1] == [by_id["old"].ip_address] and "eth0" not in first.run("ip", "-br", "link").stdout
    client.channel.close()


def test_pool_exhaustion_leaves_nothing_behind(sandbox):
    sandbox.start_netd("--subnet", "10.99.0.0/29")
    client = Client(sandbox.socket)
    containers = [sandbox.container() for _ in range(6)]
    for i, c in enumerate(containers[:5]):
        client.attach(f"c{i}", pid=c.pid)
    code, details = client.code_of(client.attach, "c5", pid=containers[5].pid)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "10.99.0.0/29" in details
    assert len(client.list()) == 5
    assert "eth0" not in containers[5].run("ip", "-br", "link").stdout
    ports = [link for link in sandbox.host_json("link", "show") if link.get("master") == "netd0"]
    assert len(ports) == 5


def test_mtu_follows_the_uplink(sandbox):
    """No MTU mismatch: bridge and both veth ends take the MTU of the default route's interface."""
    sh("ip", "-n", sandbox.host, "link", "set", "uplink0", "mtu", "1400")
    sandbox.start_netd()
    client = Client(sandbox.socket)
    c = sandbox.container()
    ep = client.attach("c1", pid=c.pid)
    host = {link["ifname"]: link["mtu"] for link in sandbox.host_json("link", "show")}
    assert host["netd0"] == host[ep.host_ifname] == 1400
    assert json.loads(c.run("ip", "-j", "link", "show", "eth0").stdout)[0]["mtu"] == 1400
    # a full-size packet crosses without fragmentation needed
    assert c.run("ping", "-c1", "-W2", "-M", "do", "-s", "1372", "10.89.0.1", check=False).returncode == 0


def test_explicit_mtu_flag_wins(sandbox):
    sandbox.start_netd("--mtu", "1300")
    client = Client(sandbox.socket)
    c = sandbox.container()
    client.attach("c1", pid=c.pid)
    assert json.loads(c.run("ip", "-j", "link", "show", "eth0").stdout)[0]["mtu"] == 1300
