"""Networks created through the API, containers reaching each other by name
(netd's DNS on the gateway, asked by a real resolver in the container), and
the event stream."""

import subprocess
import sys
import threading
import time

import grpc
import pytest

from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc
from tests.sandbox import OUTSIDE_ADDR, sh, tcp_peer_seen, wait_for

DRIVERS = ["nftables", "iptables"]

# A DNS server in the outside netns: example.test → 203.0.113.7, anything else NXDOMAIN.
UPSTREAM = f"""
import socket, dns.message, dns.rrset, dns.rcode
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("{OUTSIDE_ADDR}", 53))
while True:
    data, peer = s.recvfrom(4096)
    q = dns.message.from_wire(data); r = dns.message.make_response(q)
    if q.question[0].name.to_text() == "example.test.":
        r.answer.append(dns.rrset.from_text("example.test.", 60, "IN", "A", "203.0.113.7"))
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
    s.sendto(r.to_wire(), peer)
"""
ASK = """
import sys, dns.message, dns.query, dns.rcode
q = dns.message.make_query(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "A")
r = dns.query.udp(q, sys.argv[1], timeout=6)
print(dns.rcode.to_text(r.rcode()), *sorted(rr.to_text() for rrset in r.answer for rr in rrset))
"""


def start(sandbox, *extra):
    config = sandbox.workdir / "netd.toml"
    config.write_text(f'dns_upstreams = ["{OUTSIDE_ADDR}"]\n')
    sandbox.start_netd("--config", str(config), *extra)
    channel = grpc.insecure_channel(f"unix:{sandbox.socket}")
    return pb_grpc.NetdStub(channel)


def upstream(sandbox):
    proc = subprocess.Popen(["ip", "netns", "exec", sandbox.outside, sys.executable, "-c", UPSTREAM])
    sandbox.procs.append(proc)
    wait_for(lambda: f"{OUTSIDE_ADDR}:53" in sh("ip", "netns", "exec", sandbox.outside, "ss", "-lun").stdout,
             "upstream DNS")
    return proc


def attach(stub, sandbox, cid, network, **fields):
    c = sandbox.container()
    reply = stub.AttachContainer(pb.AttachContainerRequest(container_id=cid, pid=c.pid, network=network, **fields),
                                 timeout=10)
    return c, reply


def getent(container, reply, name):
    """What the container's own resolver (glibc, with netd's resolv.conf in
    a private mount namespace) finds for the name: addresses, or []."""
    resolv = f"nameserver {reply.dns.nameservers[0]}\nsearch {' '.join(reply.dns.search)}\noptions timeout:2\n"
    script = (f"printf '{resolv}' > /tmp/resolv.$$ && mount --bind /tmp/resolv.$$ /etc/resolv.conf && "
              f"getent ahostsv4 {name}; rm -f /tmp/resolv.$$")
    out = container.run("unshare", "--mount", "sh", "-c", script, check=False, timeout=20).stdout
    return sorted({line.split()[0] for line in out.splitlines()})


def ask(container, server, name, rdtype="A"):
    return container.run(sys.executable, "-c", ASK, server, name, rdtype, timeout=20).stdout.split()


@pytest.fixture
def stub(sandbox):
    return start(sandbox)


def test_containers_find_each_other_by_name_and_alias_on_their_network_only(sandbox, stub):
    upstream(sandbox)
    blue = stub.CreateNetwork(pb.CreateNetworkRequest(name="blue"), timeout=10).network
    assert (blue.source, blue.dns, blue.subnet) == ("api", True, "10.90.0.0/24")
    stub.CreateNetwork(pb.CreateNetworkRequest(name="red"), timeout=10)
    web, web_reply = attach(stub, sandbox, "web", "blue", aliases=["www", "front"])
    db, db_reply = attach(stub, sandbox, "db", "blue", name="database")
    other, other_reply = attach(stub, sandbox, "lonely", "red", aliases=["www"])
    assert list(web_reply.dns.nameservers) == [blue.gateway] and list(web_reply.dns.search) == ["blue.netd"]
    web_ip, db_ip = web_reply.endpoint.ip_address.split("/")[0], db_reply.endpoint.ip_address.split("/")[0]
    assert getent(db, db_reply, "web") == [web_ip]
    assert getent(db, db_reply, "www") == [web_ip]
    assert getent(web, web_reply, "database") == [db_ip]
    assert getent(web, web_reply, "database.blue.netd") == [db_ip]
    assert getent(other, other_reply, "database") == []  # not across networks
    assert getent(other, other_reply, "www") == [other_reply.endpoint.ip_address.split("/")[0]]
    reverse = ".".join(reversed(web_ip.split("."))) + ".in-addr.arpa"
    assert ask(web, blue.gateway, reverse, "PTR") == ["NOERROR", "web.blue.netd."]
    # a name of no container is forwarded to the host's resolvers, answered unchanged
    assert getent(web, web_reply, "example.test") == ["203.0.113.7"]
    assert ask(web, blue.gateway, "missing.test") == ["NXDOMAIN"]


