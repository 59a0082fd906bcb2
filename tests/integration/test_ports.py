"""Published ports, with both firewall drivers: reached from outside, from the
host (its address and 127.0.0.1) and from containers (hairpin), over IPv6 too
on a dual-stack network; conflicts; detach leaves no rule; --no-icc; UDP flows
follow a replaced container."""

import subprocess
import sys

import grpc
import pytest

from netd.v1 import netd_pb2 as pb
from tests.integration.conftest import Client
from tests.sandbox import (
    HOST_UPLINK_ADDR,
    HOST_UPLINK_ADDR6,
    OUTSIDE_ADDR,
    OUTSIDE_ADDR6,
    TCP_CLIENT,
    peer_seen_via,
    serve_in,
    sh,
    tcp_peer_seen,
    wait_for,
)

DRIVERS = ["nftables", "iptables"]
HOST_PORT = 18080
# Answers every datagram with this server's name.
UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", 5353))  # IPv4 too
while True:
    _, peer = s.recvfrom(64); s.sendto(sys.argv[1].encode(), peer)
"""
# One question, the answering server's name (or "" after a second).
UDP_ASK = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
s.sendto(b"?", (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recv(64).decode())
except OSError:
    print("")
"""
# One socket (so one conntrack entry) sending about ten datagrams a second;
# prints each answer, or "-" when none came.
UDP_CLIENT = """
import socket, sys, time
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.1)
while True:
    s.sendto(b"?", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recv(64).decode(), flush=True)
    except OSError:
        print("-", flush=True)
    time.sleep(0.05)
"""


def ip_of(endpoint):
    return endpoint.ip_address.split("/")[0]


def ruleset(sandbox, driver):
    if driver == "nftables":
        return sandbox.in_host("nft", "list", "table", "inet", sandbox.nft_table).stdout
    return "\n".join(line for tool in ("iptables-save", "ip6tables-save")
                     for line in sandbox.in_host(tool).stdout.splitlines() if "NETD" in line and not line.startswith(":"))


@pytest.fixture(params=DRIVERS)
def driver(request, sandbox):
    sandbox.start_netd("--firewall", request.param)
    return request.param


@pytest.fixture(params=DRIVERS)
def driver_dual_stack(request, sandbox):
    sandbox.start_netd("--firewall", request.param, "--subnet6", "fd89::/64")
    return request.param


def web(sandbox, client, name, **fields):
    """A container serving echo-peer on 8080, attached with the given fields."""
    c = sandbox.container()
    endpoint = client.attach(name, pid=c.pid, **fields)
    serve_in(sandbox, c)
    return c, endpoint


def test_tcp_port_reached_from_outside_host_localhost_and_containers(sandbox, driver):
    client = Client(sandbox.socket)
    published = pb.PortMapping(host_port=HOST_PORT, container_port=8080)
    server, ep = web(sandbox, client, "web", ports=[published])
    other = sandbox.container()
    gateway = client.attach("other", pid=other.pid).gateway
    outside = ["ip", "netns", "exec", sandbox.outside]
    host = ["ip", "netns", "exec", sandbox.host]

    assert peer_seen_via(outside, HOST_UPLINK_ADDR, HOST_PORT) == OUTSIDE_ADDR
    assert peer_seen_via(host, HOST_UPLINK_ADDR, HOST_PORT) == HOST_UPLINK_ADDR
    # 127.0.0.1 leaves through the bridge from the gateway (route_localnet + masquerade)
    assert peer_seen_via(host, "127.0.0.1", HOST_PORT) == gateway
    # hairpin: another container, and the publishing container itself, through the host address
    assert tcp_peer_seen(other, HOST_UPLINK_ADDR, HOST_PORT) == gateway
    assert tcp_peer_seen(server, HOST_UPLINK_ADDR, HOST_PORT) == gateway
    listed = {e.container_id: list(e.ports) for e in client.list()}
    assert listed == {"web": [pb.PortMapping(protocol="tcp", host_port=HOST_PORT, container_port=8080, range=1)],
                      "other": []}
    # the container still cannot reach the host's own loopback services
    assert tcp_peer_seen(other, "127.0.0.1", HOST_PORT) == ""


def test_host_ip_limits_the_port_to_that_address(sandbox, driver):
    client = Client(sandbox.socket)
    web(sandbox, client, "web", ports=[pb.PortMapping(host_ip="127.0.0.1", host_port=HOST_PORT, container_port=8080)])
    host = ["ip", "netns", "exec", sandbox.host]
    assert peer_seen_via(host, "127.0.0.1", HOST_PORT) != ""
    assert peer_seen_via(["ip", "netns", "exec", sandbox.outside], HOST_UPLINK_ADDR, HOST_PORT) == ""


