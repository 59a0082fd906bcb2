"""netd never harms what it does not own, and repairs or reports what it
depends on: forwarding, bridges, host ends, route_localnet, accept_ra.
Everything is read from the kernel, from outside netd."""

import json
import subprocess
import sys

import grpc
import pytest

from netd.model import host_ifname_for
from tests.integration.conftest import Client
from tests.sandbox import HOST_UPLINK, HOST_UPLINK_ADDR, OUTSIDE_ADDR, OUTSIDE_IF, Sandbox, sh, tcp_peer_seen, wait_for

DRIVERS = ["nftables", "iptables"]


def links(sandbox):
    return {link["ifname"]: link for link in sandbox.host_json("-d", "link", "show")}


def sysctl(sandbox, knob):
    return sandbox.in_host("sysctl", "-n", knob).stdout.strip()


def test_links_named_like_netds_but_not_made_by_it_are_left_alone(sandbox):
    """netd used to delete every vnd* link at start, whatever it was."""
    sandbox.in_host("ip", "link", "add", "vndvpn0", "type", "veth", "peer", "name", "vndvpn1")
    sandbox.in_host("ip", "link", "add", "vndbr0", "type", "bridge")
    sandbox.start_netd()
    sandbox.stop_netd()
    sandbox.start_netd()
    assert {"vndvpn0", "vndvpn1", "vndbr0"} <= set(links(sandbox))
    warned = [e["link"] for e in sandbox.netd_log() if e["event"] == "left_alone"]
    assert sorted(warned) == sorted(["vndbr0", "vndvpn0", "vndvpn1"] * 2)  # once per start each


def test_an_attach_whose_host_name_is_taken_by_a_foreign_link_says_so(netd, client):
    taken = host_ifname_for("c1", "default", f"netd:{netd.instance}")
    netd.in_host("ip", "link", "add", taken, "type", "bridge")
    c = netd.container()
    code, details = client.code_of(client.attach, "c1", pid=c.pid)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert taken in details and "netd did not create it" in details
    assert links(netd)[taken]["linkinfo"]["info_kind"] == "bridge"  # still there