def test_several_containers_under_one_alias_are_answered_round_robin(sandbox, stub):
    stub.CreateNetwork(pb.CreateNetworkRequest(name="blue"), timeout=10)
    client, reply = attach(stub, sandbox, "client", "blue")
    addresses = {attach(stub, sandbox, f"w{i}", "blue", aliases=["pool"])[1].endpoint.ip_address.split("/")[0]
                 for i in range(3)}
    gateway = reply.dns.nameservers[0]
    firsts = set()
    for _ in range(6):
        out = client.run(sys.executable, "-c", ASK.replace("sorted(", "list("), gateway, "pool").stdout.split()
        assert out[0] == "NOERROR" and set(out[1:]) == addresses
        firsts.add(out[1])
    assert firsts == addresses


def test_names_go_with_detach_and_with_a_dead_container_and_upstream_silence_is_servfail(sandbox, stub):
    proc = upstream(sandbox)
    stub.CreateNetwork(pb.CreateNetworkRequest(name="blue"), timeout=10)
    client, reply = attach(stub, sandbox, "client", "blue")
    gateway = reply.dns.nameservers[0]
    doomed, _ = attach(stub, sandbox, "doomed", "blue")
    attach(stub, sandbox, "leaving", "blue")
    assert ask(client, gateway, "leaving")[0] == "NOERROR" and ask(client, gateway, "doomed")[0] == "NOERROR"
    stub.DetachContainer(pb.DetachContainerRequest(container_id="leaving"), timeout=10)
    assert ask(client, gateway, "leaving.blue.netd") == ["NXDOMAIN"]
    doomed.kill()
    wait_for(lambda: ask(client, gateway, "doomed.blue.netd") == ["NXDOMAIN"], "a dead container's name gone")
    proc.kill()
    proc.wait()
    started = time.monotonic()
    assert ask(client, gateway, "example.test") == ["SERVFAIL"]
    assert time.monotonic() - started < 6  # a timeout, not a hang


def test_created_networks_and_names_come_back_after_a_restart(sandbox, stub):
    stub.CreateNetwork(pb.CreateNetworkRequest(name="blue", labels={"team": "web"}), timeout=10)
    web, _ = attach(stub, sandbox, "web", "blue")
    client, reply = attach(stub, sandbox, "client", "blue")
    sandbox.stop_netd()
    stub = start(sandbox)
    listed = {n.name: n for n in stub.ListNetworks(pb.ListNetworksRequest(), timeout=10).networks}
    assert listed["blue"].source == "api" and dict(listed["blue"].labels) == {"team": "web"}
    assert ask(client, reply.dns.nameservers[0], "web")[0] == "NOERROR"


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_internal_network_has_no_way_out_but_its_containers_talk(sandbox, driver):
    stub = start(sandbox, "--firewall", driver)
    stub.CreateNetwork(pb.CreateNetworkRequest(name="vault", internal=True), timeout=10)
    a, _ = attach(stub, sandbox, "a", "vault")
    b, b_reply = attach(stub, sandbox, "b", "vault")
    b_ip = b_reply.endpoint.ip_address.split("/")[0]
    assert a.run("ping", "-c1", "-W2", b_ip, check=False).returncode == 0
    assert tcp_peer_seen(a, OUTSIDE_ADDR) == ""
    assert a.run("ping", "-c1", "-W2", OUTSIDE_ADDR, check=False).returncode != 0
    code, details = client_code(stub.AttachContainer, pb.AttachContainerRequest(
        container_id="c", pid=sandbox.container().pid, network="vault",
        ports=[pb.PortMapping(host_port=8080, container_port=80)]))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "internal" in details


def client_code(call, request):
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    return info.value.code(), info.value.details()


