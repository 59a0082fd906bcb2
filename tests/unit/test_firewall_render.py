import dataclasses
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from netd.firewall import Forward, Ruleset, iptables, nftables
from netd.model import NetworkConfig, PortMapping

NET = NetworkConfig("default", "netd0", IPv4Network("10.89.0.0/16"), IPv4Address("10.89.0.1"), 1500)
BARE = Ruleset((NET,))
WEB = Forward(PortMapping(8080, 80), IPv4Address("10.89.0.2"))
DNS = Forward(PortMapping(5353, 53, "udp", IPv4Address("198.51.100.2"), count=2), IPv4Address("10.89.0.3"))
NET6 = dataclasses.replace(NET, subnet6=IPv6Network("fd89::/64"))
WEB6 = Forward(PortMapping(8080, 80), IPv4Address("10.89.0.2"), IPv6Address("fd89::2"))
ONLY6 = Forward(PortMapping(9090, 90, host_ip=IPv6Address("2001:db8::2")), IPv4Address("10.89.0.3"),
                IPv6Address("fd89::3"))


def test_nft_ruleset_replaces_only_our_table_atomically():
    text = nftables.render_ruleset(BARE)
    lines = text.splitlines()
    assert lines[:2] == ["add table inet netd", "delete table inet netd"]
    assert 'ip saddr 10.89.0.0/16 oifname != "netd0" masquerade comment "netd:default"' in text
    assert 'iifname "netd0" accept comment "netd:default"' in text
    assert "policy drop" not in text and "flush ruleset" not in text
    assert "dnat ip to" not in text and "ct status ! dnat drop" not in text


def test_nft_published_ports_become_one_dnat_rule_per_port():
    text = nftables.render_ruleset(Ruleset((NET,), (WEB, DNS)))
    dnat = [line.strip() for line in text.splitlines() if "dnat ip to" in line]
    assert dnat == [
        'meta nfproto ipv4 tcp dport 8080 dnat ip to 10.89.0.2:80 comment "netd"',
        'meta nfproto ipv4 ip daddr 198.51.100.2 udp dport 5353 dnat ip to 10.89.0.3:53 comment "netd"',
        'meta nfproto ipv4 ip daddr 198.51.100.2 udp dport 5354 dnat ip to 10.89.0.3:54 comment "netd"',
    ]
    # from outside, from the host itself, hairpin and 127.0.0.1 masqueraded into the bridge
    assert text.count("fib daddr type local jump published") == 2
    assert 'oifname "netd0" ct status dnat ip saddr { 10.89.0.0/16, 127.0.0.0/8 } masquerade' in text
    assert 'iifname "netd0" ip daddr 127.0.0.0/8 drop' in text


def test_nft_no_icc_drops_bridge_to_bridge_unless_published():
    text = nftables.render_ruleset(Ruleset((NetworkConfig(**{**NET.__dict__, "icc": False}),)))
    assert 'iifname "netd0" oifname "netd0" ct status ! dnat drop comment "netd:default"' in text


def test_nft_counts_tagged_rules_in_a_listing():
    listing = """table inet netd {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.89.0.0/16 oifname != "netd0" masquerade comment "netd:default"
		meta nfproto ipv4 tcp dport 8080 dnat ip to 10.89.0.2:80 comment "netd"
		counter comment "someone-else"
	}
}"""
    assert nftables.count_tagged_rules(listing) == 2
    assert nftables.count_tagged_rules(nftables.render_ruleset(BARE)) == 9
    assert nftables.count_tagged_rules(nftables.render_ruleset(Ruleset((NET,), (WEB, DNS)))) == 12


def test_iptables_restore_adds_missing_jumps_once():
    batch = iptables.render_restore(Ruleset((NET,), (WEB,)), saved="")
    c = '-m comment --comment "netd:default"'
    assert batch.splitlines() == [
        "*raw",
        ":NETD-GUARD - [0:0]",
        f"-A NETD-GUARD -s 127.0.0.0/8 -i netd0 {c} -j DROP",
        f"-A NETD-GUARD -d 127.0.0.0/8 -i netd0 {c} -j DROP",
        "-I PREROUTING 1 -m comment --comment netd -j NETD-GUARD",
        "COMMIT",
        "*nat",
        ":NETD-DNAT - [0:0]",
        ":NETD-POSTROUTING - [0:0]",
        "-A NETD-DNAT -m addrtype ! --dst-type LOCAL -m comment --comment netd -j RETURN",
        "-A NETD-DNAT -p tcp -m tcp --dport 8080 -m comment --comment netd -j DNAT --to-destination 10.89.0.2:80",
        f"-A NETD-POSTROUTING -s 10.89.0.0/16 ! -o netd0 {c} -j MASQUERADE",
        f"-A NETD-POSTROUTING -s 10.89.0.0/16 -o netd0 -m conntrack --ctstate DNAT {c} -j MASQUERADE",
        f"-A NETD-POSTROUTING -s 127.0.0.0/8 -o netd0 -m conntrack --ctstate DNAT {c} -j MASQUERADE",
        "-I PREROUTING 1 -m comment --comment netd -j NETD-DNAT",
        "-I OUTPUT 1 -m comment --comment netd -j NETD-DNAT",
        "-I POSTROUTING 1 -m comment --comment netd -j NETD-POSTROUTING",
        "COMMIT",
        "*filter",
        ":NETD-FORWARD - [0:0]",
        f"-A NETD-FORWARD -i netd0 {c} -j ACCEPT",
        f"-A NETD-FORWARD -o netd0 -m conntrack --ctstate DNAT {c} -j ACCEPT",
        f"-A NETD-FORWARD -o netd0 -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT",
        "-I FORWARD 1 -m comment --comment netd -j NETD-FORWARD",
        "COMMIT",
    ]