def test_a_bridge_netd_did_not_create_is_not_taken_over(sandbox):
    sandbox.in_host("ip", "link", "add", "netd0", "type", "bridge")
    with pytest.raises(RuntimeError, match="netd exited 1") as failed:
        sandbox.start_netd()
    assert "bridge netd0 of network default" in str(failed.value) and "netd did not create it" in str(failed.value)
    assert "ifalias" not in links(sandbox)["netd0"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_two_netds_on_one_host_never_touch_each_others_objects(sandbox, driver):
    a, b = sandbox, Sandbox()
    b.name, b.containers = a.name, a.containers  # the same host netns and sandbox
    try:
        a.start_netd("--firewall", driver)
        b.start_netd("--firewall", driver, "--bridge", "netd1", "--subnet", "10.88.0.0/16")
        ca, cb = a.container(), a.container()
        Client(a.socket).attach("same-id", pid=ca.pid)
        Client(b.socket).attach("same-id", pid=cb.pid)
        for restarted in (a, b, a, b):
            restarted.stop_netd()
            restarted.start_netd("--firewall", driver, *(("--bridge", "netd1", "--subnet", "10.88.0.0/16")
                                                         if restarted is b else ()))
        assert a.instance != b.instance
        assert [e.container_id for e in Client(a.socket).list()] == ["same-id"]
        assert [e.container_id for e in Client(b.socket).list()] == ["same-id"]
        for c in (ca, cb):
            assert tcp_peer_seen(c, OUTSIDE_ADDR) == HOST_UPLINK_ADDR  # both NATs in place
        assert sh("nsenter", f"--net={ca.netns}", "ping", "-c1", "-W2", "10.89.0.1", check=False).returncode == 0
        assert sh("nsenter", f"--net={cb.netns}", "ping", "-c1", "-W2", "10.88.0.1", check=False).returncode == 0
        # neither replaced the other's rules, and each left the other's veth alone
        assert not [e for e in a.netd_log() + b.netd_log() if e["event"] in ("firewall_repaired", "reconciled")]
    finally:
        b.stop_netd()
        subprocess.run(["rm", "-rf", str(b.workdir)])


def test_forwarding_switched_off_is_put_back(sandbox):
    sandbox.start_netd("--subnet6", "fd89::/64")
    for knob in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
        sandbox.in_host("sysctl", "-w", f"{knob}=0")
        wait_for(lambda: sysctl(sandbox, knob) == "1", f"{knob} back on", timeout=5)
        repaired = [e for e in sandbox.netd_log() if e["event"] == "forwarding_repaired" and e["sysctl"] == knob]
        assert repaired and repaired[-1]["found"] == "0"


def test_health_tells_the_truth_while_a_bridge_cannot_be_repaired(sandbox):
    sandbox.start_netd()
    assert sandbox.netctl("status", check=False).returncode == 0
    sandbox.in_host("ip", "link", "del", "netd0")
    sandbox.in_host("ip", "link", "add", "netd0", "type", "veth", "peer", "name", "netd0p")  # someone else's
    wait_for(lambda: health(sandbox, "network/default") == "NOT_SERVING", "the network NOT_SERVING")
    status = sandbox.netctl("status", "-o", "json", check=False)
    data = json.loads(status.stdout)
    assert status.returncode == 3 and data["status"] == "NOT_SERVING"
    assert any("network default: bridge netd0" in p and "netd did not create it" in p for p in data["problems"])
    sandbox.in_host("ip", "link", "del", "netd0")
    wait_for(lambda: sandbox.netctl("status", check=False).returncode == 0, "SERVING again", timeout=5)
    assert links(sandbox)["netd0"]["linkinfo"]["info_kind"] == "bridge"


def health(sandbox, service):
    code = ("import sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; "
            "c = grpc.insecure_channel('unix:' + sys.argv[1]); "
            "print(h.HealthCheckResponse.ServingStatus.Name(g.HealthStub(c).Check(h.HealthCheckRequest("
            "service=sys.argv[2]), timeout=5).status))")
    return sh(sys.executable, "-c", code, str(sandbox.socket), service).stdout.strip()


def test_check_names_a_host_end_or_bridge_set_down_and_the_healer_sets_them_up(sandbox):
    sandbox.start_netd("--firewall-check-interval", "30")  # the last flag wins: a slow healer
    c = sandbox.container()
    host_end = Client(sandbox.socket).attach("c1", pid=c.pid).host_ifname
    assert sandbox.netctl("check", "c1").returncode == 0
    sandbox.in_host("ip", "link", "set", host_end, "down")
    sandbox.in_host("ip", "link", "set", "netd0", "down")
    check = sandbox.netctl("check", "c1", check=False)
    assert check.returncode == 1
    assert f"host: veth {host_end} is down" in check.stdout and "host: bridge netd0: down" in check.stdout
    status = json.loads(sandbox.netctl("status", "-o", "json", check=False).stdout)
    assert f"network default: host end {host_end} of container c1 is down" in status["problems"]
    sandbox.stop_netd()
    sandbox.start_netd()  # the healer's usual interval in the sandbox: 0.5 s
    wait_for(lambda: sandbox.netctl("check", "c1", check=False).returncode == 0, "repaired", timeout=5)
    assert "UP" in links(sandbox)[host_end]["flags"] and "UP" in links(sandbox)["netd0"]["flags"]


def test_a_host_end_set_down_while_netd_runs_comes_back_up(netd, client):
    c = netd.container()
    host_end = client.attach("c1", pid=c.pid).host_ifname
    netd.in_host("ip", "link", "set", host_end, "down")
    wait_for(lambda: "UP" in links(netd)[host_end]["flags"], "host end up again", timeout=5)
    assert [e["host_ifname"] for e in netd.netd_log() if e["event"] == "host_end_repaired"] == [host_end]
    assert c.run("ping", "-c1", "-W2", "10.89.0.1", check=False).returncode == 0


def test_route_localnet_switched_off_is_put_back(netd):
    netd.in_host("sysctl", "-w", "net.ipv4.conf.netd0.route_localnet=0")
    wait_for(lambda: sysctl(netd, "net.ipv4.conf.netd0.route_localnet") == "1", "route_localnet back", timeout=5)


RADVD_CONF = """interface wan0 {
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 4;
    AdvDefaultLifetime 600;
    prefix 2001:db8:ff::/64 { AdvOnLink on; AdvAutonomous off; };
};
"""


def ra_default_route(sandbox):
    routes = sandbox.host_json("-6", "route", "show", "default")
    return [r for r in routes if r.get("protocol") == "ra" and r.get("dev") == HOST_UPLINK]


def test_dual_stack_keeps_the_hosts_own_ipv6_router_advertisements(sandbox):
    """With forwarding on, the kernel ignores router advertisements on an
    interface with accept_ra=1: the host's default route from its router
    would expire. netd sets accept_ra=2 on the uplink first."""
    assert sysctl(sandbox, f"net.ipv6.conf.{HOST_UPLINK}.accept_ra") == "1"
    conf = sandbox.workdir / "radvd.conf"
    conf.write_text(RADVD_CONF.replace("wan0", OUTSIDE_IF))
    sandbox.procs.append(subprocess.Popen(["ip", "netns", "exec", sandbox.outside, "radvd", "-n", "-C", str(conf),
                                           "-p", str(sandbox.workdir / "radvd.pid"), "-m", "stderr"],
                                          stderr=subprocess.DEVNULL))
    wait_for(lambda: ra_default_route(sandbox), "the host's default route from router advertisements", timeout=15)
    sandbox.start_netd("--subnet6", "fd89::/64")
    assert sysctl(sandbox, "net.ipv6.conf.all.forwarding") == "1"
    assert sysctl(sandbox, f"net.ipv6.conf.{HOST_UPLINK}.accept_ra") == "2"
    assert [e["interface"] for e in sandbox.netd_log() if e["event"] == "accept_ra_set"] == [HOST_UPLINK]
    sandbox.in_host("ip", "-6", "route", "flush", "proto", "ra")
    wait_for(lambda: ra_default_route(sandbox), "the route learned again with forwarding on", timeout=15)


def test_dual_stack_refuses_rather_than_touch_accept_ra_when_told(sandbox):
    with pytest.raises(RuntimeError, match="netd exited 1") as failed:
        sandbox.start_netd("--subnet6", "fd89::/64", "--no-manage-accept-ra")
    assert f"{HOST_UPLINK} ignore router advertisements" in str(failed.value)
    assert sysctl(sandbox, f"net.ipv6.conf.{HOST_UPLINK}.accept_ra") == "1"
    assert sysctl(sandbox, "net.ipv6.conf.all.forwarding") == "0"