def test_conflicting_publish_is_refused_and_detach_removes_exactly_its_rules(sandbox, driver):
    client = Client(sandbox.socket)
    before = ruleset(sandbox, driver)
    web(sandbox, client, "first", ports=[pb.PortMapping(host_port=HOST_PORT, container_port=8080)])
    with_first = ruleset(sandbox, driver)
    second = sandbox.container()
    code, details = client.code_of(client.attach, "second", pid=second.pid,
                                   ports=[pb.PortMapping(host_port=HOST_PORT - 5, container_port=80, range=10)])
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert f"{HOST_PORT}/tcp" in details and "first" in details
    assert ruleset(sandbox, driver) == with_first
    assert [e.container_id for e in client.list()] == ["first"]
    # the same port over UDP is another port
    client.attach("second", pid=second.pid, ports=[pb.PortMapping(protocol="udp", host_port=HOST_PORT,
                                                                  container_port=80)])
    client.detach("second")
    assert ruleset(sandbox, driver) == with_first
    client.detach("first")
    assert ruleset(sandbox, driver) == before


def test_dual_stack_port_reached_over_ipv6_from_outside_host_and_containers(sandbox, driver_dual_stack):
    driver = driver_dual_stack
    client = Client(sandbox.socket)
    before = ruleset(sandbox, driver)
    server, ep = web(sandbox, client, "web", ports=[pb.PortMapping(host_port=HOST_PORT, container_port=8080)])
    other = sandbox.container()
    gateway6 = client.attach("other", pid=other.pid).gateway6
    outside, host = ["ip", "netns", "exec", sandbox.outside], ["ip", "netns", "exec", sandbox.host]

    assert peer_seen_via(outside, HOST_UPLINK_ADDR6, HOST_PORT) == OUTSIDE_ADDR6
    assert peer_seen_via(outside, HOST_UPLINK_ADDR, HOST_PORT) == OUTSIDE_ADDR
    assert peer_seen_via(host, HOST_UPLINK_ADDR6, HOST_PORT) == HOST_UPLINK_ADDR6
    # hairpin over IPv6: from the bridge's IPv6 gateway
    assert tcp_peer_seen(other, HOST_UPLINK_ADDR6, HOST_PORT) == gateway6
    assert tcp_peer_seen(server, HOST_UPLINK_ADDR6, HOST_PORT) == gateway6
    # ::1 is not DNATed (the kernel would drop it on its way to the bridge, and
    # the connection would hang): the host refuses it at once
    refused = sh(*host, sys.executable, "-c", TCP_CLIENT, "::1", str(HOST_PORT), check=False)
    assert "ConnectionRefusedError" in refused.stderr
    assert not host_can_bind(sandbox, "SOCK_STREAM", HOST_PORT, "::")
    client.detach("web")
    client.detach("other")
    assert ruleset(sandbox, driver) == before
    assert host_can_bind(sandbox, "SOCK_STREAM", HOST_PORT, "::")


def test_ipv6_host_ip_limits_the_port_to_that_address(sandbox, driver_dual_stack):
    client = Client(sandbox.socket)
    web(sandbox, client, "web", ports=[pb.PortMapping(host_ip=HOST_UPLINK_ADDR6, host_port=HOST_PORT,
                                                      container_port=8080)])
    outside = ["ip", "netns", "exec", sandbox.outside]
    assert peer_seen_via(outside, HOST_UPLINK_ADDR6, HOST_PORT) == OUTSIDE_ADDR6
    assert peer_seen_via(outside, HOST_UPLINK_ADDR, HOST_PORT) == ""
    # the IPv4 port stays free for another container
    client.attach("v4", pid=sandbox.container().pid, ports=[pb.PortMapping(host_port=HOST_PORT, host_ip=HOST_UPLINK_ADDR,
                                                                           container_port=8080)])


