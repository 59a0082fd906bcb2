"""iptables driver: netd's own chains, hooked from the built-in ones with one
jump each, changed with `iptables-restore --noflush` (one batch per table set;
declaring our chain in the batch flushes just that chain)."""

from __future__ import annotations

from netd import runner
from netd.errors import CommandError, FirewallError
from netd.firewall import TAG
from netd.model import NetworkConfig

# (table, built-in chain, our chain)
HOOKS = (("nat", "POSTROUTING", "NETD-POSTROUTING"), ("filter", "FORWARD", "NETD-FORWARD"))


def render_rules(net: NetworkConfig) -> dict[str, list[str]]:
    """Our chains' rules, per table, exactly as iptables-save prints them."""
    # Quoted because iptables-save quotes a comment holding ':'.
    tag = f'-m comment --comment "{TAG}:{net.name}"'
    return {
        "nat": [f"-A NETD-POSTROUTING -s {net.subnet} ! -o {net.bridge} {tag} -j MASQUERADE"],
        "filter": [
            f"-A NETD-FORWARD -i {net.bridge} {tag} -j ACCEPT",
            f"-A NETD-FORWARD -o {net.bridge} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT",
        ],
    }


def jump_rule(builtin: str, chain: str) -> str:
    return f"-A {builtin} -m comment --comment {TAG} -j {chain}"


def render_restore(net: NetworkConfig, saved: str) -> str:
    """The batch that makes our chains exactly right, given `iptables-save` output.

    Jumps are inserted only when missing: `--noflush` keeps everyone else's rules.
    """
    rules, present = render_rules(net), set(saved.splitlines())
    lines = []
    for table, builtin, chain in HOOKS:
        lines += [f"*{table}", f":{chain} - [0:0]", *rules[table]]
        if jump_rule(builtin, chain) not in present:
            lines.append(f"-I {builtin} 1 -m comment --comment {TAG} -j {chain}")
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def rules_in_place(net: NetworkConfig, saved: str) -> bool:
    present = set(saved.splitlines())
    wanted = [r for rs in render_rules(net).values() for r in rs]
    wanted += [jump_rule(builtin, chain) for _, builtin, chain in HOOKS]
    return all(rule in present for rule in wanted)


def _save() -> str:
    return runner.run(["iptables-save", "-t", "nat"]) + runner.run(["iptables-save", "-t", "filter"])


class IptablesFirewall:
    name = "iptables"

    def setup(self, net: NetworkConfig) -> None:
        try:
            runner.run(["iptables-restore", "--noflush", "-w", "5"], stdin=render_restore(net, _save()))
        except CommandError as e:
            raise FirewallError(f"failed to apply iptables chains NETD-*: {e}") from e

    def intact(self, net: NetworkConfig) -> bool:
        try:
            return rules_in_place(net, _save())
        except CommandError:
            return False

    def teardown(self) -> None:
        try:
            saved = _save()
            for table, builtin, chain in HOOKS:
                rule = jump_rule(builtin, chain)
                while rule in saved:  # a crash between restores may have doubled it
                    runner.run(["iptables", "-w", "5", "-t", table, "-D", *rule.split()[1:]])
                    saved = saved.replace(rule, "", 1)
                if f":{chain} " in saved:
                    runner.run(["iptables", "-w", "5", "-t", table, "-F", chain])
                    runner.run(["iptables", "-w", "5", "-t", table, "-X", chain])
        except CommandError as e:
            raise FirewallError(f"failed to remove iptables chains NETD-*: {e}") from e
