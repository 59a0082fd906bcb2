"""Several networks from a config file: isolation both ways, NAT each, one
container on two networks, per-network MTU, ListNetworks; IPv6 dual stack;
neighbour entries (pinned, fresh)."""

import json

import grpc
import pytest

from netd.v1 import netd_pb2 as pb
from tests.integration.conftest import Client
from tests.sandbox import HOST_UPLINK_ADDR, OUTSIDE_ADDR, OUTSIDE_ADDR6, serve_in, tcp_peer_seen, wait_for

CONFIG = """
firewall_check_interval = 0.5

[[networks]]
name = "default"
subnet = "10.89.0.0/16"

[[networks]]
name = "blue"
bridge = "br-blue"
subnet = "10.91.0.0/24"
subnet6 = "fd91::/64"
masquerade6 = true
mtu = 1300
multicast_snooping = true
"""
DRIVERS = ["nftables", "iptables"]


def ip_of(endpoint):
    return endpoint.ip_address.split("/")[0]


def pings(container, address):
    return container.run("ping", "-c1", "-W1", address, check=False).returncode == 0


@pytest.fixture(params=DRIVERS)
def two_networks(request, sandbox):
    path = sandbox.workdir / "netd.toml"
    path.write_text(CONFIG)
    sandbox.start_netd("--config", str(path), "--firewall", request.param)
    client = Client(sandbox.socket)
    yield sandbox, client
    client.channel.close()