def test_bad_networks_are_refused_naming_the_field_and_create_nothing(sandbox):
    config = sandbox.workdir / "netd.toml"
    config.write_text('default_address_pools = [{base = "10.95.0.0/23", size = 24}]\n')
    sandbox.start_netd("--config", str(config))
    stub = pb_grpc.NetdStub(grpc.insecure_channel(f"unix:{sandbox.socket}"))
    before = {link["ifname"] for link in sandbox.host_json("link", "show")}
    cases = [
        (pb.CreateNetworkRequest(name="a", subnet="10.89.3.0/24"), grpc.StatusCode.FAILED_PRECONDITION, "default"),
        (pb.CreateNetworkRequest(name="b", subnet="198.51.100.0/25"), grpc.StatusCode.FAILED_PRECONDITION,
         "uplink0"),
        (pb.CreateNetworkRequest(name="c", subnet="10.300.0.0/24"), grpc.StatusCode.INVALID_ARGUMENT, "subnet"),
        (pb.CreateNetworkRequest(name="default"), grpc.StatusCode.ALREADY_EXISTS, "name"),
        (pb.CreateNetworkRequest(name="d", bridge="netd0"), grpc.StatusCode.ALREADY_EXISTS, "bridge"),
        (pb.CreateNetworkRequest(name="Bad Name"), grpc.StatusCode.INVALID_ARGUMENT, "name"),
    ]
    for request, code, word in cases:
        got, details = client_code(stub.CreateNetwork, request)
        assert got == code and word in details, (request, details)
    for name in ("p1", "p2"):
        stub.CreateNetwork(pb.CreateNetworkRequest(name=name), timeout=10)
    got, details = client_code(stub.CreateNetwork, pb.CreateNetworkRequest(name="p3"))
    assert got == grpc.StatusCode.RESOURCE_EXHAUSTED and "pools" in details
    assert {link["ifname"] for link in sandbox.host_json("link", "show")} - before == {"netd-p1", "netd-p2"}


@pytest.mark.parametrize("driver", DRIVERS)
def test_deleting_a_network_with_endpoints_needs_force_and_leaves_nothing(sandbox, driver):
    stub = start(sandbox, "--firewall", driver)
    created = stub.CreateNetwork(pb.CreateNetworkRequest(name="temp"), timeout=10).network
    rules = (lambda: sandbox.in_host("nft", "list", "table", "inet", sandbox.nft_table).stdout) if driver == "nftables" \
        else (lambda: sandbox.in_host("iptables-save").stdout)
    assert "netd-temp" in rules()
    c, reply = attach(stub, sandbox, "inside", "temp")
    code, details = client_code(stub.DeleteNetwork, pb.DeleteNetworkRequest(name="temp"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "inside" in details
    code, details = client_code(stub.DeleteNetwork, pb.DeleteNetworkRequest(name="default"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "config file" in details
    assert stub.DeleteNetwork(pb.DeleteNetworkRequest(name="temp", force=True), timeout=10).detached == 1
    assert "netd-temp" not in {link["ifname"] for link in sandbox.host_json("link", "show")}
    assert "netd-temp" not in rules()
    assert f"{created.gateway}:53" not in sandbox.in_host("ss", "-lun").stdout
    assert "eth0" not in c.run("ip", "-br", "link").stdout
    assert "temp" not in {n.name for n in stub.ListNetworks(pb.ListNetworksRequest(), timeout=10).networks}


def read(stream, out):
    try:
        for event in stream:
            out.append((event.kind, event.container_id))
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.CANCELLED


def test_two_watchers_see_every_event_in_order_and_a_stuck_one_blocks_nothing(sandbox, stub):
    seen = [[], []]
    streams = [stub.WatchEvents(pb.WatchEventsRequest()) for _ in seen]
    stuck = stub.WatchEvents(pb.WatchEventsRequest())  # never read
    readers = [threading.Thread(target=read, args=(s, out)) for s, out in zip(streams, seen)]
    for r in readers:
        r.start()
    time.sleep(0.5)
    stub.CreateNetwork(pb.CreateNetworkRequest(name="ev"), timeout=10)
    containers = [sandbox.container() for _ in range(25)]
    started = time.monotonic()
    for i, c in enumerate(containers):
        stub.AttachContainer(pb.AttachContainerRequest(container_id=f"e{i}", pid=c.pid, network="ev"), timeout=10)
    for i in range(25):
        stub.DetachContainer(pb.DetachContainerRequest(container_id=f"e{i}"), timeout=10)
    elapsed = time.monotonic() - started
    expected = ([("network_created", "")] + [("attached", f"e{i}") for i in range(25)]
                + [("detached", f"e{i}") for i in range(25)])
    wait_for(lambda: all(len(s) >= len(expected) for s in seen), "both watchers saw all 51 events")
    for stream in (*streams, stuck):
        stream.cancel()
    for r in readers:
        r.join()
    assert seen[0] == seen[1] == expected
    print(f"50 attaches and detaches with three watchers, one stuck: {elapsed:.2f} s")
