from ipaddress import IPv4Address, IPv4Network

from netd.firewall import iptables, nftables
from netd.model import NetworkConfig

NET = NetworkConfig("default", "netd0", IPv4Network("10.89.0.0/16"), IPv4Address("10.89.0.1"), 1500)


def test_nft_ruleset_replaces_only_our_table_atomically():
    text = nftables.render_ruleset(NET)
    lines = text.splitlines()
    assert lines[:2] == ["add table inet netd", "delete table inet netd"]
    assert 'ip saddr 10.89.0.0/16 oifname != "netd0" masquerade comment "netd:default"' in text
    assert 'iifname "netd0" accept comment "netd:default"' in text
    assert "policy drop" not in text and "flush ruleset" not in text


def test_nft_counts_tagged_rules_in_json_listing():
    listing = {"nftables": [
        {"metainfo": {}}, {"table": {"name": "netd"}},
        {"rule": {"chain": "postrouting", "comment": "netd:default"}},
        {"rule": {"chain": "forward", "comment": "netd:default"}},
        {"rule": {"chain": "forward", "comment": "someone-else"}},
    ]}
    assert nftables.count_tagged_rules(listing, NET) == 2
    assert nftables.expected_rule_count(NET) == 3


def test_iptables_restore_adds_missing_jumps_once():
    batch = iptables.render_restore(NET, saved="")
    assert batch.splitlines() == [
        "*nat",
        ":NETD-POSTROUTING - [0:0]",
        '-A NETD-POSTROUTING -s 10.89.0.0/16 ! -o netd0 -m comment --comment "netd:default" -j MASQUERADE',
        "-I POSTROUTING 1 -m comment --comment netd -j NETD-POSTROUTING",
        "COMMIT",
        "*filter",
        ":NETD-FORWARD - [0:0]",
        '-A NETD-FORWARD -i netd0 -m comment --comment "netd:default" -j ACCEPT',
        '-A NETD-FORWARD -o netd0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "netd:default" -j ACCEPT',
        "-I FORWARD 1 -m comment --comment netd -j NETD-FORWARD",
        "COMMIT",
    ]


def test_iptables_restore_keeps_existing_jumps():
    saved = "\n".join([
        "-A POSTROUTING -m comment --comment netd -j NETD-POSTROUTING",
        "-A FORWARD -m comment --comment netd -j NETD-FORWARD",
    ])
    batch = iptables.render_restore(NET, saved)
    assert "-I " not in batch
    assert batch.count("COMMIT") == 2


def test_iptables_rules_in_place_needs_every_rule_and_jump():
    rules = [r for rs in iptables.render_rules(NET).values() for r in rs]
    jumps = [iptables.jump_rule(b, c) for _, b, c in iptables.HOOKS]
    assert iptables.rules_in_place(NET, "\n".join(rules + jumps))
    assert not iptables.rules_in_place(NET, "\n".join(rules))
    assert not iptables.rules_in_place(NET, "\n".join(rules[1:] + jumps))
