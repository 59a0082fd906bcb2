"""iptables driver: netd's own chains, hooked from the built-in ones with one
jump each, changed with `iptables-restore --noflush` (one batch for all
tables; declaring our chain in the batch flushes just that chain)."""

from __future__ import annotations

from netd import runner
from netd.errors import CommandError, FirewallError
from netd.firewall import LOOPBACK, TAG, Forward, Ruleset, tag
from netd.model import NetworkConfig

# (table, built-in chain, our chain)
HOOKS = (
    ("raw", "PREROUTING", "NETD-GUARD"),
    ("nat", "PREROUTING", "NETD-DNAT"),
    ("nat", "OUTPUT", "NETD-DNAT"),
    ("nat", "POSTROUTING", "NETD-POSTROUTING"),
    ("filter", "FORWARD", "NETD-FORWARD"),
)
TABLES = ("raw", "nat", "filter")


def _comment(net: NetworkConfig | None = None) -> str:
    # Quoted because iptables-save quotes a comment holding ':'.
    return f'-m comment --comment "{tag(net)}"' if net else f"-m comment --comment {TAG}"


def dnat_rules(fwd: Forward) -> list[str]:
    m = fwd.mapping
    only_ip = f"-d {m.host_ip}/32 " if m.host_ip else ""
    return [f"-A NETD-DNAT {only_ip}-p {m.protocol} -m {m.protocol} --dport {host} {_comment()} "
            f"-j DNAT --to-destination {fwd.container_ip}:{inside}"
            for host, inside in m.pairs()]


def network_rules(net: NetworkConfig) -> dict[str, list[str]]:
    """Per table, exactly as iptables-save prints them. Same meaning as the
    nftables driver's rules (see there for why each exists)."""
    br, c = net.bridge, _comment(net)
    isolate = [] if net.icc else [f"-A NETD-FORWARD -i {br} -o {br} -m conntrack ! --ctstate DNAT {c} -j DROP"]
    return {
        "raw": [f"-A NETD-GUARD -s {LOOPBACK} -i {br} {c} -j DROP", f"-A NETD-GUARD -d {LOOPBACK} -i {br} {c} -j DROP"],
        "nat": [
            f"-A NETD-POSTROUTING -s {net.subnet} ! -o {br} {c} -j MASQUERADE",
            f"-A NETD-POSTROUTING -s {net.subnet} -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE",
            f"-A NETD-POSTROUTING -s {LOOPBACK} -o {br} -m conntrack --ctstate DNAT {c} -j MASQUERADE",
        ],
        "filter": isolate + [
            f"-A NETD-FORWARD -i {br} {c} -j ACCEPT",
            f"-A NETD-FORWARD -o {br} -m conntrack --ctstate DNAT {c} -j ACCEPT",
            f"-A NETD-FORWARD -o {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT",
        ],
    }


def render_rules(rules: Ruleset) -> dict[str, list[str]]:
    """Our chains' rules, per table."""
    out: dict[str, list[str]] = {t: [] for t in TABLES}
    out["nat"].append(f"-A NETD-DNAT -m addrtype ! --dst-type LOCAL {_comment()} -j RETURN")
    out["nat"] += [r for f in rules.forwards for r in dnat_rules(f)]
    for net in rules.networks:
        for table, lines in network_rules(net).items():
            out[table] += lines
    return out


def jump_rule(builtin: str, chain: str) -> str:
    return f"-A {builtin} {_comment()} -j {chain}"


def render_restore(rules: Ruleset, saved: str) -> str:
    """The batch that makes our chains exactly right, given `iptables-save` output.

    Jumps are inserted only when missing: `--noflush` keeps everyone else's rules.
    """
    rendered, present = render_rules(rules), set(saved.splitlines())
    lines = []
    for table in TABLES:
        hooks = [(builtin, chain) for t, builtin, chain in HOOKS if t == table]
        lines.append(f"*{table}")
        lines += [f":{chain} - [0:0]" for chain in dict.fromkeys(chain for _, chain in hooks)]
        lines += rendered[table]
        lines += [f"-I {builtin} 1 {_comment()} -j {chain}" for builtin, chain in hooks
                  if jump_rule(builtin, chain) not in present]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def rules_in_place(rules: Ruleset, saved: str) -> bool:
    present = set(saved.splitlines())
    wanted = [r for rs in render_rules(rules).values() for r in rs]
    wanted += [jump_rule(builtin, chain) for _, builtin, chain in HOOKS]
    return all(rule in present for rule in wanted)


def _save() -> str:
    return "".join(runner.run(["iptables-save", "-t", table]) for table in TABLES)


def _iptables(table: str, *args: str) -> None:
    runner.run(["iptables", "-w", "5", "-t", table, *args])


class IptablesFirewall:
    name = "iptables"

    def apply(self, rules: Ruleset) -> None:
        try:
            runner.run(["iptables-restore", "--noflush", "-w", "5"], stdin=render_restore(rules, _save()))
        except CommandError as e:
            raise FirewallError(f"failed to apply iptables chains NETD-*: {e}") from e

    def intact(self, rules: Ruleset) -> bool:
        try:
            return rules_in_place(rules, _save())
        except CommandError:
            return False

    def teardown(self) -> None:
        try:
            saved = _save()
            for table, builtin, chain in HOOKS:
                rule = jump_rule(builtin, chain)
                while rule in saved:  # a crash between restores may have doubled it
                    _iptables(table, "-D", *rule.split()[1:])
                    saved = saved.replace(rule, "", 1)
            for table, chain in dict.fromkeys((t, c) for t, _, c in HOOKS):
                if f":{chain} " in saved:
                    _iptables(table, "-F", chain)
                    _iptables(table, "-X", chain)
        except CommandError as e:
            raise FirewallError(f"failed to remove iptables chains NETD-*: {e}") from e
