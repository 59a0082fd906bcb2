"""Bad input gets a clear status naming the field, never INTERNAL, and changes nothing."""

import json
import os
import subprocess

import grpc
import pytest

from netd.kernel.netns import INIT_NET_INO
from tests.sandbox import sh

OK = object()


def cases(sandbox, container):
    """(request fields, expected code, text the message must contain)."""
    regular = sandbox.workdir / "regular-file"
    regular.write_text("not a namespace")
    loop = sandbox.workdir / "loop"
    os.symlink(loop, loop)
    host_sleeper = subprocess.Popen(["ip", "netns", "exec", sandbox.host, "sleep", "60"])
    sandbox.procs.append(host_sleeper)
    C = grpc.StatusCode
    return [
        (dict(container_id="", pid=container.pid), C.INVALID_ARGUMENT, "container_id"),
        (dict(container_id="a/b", pid=container.pid), C.INVALID_ARGUMENT, "container_id"),
        (dict(container_id="x" * 200, pid=container.pid), C.INVALID_ARGUMENT, "container_id"),
        (dict(container_id="c", pid=container.pid, ifname="x" * 16), C.INVALID_ARGUMENT, "ifname"),
        (dict(container_id="c", pid=container.pid, ifname="lo"), C.INVALID_ARGUMENT, "ifname"),
        (dict(container_id="c", pid=container.pid, ifname="a/b"), C.INVALID_ARGUMENT, "ifname"),
        (dict(container_id="c"), C.INVALID_ARGUMENT, "exactly one of pid and netns_path"),
        (dict(container_id="c", pid=container.pid, netns_path="/run/netns/x"), C.INVALID_ARGUMENT, "exactly one"),
        (dict(container_id="c", pid=-5), C.INVALID_ARGUMENT, "pid"),
        (dict(container_id="c", pid=2**31 - 1), C.INVALID_ARGUMENT, "pid"),
        (dict(container_id="c", pid=1), C.INVALID_ARGUMENT, "pid 1"),
        (dict(container_id="c", pid=4194000), C.NOT_FOUND, "pid 4194000"),
        (dict(container_id="c", pid=host_sleeper.pid), C.FAILED_PRECONDITION, "netd's own network namespace"),
        (dict(container_id="c", netns_path="/proc/self/ns/net"), C.FAILED_PRECONDITION, "netd's own"),
        (dict(container_id="c", netns_path="/run/netns/ntdt-missing"), C.NOT_FOUND, "netns_path"),
        (dict(container_id="c", netns_path=str(regular)), C.INVALID_ARGUMENT, "not a network namespace"),
        (dict(container_id="c", netns_path=str(sandbox.workdir)), C.INVALID_ARGUMENT, "not a network namespace"),
        (dict(container_id="c", netns_path=str(loop)), C.INVALID_ARGUMENT, "netns_path"),
        (dict(container_id="c", netns_path=f"/proc/{container.pid}/ns/pid"), C.INVALID_ARGUMENT, "not a network"),
        (dict(container_id="c", netns_path="relative"), C.INVALID_ARGUMENT, "netns_path"),
        (dict(container_id="c", pid=container.pid, ip_address="10.89.0.2/16"), C.INVALID_ARGUMENT, "ip_address"),
        (dict(container_id="c", pid=container.pid, ip_address="::1"), C.INVALID_ARGUMENT, "ip_address"),
        (dict(container_id="c", pid=container.pid, ip_address="10.90.0.2"), C.INVALID_ARGUMENT, "outside subnet"),
        (dict(container_id="c", pid=container.pid, ip_address="10.89.0.1"), C.INVALID_ARGUMENT, "gateway"),
        (dict(container_id="c", pid=container.pid, ip_address="10.89.255.255"), C.INVALID_ARGUMENT, "broadcast"),
    ]


def test_bad_attach_requests(netd, client):
    c = netd.container()
    for fields, code, text in cases(netd, c):
        got, details = client.code_of(client.attach, **fields)
        assert (got, text in details) == (code, True), (fields, got, details)
    assert client.list() == []
    assert [l for l in netd.host_json("link", "show") if l.get("master") == "netd0"] == []


def test_init_netns_is_never_wired(netd, client):
    """A PID in the machine's own namespace must be refused, not rewired."""
    if os.stat("/proc/self/ns/net").st_ino != INIT_NET_INO:
        pytest.skip("this kernel does not give the initial netns a fixed inode")
    # Belt and braces: ask for an ifname the machine already has, so even a
    # failed check could not add an interface to the real network.
    existing = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout)[-1]["ifname"]
    code, details = client.code_of(client.attach, "c", pid=os.getpid(), ifname=existing)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "initial network namespace" in details


def test_duplicate_attach_and_taken_address(netd, client):
    c1, c2 = netd.container(), netd.container()
    client.attach("c1", pid=c1.pid, ip_address="10.89.0.9")
    code, details = client.code_of(client.attach, "c1", pid=c2.pid)
    assert code == grpc.StatusCode.ALREADY_EXISTS and "c1" in details
    code, details = client.code_of(client.attach, "c2", pid=c2.pid, ip_address="10.89.0.9")
    assert code == grpc.StatusCode.ALREADY_EXISTS and "10.89.0.9" in details
    assert [e.container_id for e in client.list()] == ["c1"]
    assert "eth0" not in c2.run("ip", "-br", "link").stdout


def test_ifname_taken_inside_the_container(netd, client):
    c = netd.container()
    c.run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    code, details = client.code_of(client.attach, "c1", pid=c.pid)
    assert code == grpc.StatusCode.ALREADY_EXISTS and "ifname eth0" in details
    assert client.list() == []


def test_bad_detach_id(netd, client):
    code, details = client.code_of(client.detach, "../../etc")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "container_id" in details


def test_oversized_message_is_refused(netd, client):
    code, _ = client.code_of(client.attach, "c" * 100, netns_path="/" + "a" * 100_000)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("pid", ["99999999", "1"])
def test_netctl_reports_errors_on_one_line(netd, pid):
    result = netd.netctl("attach", "c1", "--pid", pid, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("netctl: INVALID_ARGUMENT: pid")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_second_id_into_the_same_netns_and_network_is_already_exists(netd, client):
    """Its default route would clash with the first one's: refused, rolled back."""
    path = netd.named_netns_add("shared")
    client.attach("first", netns_path=path)
    code, details = client.code_of(client.attach, "second", netns_path=path, ifname="eth1")
    assert code == grpc.StatusCode.ALREADY_EXISTS and "default route via 10.89.0.1" in details
    assert [e.container_id for e in client.list()] == ["first"]
    assert "eth1" not in sh("ip", "-n", path.rsplit("/", 1)[1], "-br", "link").stdout
