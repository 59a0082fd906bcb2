"""The do-nothing driver, for hosts where something else owns the firewall."""

from __future__ import annotations

from netd.firewall import Ruleset


class NoopFirewall:
    name = "none"

    def apply(self, rules: Ruleset) -> None:
        pass

    def intact(self, rules: Ruleset) -> bool:
        return True

    def teardown(self) -> None:
        pass
