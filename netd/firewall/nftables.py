"""nftables driver: everything in netd's own `table inet netd`, each change one
`nft -f` transaction (atomic: the table is replaced whole or not at all)."""

from __future__ import annotations

import json

from netd import runner
from netd.errors import CommandError, FirewallError
from netd.firewall import TAG
from netd.model import NetworkConfig

FAMILY, TABLE = "inet", "netd"


def render_ruleset(net: NetworkConfig) -> str:
    """The whole table. `add table` first so `delete table` cannot fail."""
    comment = f'comment "{TAG}:{net.name}"'
    return "\n".join([
        f"add table {FAMILY} {TABLE}",
        f"delete table {FAMILY} {TABLE}",
        f"table {FAMILY} {TABLE} {{",
        "    chain postrouting {",
        "        type nat hook postrouting priority srcnat; policy accept;",
        f'        ip saddr {net.subnet} oifname != "{net.bridge}" masquerade {comment}',
        "    }",
        "    chain forward {",
        "        type filter hook forward priority filter; policy accept;",
        f'        iifname "{net.bridge}" accept {comment}',
        f'        oifname "{net.bridge}" ct state established,related accept {comment}',
        "    }",
        "}",
        "",
    ])


def expected_rule_count(net: NetworkConfig) -> int:
    return render_ruleset(net).count(f'comment "{TAG}:{net.name}"')


def count_tagged_rules(listing: dict, net: NetworkConfig) -> int:
    """Count rules carrying the network's tag in `nft -j list table` output."""
    tag = f"{TAG}:{net.name}"
    return sum(
        1 for item in listing.get("nftables", [])
        if "rule" in item and item["rule"].get("comment") == tag
    )


class NftablesFirewall:
    name = "nftables"

    def setup(self, net: NetworkConfig) -> None:
        try:
            runner.run(["nft", "-f", "-"], stdin=render_ruleset(net))
        except CommandError as e:
            raise FirewallError(f"failed to apply nftables table {FAMILY} {TABLE}: {e}") from e

    def intact(self, net: NetworkConfig) -> bool:
        try:
            listing = json.loads(runner.run(["nft", "-j", "list", "table", FAMILY, TABLE]))
        except (CommandError, ValueError):
            return False
        return count_tagged_rules(listing, net) == expected_rule_count(net)

    def teardown(self) -> None:
        try:
            runner.run(["nft", "-f", "-"], stdin=f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n")
        except CommandError as e:
            raise FirewallError(f"failed to delete nftables table {FAMILY} {TABLE}: {e}") from e
