"""The do-nothing driver, for hosts where something else owns the firewall."""

from __future__ import annotations

from netd.model import NetworkConfig


class NoopFirewall:
    name = "none"

    def setup(self, net: NetworkConfig) -> None:
        pass

    def intact(self, net: NetworkConfig) -> bool:
        return True

    def teardown(self) -> None:
        pass
