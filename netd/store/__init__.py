"""Where endpoints are recorded. `Store` is the contract; sqlite.py keeps it on
disk, memory.py keeps it in a dict for unit tests."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Protocol

from netd.model import Endpoint, NetworkConfig


class Store(Protocol):
    def add(self, endpoint: Endpoint) -> None:
        """Reserve a new endpoint (not ready) and remember its address as the
        last one handed out. Raises AlreadyAttached for a known container id,
        AddressInUse for a taken address. Endpoints are keyed by (network,
        container id)."""

    def mark_ready(self, network: str, container_id: str, host_ifindex: int) -> Endpoint:
        """The endpoint is plugged: from here on it survives a restart."""

    def remove(self, network: str, container_id: str) -> bool:
        """Forget an endpoint, releasing its address. False if it was unknown."""

    def get(self, network: str, container_id: str) -> Endpoint | None: ...

    def of_container(self, container_id: str) -> list[Endpoint]:
        """The container's endpoints on every network."""

    def by_host_ifname(self, host_ifname: str) -> Endpoint | None: ...

    def list(self, network: str | None = None) -> list[Endpoint]: ...

    def used_addresses(self, network: str) -> set[IPv4Address]: ...

    def last_reserved(self, network: str) -> IPv4Address | None: ...

    def add_network(self, net: NetworkConfig) -> None:
        """Record a network created through the API (it comes back after a restart)."""

    def remove_network(self, name: str) -> None: ...

    def networks(self) -> list[NetworkConfig]:
        """The networks created through the API, in the order they were."""

    def close(self) -> None: ...