def test_nft_dual_stack_ports_dnat_both_families_and_hairpin_over_ipv6():
    text = nftables.render_ruleset(Ruleset((NET6,), (WEB6, ONLY6)))
    dnat = [line.strip() for line in text.splitlines() if " dnat ip" in line and "masquerade" not in line]
    assert dnat == [
        'meta nfproto ipv4 tcp dport 8080 dnat ip to 10.89.0.2:80 comment "netd"',
        'meta nfproto ipv6 tcp dport 8080 dnat ip6 to [fd89::2]:80 comment "netd"',
        'meta nfproto ipv6 ip6 daddr 2001:db8::2 tcp dport 9090 dnat ip6 to [fd89::3]:90 comment "netd"',
    ]
    assert 'oifname "netd0" ct status dnat ip6 saddr fd89::/64 masquerade comment "netd:default"' in text
    assert 'ip6 daddr ::1 return comment "netd"' in text
    # an IPv4-only network's container gets no IPv6 rule
    assert "ip6" not in nftables.render_ruleset(Ruleset((NET,), (WEB,)))


def test_iptables_dual_stack_ports():
    rules6 = iptables.render_rules(Ruleset((NET6,), (WEB6, ONLY6)), iptables.IPV6)
    assert [r for r in rules6["nat"] if "DNAT --to" in r] == [
        "-A NETD-DNAT -p tcp -m tcp --dport 8080 -m comment --comment netd -j DNAT --to-destination [fd89::2]:80",
        "-A NETD-DNAT -d 2001:db8::2/128 -p tcp -m tcp --dport 9090 -m comment --comment netd "
        "-j DNAT --to-destination [fd89::3]:90",
    ]
    assert '-A NETD-POSTROUTING -s fd89::/64 -o netd0 -m conntrack --ctstate DNAT -m comment --comment "netd:default" ' \
        "-j MASQUERADE" in rules6["nat"]
    rules4 = iptables.render_rules(Ruleset((NET6,), (WEB6, ONLY6)))
    assert [r for r in rules4["nat"] if "DNAT --to" in r] == [
        "-A NETD-DNAT -p tcp -m tcp --dport 8080 -m comment --comment netd -j DNAT --to-destination 10.89.0.2:80"]


def test_iptables_restore_keeps_existing_jumps():
    saved = "\n".join(iptables.jump_rule(builtin, chain) for _, builtin, chain in iptables.hooks(iptables.IPV4))
    batch = iptables.render_restore(BARE, saved)
    assert "-I " not in batch
    assert batch.count("COMMIT") == 3


def test_iptables_host_ip_and_range():
    assert iptables.dnat_rules(DNS) == [
        f"-A NETD-DNAT -d 198.51.100.2/32 -p udp -m udp --dport {5353 + i} -m comment --comment netd "
        f"-j DNAT --to-destination 10.89.0.3:{53 + i}" for i in range(2)
    ]


def test_iptables_rules_in_place_needs_every_rule_and_jump():
    rs = Ruleset((NET,), (WEB,))
    rules = [r for rs_ in iptables.render_rules(rs).values() for r in rs_]
    jumps = [iptables.jump_rule(b, c) for _, b, c in iptables.hooks(iptables.IPV4)]
    assert iptables.rules_in_place(rs, "\n".join(rules + jumps))
    assert not iptables.rules_in_place(rs, "\n".join(rules))
    assert not iptables.rules_in_place(rs, "\n".join(rules[1:] + jumps))
    assert not iptables.rules_in_place(Ruleset((NET,), (WEB, DNS)), "\n".join(rules + jumps))


def test_each_netd_instance_has_its_own_table_and_chains():
    assert nftables.table_name("1a2b3c4d") == "netd_1a2b3c4d" and nftables.table_name() == "netd"
    text = nftables.render_ruleset(BARE, nftables.table_name("1a2b3c4d"))
    assert "table inet netd_1a2b3c4d {" in text and "table inet netd {" not in text
    chains = iptables.Chains("1a2b3c4d")
    batch = iptables.render_restore(Ruleset((NET,), (WEB,)), saved="", chains=chains)
    assert ":NETD-DNAT-1a2b3c4d - [0:0]" in batch and "-j NETD-POSTROUTING-1a2b3c4d" in batch
    assert all(len(chain) <= 28 for _, _, chain in iptables.hooks(iptables.IPV4, chains))  # iptables' limit
    assert "NETD-DNAT " not in batch and "NETD-DNAT\n" not in batch


def test_a_cluster_network_is_not_natted_to_the_other_hosts_and_accepts_their_containers():
    from dataclasses import replace
    from ipaddress import IPv4Network

    net = replace(NET, subnet=IPv4Network("10.244.3.0/24"), cluster=IPv4Network("10.244.0.0/16"))
    text = nftables.render_ruleset(Ruleset((net,)))
    assert 'ip saddr 10.244.3.0/24 ip daddr != 10.244.0.0/16 oifname != "netd0" masquerade' in text
    assert 'ip saddr 10.244.0.0/16 oifname "netd0" accept' in text
    rules = iptables.render_rules(Ruleset((net,)))
    assert "-A NETD-POSTROUTING -s 10.244.3.0/24 ! -d 10.244.0.0/16 ! -o netd0 -m comment --comment \"netd:default\" " \
           "-j MASQUERADE" in rules["nat"]
    assert "-A NETD-FORWARD -s 10.244.0.0/16 -o netd0 -m comment --comment \"netd:default\" -j ACCEPT" in rules["filter"]
