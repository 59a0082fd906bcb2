"""Firewall drivers keep to what they own."""

import json

from tests.integration.conftest import Client
from tests.sandbox import HOST_UPLINK_ADDR, OUTSIDE_ADDR, sh, tcp_peer_seen


def nft_tables(sandbox):
    listing = json.loads(sandbox.in_host("nft", "-j", "list", "tables").stdout)
    return {(t["table"]["family"], t["table"]["name"]) for t in listing["nftables"] if "table" in t}


def netd_iptables_lines(sandbox):
    saved = sandbox.in_host("iptables-save").stdout
    return [line for line in saved.splitlines() if "NETD" in line or "netd" in line]


def test_switching_driver_removes_the_other_drivers_rules(sandbox):
    sandbox.start_netd("--firewall", "iptables")
    assert netd_iptables_lines(sandbox)
    assert ("inet", sandbox.nft_table) not in nft_tables(sandbox)
    sandbox.stop_netd()
    sandbox.start_netd("--firewall", "nftables")
    assert netd_iptables_lines(sandbox) == []
    assert ("inet", sandbox.nft_table) in nft_tables(sandbox)
    c = sandbox.container()
    Client(sandbox.socket).attach("c1", pid=c.pid)
    assert tcp_peer_seen(c, OUTSIDE_ADDR) == HOST_UPLINK_ADDR
    sandbox.stop_netd()
    sandbox.start_netd("--firewall", "iptables")
    assert ("inet", sandbox.nft_table) not in nft_tables(sandbox)
    assert tcp_peer_seen(c, OUTSIDE_ADDR) == HOST_UPLINK_ADDR


def test_other_rules_and_a_foreign_bridge_keep_working(sandbox):
    """netd never flushes what is not its own and never changes a policy."""
    sandbox.in_host("nft", "add table inet other")
    sandbox.in_host("nft", "add chain inet other keep { type filter hook forward priority 10; policy accept; }")
    sandbox.in_host("nft", "add rule inet other keep counter comment \"not netd's\"")
    # a second, foreign bridge with its own client namespace
    other_ns = sandbox.named_netns_add("other")
    name = other_ns.rsplit("/", 1)[1]
    sandbox.in_host("ip", "link", "add", "br-other", "type", "bridge")
    sandbox.in_host("ip", "addr", "add", "172.30.0.1/24", "dev", "br-other")
    sandbox.in_host("ip", "link", "set", "br-other", "up")
    sandbox.in_host("ip", "link", "add", "oth0", "master", "br-other", "type", "veth", "peer", "name", "eth0",
                    "netns", name)
    sandbox.in_host("ip", "link", "set", "oth0", "up")
    sh("ip", "-n", name, "addr", "add", "172.30.0.2/24", "dev", "eth0")
    sh("ip", "-n", name, "link", "set", "eth0", "up")
    sh("ip", "-n", name, "route", "add", "default", "via", "172.30.0.1")
    sh("ip", "-n", sandbox.outside, "route", "add", "172.30.0.0/24", "via", HOST_UPLINK_ADDR)
    for driver in ("nftables", "iptables"):
        sandbox.start_netd("--firewall", driver)
        assert "not netd's" in sandbox.in_host("nft", "list", "table", "inet", "other").stdout
        assert "policy drop" not in sandbox.in_host("nft", "list", "ruleset").stdout
        # the foreign bridge's traffic is still forwarded, both ways, untouched by netd's NAT
        assert sh("ip", "netns", "exec", name, "ping", "-c1", "-W2", OUTSIDE_ADDR, check=False).returncode == 0, driver
        sandbox.stop_netd()
