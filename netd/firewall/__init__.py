"""Firewall drivers: NAT and forward accepts for netd's networks.

Every driver keeps to what it owns (its own nft table, or its own iptables
chains hooked with one jump each), applies each change as one batch, and never
changes a global policy. `render_*` functions are pure and unit-tested as data.
"""

from __future__ import annotations

import shutil
from typing import Protocol

from netd.errors import FailedPrecondition
from netd.model import NetworkConfig

# The comment every netd rule carries, so exactly ours are found and removed.
TAG = "netd"


class Firewall(Protocol):
    name: str

    def setup(self, net: NetworkConfig) -> None:
        """Make netd's rules for the network exactly as rendered (idempotent)."""

    def intact(self, net: NetworkConfig) -> bool:
        """Are netd's rules for the network all in place?"""

    def teardown(self) -> None:
        """Remove every rule and chain netd owns; already absent is fine."""


def select(name: str) -> Firewall:
    from netd.firewall.iptables import IptablesFirewall
    from netd.firewall.nftables import NftablesFirewall
    from netd.firewall.noop import NoopFirewall

    drivers = {"nftables": (NftablesFirewall, "nft"), "iptables": (IptablesFirewall, "iptables-restore")}
    if name == "none":
        return NoopFirewall()
    if name == "auto":
        for candidate, (_, binary) in drivers.items():
            if shutil.which(binary):
                return select(candidate)
        raise FailedPrecondition("firewall auto: neither nft nor iptables-restore is installed")
    if name not in drivers:
        raise FailedPrecondition(f"firewall {name!r} is unknown: use auto, nftables, iptables or none")
    cls, binary = drivers[name]
    if not shutil.which(binary):
        raise FailedPrecondition(f"firewall {name}: {binary} is not installed")
    return cls()


def remove_others(chosen: Firewall) -> None:
    """Switching drivers between runs must not leave the old driver's rules behind."""
    from netd.firewall.iptables import IptablesFirewall
    from netd.firewall.nftables import NftablesFirewall

    for cls, binary in ((NftablesFirewall, "nft"), (IptablesFirewall, "iptables-save")):
        if cls.name != chosen.name and shutil.which(binary):
            cls().teardown()
