"""The Store in memory: the unit tests' store, and SqliteStore's read mirror."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace
from ipaddress import IPv4Address

from netd.errors import AddressInUse, AlreadyAttached
from netd.model import Endpoint, NetworkConfig


class MemoryStore:
    def __init__(self) -> None:
        self._endpoints: dict[tuple[str, str], Endpoint] = {}  # (network, container id) → endpoint
        self._by_host: dict[str, tuple[str, str]] = {}  # host ifname → key
        self._networks_of: dict[str, set[str]] = {}  # container id → its networks
        self._used: dict[str, set[IPv4Address]] = {}
        self._last: dict[str, IPv4Address] = {}
        self._networks: dict[str, NetworkConfig] = {}  # created through the API, in order
        self._lock = threading.Lock()

    def load(self, endpoints: Iterable[Endpoint], last: dict[str, IPv4Address],
             networks: Iterable[NetworkConfig] = ()) -> None:
        for endpoint in endpoints:
            self._put(endpoint)
        self._last.update(last)
        self._networks.update((n.name, n) for n in networks)

    def _put(self, endpoint: Endpoint) -> None:
        self._endpoints[endpoint.key] = endpoint
        self._by_host[endpoint.host_ifname] = endpoint.key
        self._networks_of.setdefault(endpoint.container_id, set()).add(endpoint.network)
        self._used.setdefault(endpoint.network, set()).add(endpoint.address.ip)

    def add(self, endpoint: Endpoint) -> None:
        with self._lock:
            if endpoint.key in self._endpoints or endpoint.host_ifname in self._by_host:
                raise AlreadyAttached(
                    f"container {endpoint.container_id} is already attached to network {endpoint.network}")
            ip = endpoint.address.ip
            if ip in self._used.get(endpoint.network, ()):
                raise AddressInUse(f"ip_address {ip} is already assigned to another endpoint")
            self._put(endpoint)
            self._last[endpoint.network] = ip

    def mark_ready(self, network: str, container_id: str, host_ifindex: int) -> Endpoint:
        with self._lock:
            endpoint = replace(self._endpoints[network, container_id], host_ifindex=host_ifindex, ready=True)
            self._endpoints[endpoint.key] = endpoint
            return endpoint

    def remove(self, network: str, container_id: str) -> bool:
        with self._lock:
            endpoint = self._endpoints.pop((network, container_id), None)
            if endpoint is None:
                return False
            del self._by_host[endpoint.host_ifname]
            self._used[endpoint.network].discard(endpoint.address.ip)
            networks = self._networks_of[container_id]
            networks.discard(network)
            if not networks:
                del self._networks_of[container_id]
            return True

    def get(self, network: str, container_id: str) -> Endpoint | None:
        return self._endpoints.get((network, container_id))

    def of_container(self, container_id: str) -> list[Endpoint]:
        """Without scanning every endpoint: detach runs this on each call."""
        with self._lock:
            found = [self._endpoints[n, container_id] for n in self._networks_of.get(container_id, ())]
        return sorted(found, key=lambda e: (e.created_at, e.network))

    def by_host_ifname(self, host_ifname: str) -> Endpoint | None:
        with self._lock:
            key = self._by_host.get(host_ifname)
            return self._endpoints.get(key) if key else None

    def list(self, network: str | None = None) -> list[Endpoint]:
        with self._lock:
            endpoints = list(self._endpoints.values())
        endpoints.sort(key=lambda e: (e.created_at, e.container_id, e.network))
        return [e for e in endpoints if network is None or e.network == network]

    def used_addresses(self, network: str) -> set[IPv4Address]:
        with self._lock:
            return set(self._used.get(network, ()))

    def last_reserved(self, network: str) -> IPv4Address | None:
        return self._last.get(network)

    def add_network(self, net: NetworkConfig) -> None:
        with self._lock:
            self._networks[net.name] = net

    def remove_network(self, name: str) -> None:
        with self._lock:
            self._networks.pop(name, None)
            self._last.pop(name, None)

    def networks(self) -> list[NetworkConfig]:
        with self._lock:
            return list(self._networks.values())

    def close(self) -> None:
        pass
