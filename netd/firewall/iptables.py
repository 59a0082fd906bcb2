"""iptables driver: netd's own chains, hooked from the built-in ones with one
jump each, changed with `iptables-restore --noflush` (one batch for all
tables; declaring our chain in the batch flushes just that chain). Dual-stack
networks get the same forward rules, and IPv6 masquerade, via ip6tables."""

from __future__ import annotations

from dataclasses import dataclass

from netd import runner
from netd.errors import CommandError, FirewallError
from netd.firewall import LOOPBACK, TAG, Forward, IntactCache, Ruleset, tag
from netd.model import NetworkConfig


@dataclass(frozen=True)
class Chains:
    """netd's chains: NETD-GUARD-ID and so on, ID the netd instance's; a
    netd from before instances had them without the suffix."""

    instance: str = ""

    def __getattr__(self, base: str) -> str:
        if base not in BASES:
            raise AttributeError(base)
        name = f"NETD-{base.upper()}"
        return f"{name}-{self.instance}" if self.instance else name


BASES = ("guard", "dnat", "postrouting", "forward")


@dataclass(frozen=True)
class Family:
    version: int
    binary: str
    hooks: tuple[tuple[str, str, str], ...]  # (table, built-in chain, our chain's base name)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(table for table, _, _ in self.hooks))


IPV4 = Family(4, "iptables", (
    ("raw", "PREROUTING", "guard"),
    ("nat", "PREROUTING", "dnat"),
    ("nat", "OUTPUT", "dnat"),
    ("nat", "POSTROUTING", "postrouting"),
    ("filter", "FORWARD", "forward"),
))
IPV6 = Family(6, "ip6tables", (
    ("nat", "PREROUTING", "dnat"),
    ("nat", "OUTPUT", "dnat"),
    ("nat", "POSTROUTING", "postrouting"),
    ("filter", "FORWARD", "forward"),
))


def _comment(net: NetworkConfig | None = None) -> str:
    # Quoted because iptables-save quotes a comment holding ':'.
    return f'-m comment --comment "{tag(net)}"' if net else f"-m comment --comment {TAG}"


def dnat_rules(fwd: Forward, version: int = 4, chains: Chains = Chains()) -> list[str]:
    m, only = fwd.mapping, fwd.mapping.only_address
    only_ip = f"-d {only}/{only.max_prefixlen} " if only else ""
    to = f"{fwd.container_ip}" if version == 4 else f"[{fwd.container_ip6}]"
    return [f"-A {chains.dnat} {only_ip}-p {m.protocol} -m {m.protocol} --dport {host} {_comment()} "
            f"-j DNAT --to-destination {to}:{inside}"
            for host, inside in fwd.pairs(version)]


def forward_rules(net: NetworkConfig, others: list[str], chains: Chains = Chains()) -> list[str]:
    br, c, fwd = net.bridge, _comment(net), chains.forward
    drop = f"-m conntrack ! --ctstate DNAT {c} -j DROP"
    return [
        *(f"-A {fwd} -i {br} -o {other} {drop}" for other in others),
        *([] if net.icc else [f"-A {fwd} -i {br} -o {br} {drop}"]),
        *([f"-A {fwd} -i {br} ! -o {br} {c} -j DROP", f"-A {fwd} ! -i {br} -o {br} {c} -j DROP"]
          if net.internal else []),
        *([f"-A {fwd} -s {net.cluster} -o {br} {c} -j ACCEPT"] if net.cluster else []),
        f"-A {fwd} -i {br} {c} -j ACCEPT",
        f"-A {fwd} -o {br} -m conntrack --ctstate DNAT {c} -j ACCEPT",
        f"-A {fwd} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT",
    ]


def network_rules(net: NetworkConfig, others: list[str], chains: Chains = Chains()) -> dict[str, list[str]]:
    """Per table, exactly as iptables-save prints them. Same meaning as the
    nftables driver's rules (see there for why each exists)."""
    br, c, post, guard = net.bridge, _comment(net), chains.postrouting, chains.guard
    cluster = f" ! -d {net.cluster}" if net.cluster else ""  # the cluster's other hosts: not NATed
    masquerade = [f"-A {post} -s {net.subnet}{cluster} ! -o {br} {c} -j MASQUERADE"] if net.masquerade else []
    return {
        "raw": [f"-A {guard} -s {LOOPBACK} -i {br} {c} -j DROP", f"-A {guard} -d {LOOPBACK} -i {br} {c} -j DROP"],
        "nat": masquerade + [
            f"-A {post} -s {net.subnet} -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE",
            f"-A {post} -s {LOOPBACK} -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE",
        ],
        "filter": forward_rules(net, others, chains),
    }


def network_rules6(net: NetworkConfig, others: list[str], chains: Chains = Chains()) -> dict[str, list[str]]:
    """A dual-stack network's ip6tables rules."""
    br, c, post = net.bridge, _comment(net), chains.postrouting
    masquerade = [f"-A {post} -s {net.subnet6} ! -o {br} {c} -j MASQUERADE"] if net.masquerade6 else []
    return {
        "nat": masquerade + [f"-A {post} -s {net.subnet6} -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE"],
        "filter": forward_rules(net, others, chains),
    }