BIND = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[3] else socket.AF_INET, getattr(socket, sys.argv[1]))
if ":" in sys.argv[3]:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((sys.argv[3], int(sys.argv[2])))
"""
LISTEN = """
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(); print("listening", flush=True); time.sleep(60)
"""


def host_can_bind(sandbox, kind, port, address="0.0.0.0"):
    return sandbox.in_host(sys.executable, "-c", BIND, kind, str(port), address, check=False).returncode == 0


def test_published_ports_are_held_against_host_processes(sandbox):
    """Like Docker: a port a host process uses is refused, naming it; a published
    port cannot be taken by a host process, also after netd restarts; detach frees it."""
    sandbox.start_netd()
    client = Client(sandbox.socket)
    holder = subprocess.Popen(["ip", "netns", "exec", sandbox.host, sys.executable, "-c", LISTEN, str(HOST_PORT + 1)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "listening"
        c = sandbox.container()
        code, details = client.code_of(client.attach, "web", pid=c.pid,
                                       ports=[pb.PortMapping(host_port=HOST_PORT, container_port=80, range=2)])
        assert code == grpc.StatusCode.ALREADY_EXISTS
        assert f"{HOST_PORT + 1}/tcp is in use by a process on the host" in details and client.list() == []
    finally:
        holder.kill()
        holder.wait()
    assert host_can_bind(sandbox, "SOCK_STREAM", HOST_PORT)  # the refused attach let go of what it held
    client.attach("web", pid=c.pid, ports=[pb.PortMapping(host_port=HOST_PORT, container_port=80, range=2),
                                           pb.PortMapping(protocol="udp", host_port=HOST_PORT, container_port=53)])
    assert not host_can_bind(sandbox, "SOCK_STREAM", HOST_PORT + 1)
    assert not host_can_bind(sandbox, "SOCK_DGRAM", HOST_PORT)
    sandbox.stop_netd()
    sandbox.start_netd()
    assert not host_can_bind(sandbox, "SOCK_STREAM", HOST_PORT)
    client.detach("web")
    assert host_can_bind(sandbox, "SOCK_STREAM", HOST_PORT) and host_can_bind(sandbox, "SOCK_DGRAM", HOST_PORT)


def test_udp_clients_follow_a_replaced_container_over_ipv4_and_ipv6(sandbox, driver_dual_stack):
    client = Client(sandbox.socket)
    udp = pb.PortMapping(protocol="udp", host_port=15353, container_port=5353)

    def udp_container(name):
        c = sandbox.container()
        client.attach(name, pid=c.pid, ports=[udp])
        sandbox.procs.append(subprocess.Popen(["nsenter", f"--net={c.netns}", sys.executable, "-c", UDP_SERVER, name]))
        return c

    def ask(prefix, address):
        return sh(*prefix, sys.executable, "-c", UDP_ASK, address, "15353").stdout.strip()

    def steady_client(address):
        proc = subprocess.Popen(["ip", "netns", "exec", sandbox.outside, sys.executable, "-c", UDP_CLIENT,
                                 address, "15353"], stdout=subprocess.PIPE, text=True)
        sandbox.procs.append(proc)
        return iter(proc.stdout)

    old = udp_container("old")
    answers = {address: steady_client(address) for address in (HOST_UPLINK_ADDR, HOST_UPLINK_ADDR6)}
    for address, lines in answers.items():
        wait_for(lambda: next(lines).strip() == "old", f"the old container answering via {address}", timeout=15)
    client.detach("old")
    old.kill()
    new = udp_container("new")
    for address, lines in answers.items():
        wait_for(lambda: next(lines).strip() == "new", f"the new container answering the same client via {address}",
                 timeout=15)
    # UDP from the host (its address and 127.0.0.1) and from containers (hairpin), too
    host, other = ["ip", "netns", "exec", sandbox.host], sandbox.container()
    client.attach("other", pid=other.pid)
    assert ask(host, HOST_UPLINK_ADDR) == ask(host, "127.0.0.1") == "new"
    assert ask(["nsenter", f"--net={other.netns}"], HOST_UPLINK_ADDR) == "new"
    assert ask(["nsenter", f"--net={new.netns}"], HOST_UPLINK_ADDR) == "new"


def test_no_icc_blocks_containers_from_each_other_but_not_the_outside(sandbox):
    for driver in DRIVERS:
        sandbox.start_netd("--firewall", driver, "--no-icc")
        client = Client(sandbox.socket)
        a, b = sandbox.container(), sandbox.container()
        ea, eb = client.attach("a", pid=a.pid), client.attach("b", pid=b.pid)
        serve_in(sandbox, b)
        assert a.run("ping", "-c1", "-W1", ip_of(eb), check=False).returncode != 0, driver
        assert b.run("ping", "-c1", "-W1", ip_of(ea), check=False).returncode != 0, driver
        assert tcp_peer_seen(a, ip_of(eb)) == "", driver
        assert tcp_peer_seen(a, OUTSIDE_ADDR) == HOST_UPLINK_ADDR, driver
        assert a.run("ping", "-c1", "-W2", ea.gateway, check=False).returncode == 0, driver
        client.detach("a")
        client.detach("b")
        sandbox.stop_netd()