def test_networks_are_isolated_both_ways_and_each_has_nat(two_networks):
    sandbox, client = two_networks
    a, a2, b = sandbox.container(), sandbox.container(), sandbox.container()
    ea, ea2 = client.attach("a", pid=a.pid), client.attach("a2", pid=a2.pid)
    eb = client.attach("b", pid=b.pid, network="blue")
    assert (ea.network, eb.network) == ("default", "blue") and ip_of(eb).startswith("10.91.0.")
    serve_in(sandbox, a)
    serve_in(sandbox, b)
    assert tcp_peer_seen(a, ip_of(eb)) == "" and tcp_peer_seen(b, ip_of(ea)) == ""
    assert not pings(a, ip_of(eb)) and not pings(b, ip_of(ea))
    assert tcp_peer_seen(a2, ip_of(ea)) == ip_of(ea2)  # same network: direct
    assert tcp_peer_seen(a, OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    assert tcp_peer_seen(b, OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    assert json.loads(b.run("ip", "-j", "link", "show", "eth0").stdout)[0]["mtu"] == 1300
    assert [e.container_id for e in client.stub.ListEndpoints(pb.ListEndpointsRequest(network="blue")).endpoints] == ["b"]
    networks = {n.name: n for n in client.stub.ListNetworks(pb.ListNetworksRequest()).networks}
    assert (networks["blue"].bridge, networks["blue"].subnet6, networks["blue"].gateway6) == ("br-blue", "fd91::/64", "fd91::1")
    assert (networks["blue"].mtu, networks["blue"].addresses_used, networks["default"].addresses_used) == (1300, 1, 2)
    assert "blue" in sandbox.netctl("networks").stdout
    # off unless asked for (the kernel's default is on)
    assert (snooping(sandbox, "netd0"), snooping(sandbox, "br-blue")) == (0, 1)


def snooping(sandbox, bridge):
    return json.loads(sandbox.in_host("ip", "-d", "-j", "link", "show", bridge).stdout)[0]["linkinfo"]["info_data"]["mcast_snooping"]


def test_one_container_on_two_networks(two_networks):
    sandbox, client = two_networks
    c = sandbox.container()
    client.attach("c", pid=c.pid)
    e2 = client.attach("c", pid=c.pid, network="blue", ifname="eth1")
    assert e2.host_ifname != client.list()[0].host_ifname
    addrs = {i["ifname"]: i for i in json.loads(c.run("ip", "-j", "addr").stdout)}
    assert {"eth0", "eth1"} <= set(addrs)
    # each network's default route; the first configured network's wins
    routes = json.loads(c.run("ip", "-j", "route", "show", "default").stdout)
    assert [(r["dev"], r.get("metric", 0)) for r in routes] == [("eth0", 0), ("eth1", 1)]
    code, details = client.code_of(client.stub.InspectEndpoint, pb.InspectEndpointRequest(container_id="c"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "blue, default" in details
    code, details = client.code_of(client.attach, "d", pid=c.pid, network="red")
    assert code == grpc.StatusCode.NOT_FOUND and "red" in details
    code, _ = client.code_of(client.attach, "c", pid=c.pid, network="blue", ifname="eth2")
    assert code == grpc.StatusCode.ALREADY_EXISTS
    client.stub.DetachContainer(pb.DetachContainerRequest(container_id="c", network="blue"))
    assert [(e.container_id, e.network) for e in client.list()] == [("c", "default")]
    assert "eth1" not in c.run("ip", "-br", "link").stdout
    assert client.detach("c") and client.list() == []


def test_dual_stack_reaches_containers_and_the_outside_over_ipv6(two_networks):
    sandbox, client = two_networks
    b1, b2 = sandbox.container(), sandbox.container()
    e1 = client.attach("b1", pid=b1.pid, network="blue")
    e2 = client.attach("b2", pid=b2.pid, network="blue")
    assert (e1.ip6_address, e1.gateway6) == (f"fd91::{int(ip_of(e1).split('.')[-1]):x}/64", "fd91::1")
    # usable at once: no duplicate address detection, so not "tentative"
    assert "tentative" not in b1.run("ip", "-6", "addr", "show", "eth0").stdout
    assert b1.run("ping", "-6", "-c1", "-W2", e2.ip6_address.split("/")[0], check=False).returncode == 0
    assert b1.run("ping", "-6", "-c1", "-W2", OUTSIDE_ADDR6, check=False).returncode == 0
    assert client.stub.CheckEndpoint(pb.CheckEndpointRequest(container_id="b1")).ok


def neighbours(output):
    return {n["dst"]: (n.get("lladdr"), tuple(n["state"])) for n in json.loads(output or "[]")}


def test_attach_corrects_a_stale_host_neighbour_entry(netd):
    """The host still maps the address to a previous holder's MAC (a device
    netd did not plug): the attach fixes it at once, without any traffic."""
    netd.in_host("ip", "neigh", "replace", "10.89.0.2", "lladdr", "02:00:00:00:00:99", "nud", "stale", "dev", "netd0")
    c = netd.container()
    e = Client(netd.socket).attach("c1", pid=c.pid)
    assert ip_of(e) == "10.89.0.2"
    assert neighbours(netd.in_host("ip", "-j", "neigh", "show", "dev", "netd0").stdout)[ip_of(e)][0] == e.mac_address
    # and the kernel announces later MAC changes and link flaps on its own
    assert c.run("sysctl", "-n", "net.ipv4.conf.eth0.arp_notify").stdout.strip() == "1"


def test_neighbour_entries_are_pinned_both_ways_and_forgotten_on_detach(sandbox):
    """The host's entries for a container and the container's for its
    gateway are permanent: outside the kernel's neighbour garbage collection,
    whose limit (gc_thresh3) all namespaces share, so hundreds of busy
    containers cannot fill the machine's ARP table. Pinned after traffic
    too, in both families; gone with the endpoint (detach or container exit)."""
    path = sandbox.workdir / "netd.toml"
    path.write_text(CONFIG)
    sandbox.start_netd("--config", str(path))
    client = Client(sandbox.socket)
    bridge_mac = sandbox.host_json("link", "show", "br-blue")[0]["address"]
    c1, c2 = sandbox.container(), sandbox.container()
    e1 = client.attach("c1", pid=c1.pid, network="blue")
    client.attach("c2", pid=c2.pid, network="blue")
    ip6 = e1.ip6_address.split("/")[0]
    assert pings(c1, "10.91.0.1") and c1.run("ping", "-6", "-c1", "-W1", "fd91::1", check=False).returncode == 0
    host = neighbours(sandbox.in_host("ip", "-j", "neigh", "show", "dev", "br-blue").stdout)
    assert host.get(ip_of(e1)) == host.get(ip6) == (e1.mac_address, ("PERMANENT",))
    inside = neighbours(c1.run("ip", "-j", "neigh", "show", "dev", "eth0").stdout)
    assert inside.get("10.91.0.1") == inside.get("fd91::1") == (bridge_mac, ("PERMANENT",))

    assert client.detach("c1")
    c2.kill()
    wait_for(lambda: client.list() == [], "netd noticing c2 exited")
    left = neighbours(sandbox.in_host("ip", "-j", "neigh", "show", "dev", "br-blue").stdout)
    assert [a for a, (_, state) in left.items() if "PERMANENT" in state] == []
    client.channel.close()


def test_a_full_bridge_is_resource_exhausted_before_the_kernel_refuses(netd):
    """A Linux bridge takes 1023 ports: the 1024th attach is refused by netd, naming the bridge."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.sandbox import sh

    names = [f"{netd.name}-full{i}" for i in range(1023)]
    sh("ip", "-batch", "-", input="".join(f"netns add {n}\n" for n in names), timeout=120)
    try:
        client = Client(netd.socket)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: client.attach(n, netns_path=f"/run/netns/{n}"), names))
        extra = netd.named_netns_add("extra")
        code, details = client.code_of(client.attach, "one-too-many", netns_path=extra)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "bridge netd0" in details
        ports = [link for link in netd.host_json("link", "show", "master", "netd0")]
        assert len(ports) == 1023
    finally:
        sh("ip", "-batch", "-", input="".join(f"netns del {n}\n" for n in names), timeout=120, check=False)
