"""nftables driver: everything in netd's own `table inet netd`, each change one
`nft -f` transaction (atomic: the table is replaced whole or not at all)."""

from __future__ import annotations

from netd import runner
from netd.errors import CommandError, FirewallError
from netd.firewall import LOOPBACK, TAG, Forward, IntactCache, Ruleset, tag
from netd.model import NetworkConfig

FAMILY = "inet"


def table_name(instance: str = "") -> str:
    """netd_ID, ID the netd instance's; a netd from before instances used `netd`."""
    return f"netd_{instance}" if instance else "netd"


def _comment(net: NetworkConfig | None = None) -> str:
    return f'comment "{tag(net)}"'


def localnet_guard(net: NetworkConfig) -> list[str]:
    """route_localnet is on for the bridge (so 127.0.0.1 can be DNATed to a
    container); a container must still never reach the host's loopback
    services through it (CVE-2020-8558)."""
    return [f'iifname "{net.bridge}" ip {side} {LOOPBACK} drop {_comment(net)}' for side in ("saddr", "daddr")]


def dnat_rules(fwd: Forward) -> list[str]:
    m, only = fwd.mapping, fwd.mapping.only_address
    rules = []
    for version, ip, to in ((4, "ip", f"{fwd.container_ip}:"), (6, "ip6", f"[{fwd.container_ip6}]:")):
        only_ip = f"{ip} daddr {only} " if only else ""
        rules += [f"meta nfproto ipv{version} {only_ip}{m.protocol} dport {host} dnat {ip} to {to}{inside} {_comment()}"
                  for host, inside in fwd.pairs(version)]
    return rules


def nat_out(net: NetworkConfig) -> list[str]:
    rules = []
    if net.masquerade:
        # traffic to the cluster's other hosts keeps the container's address
        cluster = f"ip daddr != {net.cluster} " if net.cluster else ""
        rules.append(f'ip saddr {net.subnet} {cluster}oifname != "{net.bridge}" masquerade {_comment(net)}')
    if net.subnet6 and net.masquerade6:
        rules.append(f'ip6 saddr {net.subnet6} oifname != "{net.bridge}" masquerade {_comment(net)}')
    # DNATed connections into the bridge from a container (hairpin) or from
    # 127.0.0.1 must come from the gateway, or the reply would bypass the
    # host and never be un-NATed.
    rules.append(f'oifname "{net.bridge}" ct status dnat ip saddr {{ {net.subnet}, {LOOPBACK} }} masquerade {_comment(net)}')
    if net.subnet6:
        rules.append(f'oifname "{net.bridge}" ct status dnat ip6 saddr {net.subnet6} masquerade {_comment(net)}')
    return rules


def forward(net: NetworkConfig, others: list[str]) -> list[str]:
    """Accept the network's traffic, except to other netd networks (isolation)
    and, without ICC, between its own containers; published ports stay open."""
    rules = []
    if others:
        names = ", ".join(f'"{b}"' for b in others)
        rules.append(f'iifname "{net.bridge}" oifname {{ {names} }} ct status ! dnat drop {_comment(net)}')
    if not net.icc:
        rules.append(f'iifname "{net.bridge}" oifname "{net.bridge}" ct status ! dnat drop {_comment(net)}')
    if net.internal:  # no way out, and none in
        rules += [f'iifname "{net.bridge}" oifname != "{net.bridge}" drop {_comment(net)}',
                  f'oifname "{net.bridge}" iifname != "{net.bridge}" drop {_comment(net)}']
    if net.cluster:  # from containers on the cluster's other hosts
        rules.append(f'ip saddr {net.cluster} oifname "{net.bridge}" accept {_comment(net)}')
    return rules + [
        f'iifname "{net.bridge}" accept {_comment(net)}',
        f'oifname "{net.bridge}" ct status dnat accept {_comment(net)}',
        f'oifname "{net.bridge}" ct state established,related accept {_comment(net)}',
    ]


def _chain(name: str, hook: str, rules: list[str]) -> list[str]:
    head = [f"        {hook}; policy accept;"] if hook else []
    return [f"    chain {name} {{", *head, *(f"        {r}" for r in rules), "    }"]


def render_ruleset(rules: Ruleset, table: str = "netd") -> str:
    """The whole table. `add table` first so `delete table` cannot fail."""
    nets = rules.networks
    to_published = [f"fib daddr type local jump published {_comment()}"]
    # IPv6 has no route_localnet: ::1 DNATed to a container would be dropped
    # on its way out, so a connection to it would hang instead of being refused.
    dual_stack = any(n.subnet6 for n in nets)
    from_host = ([f"ip6 daddr ::1 return {_comment()}"] if dual_stack else []) + to_published
    return "\n".join([
        f"add table {FAMILY} {table}",
        f"delete table {FAMILY} {table}",
        f"table {FAMILY} {table} {{",
        *_chain("guard", "type filter hook prerouting priority raw", [r for n in nets for r in localnet_guard(n)]),
        *_chain("prerouting", "type nat hook prerouting priority dstnat", to_published),
        # dstnat is not a valid priority name for the output hook in nft 1.0
        *_chain("output", "type nat hook output priority -100", from_host),
        *_chain("published", "", [r for f in rules.forwards for r in dnat_rules(f)]),
        *_chain("postrouting", "type nat hook postrouting priority srcnat", [r for n in nets for r in nat_out(n)]),
        *_chain("forward", "type filter hook forward priority filter",
                [r for n in nets for r in forward(n, [o.bridge for o in nets if o is not n])]),
        "}",
        "",
    ])


def count_tagged_rules(text: str) -> int:
    """Rules carrying a netd tag, in the rendering or in `nft list table`
    output (which prints comments the same way). Counting text, not parsing
    `nft -j`, keeps the periodic check cheap with thousands of published ports."""
    return text.count(f'comment "{TAG}')


class NftablesFirewall:
    name = "nftables"

    def __init__(self, instance: str = "") -> None:
        self.table = table_name(instance)
        self._checked = IntactCache()

    def apply(self, rules: Ruleset) -> None:
        try:
            runner.run(["nft", "-f", "-"], stdin=render_ruleset(rules, self.table))
        except CommandError as e:
            raise FirewallError(f"failed to apply nftables table {FAMILY} {self.table}: {e}") from e

    def intact(self, rules: Ruleset) -> bool:
        if self._checked.known_intact(rules):
            return True
        try:
            listing = runner.run(["nft", "list", "table", FAMILY, self.table])
        except CommandError:
            return False
        found = count_tagged_rules(listing) == count_tagged_rules(render_ruleset(rules, self.table))
        self._checked.remember(rules, found)
        return found

    def teardown(self) -> None:
        try:
            runner.run(["nft", "-f", "-"], stdin=f"add table {FAMILY} {self.table}\ndelete table {FAMILY} {self.table}\n")
        except CommandError as e:
            raise FirewallError(f"failed to delete nftables table {FAMILY} {self.table}: {e}") from e