def render_rules(rules: Ruleset, family: Family = IPV4, chains: Chains = Chains()) -> dict[str, list[str]]:
    """Our chains' rules, per table."""
    out: dict[str, list[str]] = {t: [] for t in family.tables}
    networks = rules.networks
    out["nat"].append(f"-A {chains.dnat} -m addrtype ! --dst-type LOCAL {_comment()} -j RETURN")
    if family.version == 6:
        # See the nftables driver: ::1 cannot be DNATed to a container.
        out["nat"].append(f"-A {chains.dnat} -d ::1/128 {_comment()} -j RETURN")
        networks = tuple(n for n in networks if n.subnet6)
    out["nat"] += [r for f in rules.forwards for r in dnat_rules(f, family.version, chains)]
    for net in networks:
        others = [o.bridge for o in networks if o is not net]
        per_table = network_rules(net, others, chains) if family.version == 4 else network_rules6(net, others, chains)
        for table, lines in per_table.items():
            out[table] += lines
    return out


def jump_rule(builtin: str, chain: str) -> str:
    return f"-A {builtin} {_comment()} -j {chain}"


def hooks(family: Family, chains: Chains = Chains()) -> list[tuple[str, str, str]]:
    """(table, built-in chain, our chain) of the family."""
    return [(table, builtin, getattr(chains, base)) for table, builtin, base in family.hooks]


def render_restore(rules: Ruleset, saved: str, family: Family = IPV4, chains: Chains = Chains()) -> str:
    """The batch that makes our chains exactly right, given `iptables-save` output.

    Jumps are inserted only when missing: `--noflush` keeps everyone else's rules.
    """
    rendered, present = render_rules(rules, family, chains), set(saved.splitlines())
    lines = []
    for table in family.tables:
        jumps = [(builtin, chain) for t, builtin, chain in hooks(family, chains) if t == table]
        lines.append(f"*{table}")
        lines += [f":{chain} - [0:0]" for chain in dict.fromkeys(chain for _, chain in jumps)]
        lines += rendered[table]
        lines += [f"-I {builtin} 1 {_comment()} -j {chain}" for builtin, chain in jumps
                  if jump_rule(builtin, chain) not in present]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def rules_in_place(rules: Ruleset, saved: str, family: Family = IPV4, chains: Chains = Chains()) -> bool:
    present = set(saved.splitlines())
    wanted = [r for rs in render_rules(rules, family, chains).values() for r in rs]
    wanted += [jump_rule(builtin, chain) for _, builtin, chain in hooks(family, chains)]
    return all(rule in present for rule in wanted)


def _families(rules: Ruleset) -> list[Family]:
    return [IPV4, IPV6] if any(n.subnet6 for n in rules.networks) else [IPV4]


def _save(family: Family) -> str:
    return "".join(runner.run([f"{family.binary}-save", "-t", table]) for table in family.tables)


def _teardown(family: Family, chains: Chains) -> None:
    saved = _save(family)
    for table, builtin, chain in hooks(family, chains):
        rule = jump_rule(builtin, chain)
        while rule in saved.splitlines():  # a crash between restores may have doubled it
            runner.run([family.binary, "-w", "5", "-t", table, "-D", *rule.split()[1:]])
            saved = saved.replace(rule + "\n", "", 1)
    for table, chain in dict.fromkeys((t, c) for t, _, c in hooks(family, chains)):
        if f":{chain} " in saved:
            runner.run([family.binary, "-w", "5", "-t", table, "-F", chain])
            runner.run([family.binary, "-w", "5", "-t", table, "-X", chain])


def _version() -> str:
    try:
        return runner.run([IPV4.binary, "-V"])
    except CommandError:
        return ""


class IptablesFirewall:
    name = "iptables"

    def __init__(self, instance: str = "") -> None:
        self.chains = Chains(instance)
        self._ipv6_checked = False
        self._checked: IntactCache | None = None

    def apply(self, rules: Ruleset) -> None:
        try:
            if not self._ipv6_checked and IPV6 not in _families(rules):
                _teardown(IPV6, self.chains)  # a previous run's dual-stack networks
            self._ipv6_checked = True
            for family in _families(rules):
                runner.run([f"{family.binary}-restore", "--noflush", "-w", "5"],
                           stdin=render_restore(rules, _save(family), family, self.chains))
        except CommandError as e:
            raise FirewallError(f"failed to apply iptables chains {self.chains.dnat} and others: {e}") from e

    def intact(self, rules: Ruleset) -> bool:
        if self._checked is None:
            # iptables-nft changes are nftables changes; iptables-legacy ones notify nobody.
            self._checked = IntactCache(notified="nf_tables" in _version())
        if self._checked.known_intact(rules):
            return True
        try:
            found = all(rules_in_place(rules, _save(family), family, self.chains) for family in _families(rules))
        except CommandError:
            return False
        self._checked.remember(rules, found)
        return found

    def teardown(self) -> None:
        try:
            for family in (IPV4, IPV6):
                _teardown(family, self.chains)
        except CommandError as e:
            raise FirewallError(f"failed to remove iptables chains {self.chains.dnat} and others: {e}") from e
