"""Firewall drivers: NAT, published ports and forward rules for netd's networks.

Every driver keeps to what it owns (its own nft table, or its own iptables
chains hooked with one jump each), applies each change as one batch, and never
changes a global policy. A driver is always given the whole `Ruleset` and
makes its rules exactly that, so a change can never leave a stale rule.
`render_*` functions are pure and unit-tested as data.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Protocol

from netd import notify, runner
from netd.errors import FailedPrecondition
from netd.model import NetworkConfig, PortMapping

# The comment every netd rule carries (per network: "netd:NAME"), so exactly
# ours are found and removed.
TAG = "netd"
LOOPBACK = IPv4Network("127.0.0.0/8")
NETLINK_NETFILTER = 12  # not in Python's socket module
NFNLGRP_NFTABLES = 7  # the kernel multicasts every nftables ruleset change here


@dataclass(frozen=True)
class Forward:
    """A published port range of one endpoint."""

    mapping: PortMapping
    container_ip: IPv4Address
    container_ip6: IPv6Address | None = None  # on a dual-stack network

    def pairs(self, version: int) -> list[tuple[int, int]]:
        """(host port, container port) pairs DNATed for IP `version`; none when
        the mapping or the container lacks that family."""
        wanted = version in self.mapping.versions(dual_stack=self.container_ip6 is not None)
        return list(self.mapping.pairs()) if wanted else []


@dataclass(frozen=True)
class Ruleset:
    networks: tuple[NetworkConfig, ...]
    forwards: tuple[Forward, ...] = ()


def tag(net: NetworkConfig | None = None) -> str:
    return f"{TAG}:{net.name}" if net else TAG


class Firewall(Protocol):
    name: str

    def apply(self, rules: Ruleset) -> None:
        """Make netd's rules exactly the rendering of `rules`, in one batch."""

    def intact(self, rules: Ruleset) -> bool:
        """Are netd's rules for `rules` all in place?"""

    def teardown(self) -> None:
        """Remove every rule and chain netd owns; already absent is fine."""


class IntactCache:
    """Saves the periodic check from running a firewall tool while nothing changed.

    Every change to nftables (by nft, iptables-nft, firewalld…) is multicast
    to NFNLGRP_NFTABLES listeners. A ruleset found intact stays known intact
    until such a change arrives (or a different ruleset is asked about), so
    an idle netd checks without forking `nft` every interval. Without
    notifications (iptables-legacy, or no socket) it always says "check".
    """

    def __init__(self, notified: bool = True) -> None:
        self._changes = notify.Notifications(NETLINK_NETFILTER, 1 << (NFNLGRP_NFTABLES - 1)) if notified else None
        self._intact: Ruleset | None = None

    def known_intact(self, rules: Ruleset) -> bool:
        changed = self._changed()  # drained before the caller looks: no change slips between
        return not changed and self._intact is not None and self._intact == rules

    def remember(self, rules: Ruleset, intact: bool) -> None:
        self._intact = rules if intact else None

    def _changed(self) -> bool:
        return self._changes is None or self._changes.arrived()


def _drivers() -> dict[str, tuple[type, str]]:
    from netd.firewall.iptables import IptablesFirewall
    from netd.firewall.nftables import NftablesFirewall

    return {"nftables": (NftablesFirewall, "nft"), "iptables": (IptablesFirewall, "iptables-restore")}


def select(name: str, instance: str = "") -> Firewall:
    """The driver `name`, keeping to the table or chains of netd instance `instance`."""
    from netd.firewall.noop import NoopFirewall

    drivers = _drivers()
    if name == "none":
        return NoopFirewall()
    if name == "auto":
        for candidate, (_, binary) in drivers.items():
            if shutil.which(binary):
                return select(candidate, instance)
        raise FailedPrecondition("firewall auto: neither nft nor iptables-restore is installed")
    if name not in drivers:
        raise FailedPrecondition(f"firewall {name!r} is unknown: use auto, nftables, iptables or none")
    cls, binary = drivers[name]
    if not shutil.which(binary):
        raise FailedPrecondition(f"firewall {name}: {binary} is not installed")
    return cls(instance)


def remove_others(chosen: Firewall, instance: str) -> None:
    """Switching drivers between runs must not leave the old driver's rules behind."""
    for name, (cls, binary) in _drivers().items():
        if name != chosen.name and shutil.which(binary):
            cls(instance).teardown()


def remove_legacy() -> None:
    """The table or chains of a netd from before instances (no ID in their
    names), when its state dir is taken over by this one: they were that
    netd's, and would otherwise stay in the host's rules for good."""
    for cls, binary in _drivers().values():
        if shutil.which(binary):
            cls("").teardown()


def forget_udp_flows(mappings: tuple[PortMapping, ...], dual_stack: bool = False) -> None:
    """Delete conntrack entries of published UDP ports.

    A UDP client that keeps sending keeps its conntrack entry alive, and with
    it the old DNAT decision (or the lack of one): after a port is published
    or unpublished its packets would still go to the old place.
    """
    for m in mappings:
        if m.protocol != "udp":
            continue
        only_ip = ["--orig-dst", str(m.only_address)] if m.only_address else []
        for version in m.versions(dual_stack):
            for port in m.host_ports:
                # exit 1 means "0 flow entries have been deleted"
                runner.run(["conntrack", "-D", "-f", f"ipv{version}", "-p", "udp", "--orig-port-dst", str(port),
                            *only_ip], ok=(0, 1))

