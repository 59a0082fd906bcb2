"""An in-memory Store with the same contract as the SQLite one, for unit tests."""

from __future__ import annotations

import threading
from dataclasses import replace
from ipaddress import IPv4Address

from netd.errors import AddressInUse, AlreadyAttached
from netd.model import Endpoint


class MemoryStore:
    def __init__(self) -> None:
        self._endpoints: dict[str, Endpoint] = {}
        self._last: dict[str, IPv4Address] = {}
        self._lock = threading.Lock()

    def add(self, endpoint: Endpoint) -> None:
        with self._lock:
            if endpoint.container_id in self._endpoints:
                raise AlreadyAttached(f"container {endpoint.container_id} is already attached")
            ip = endpoint.address.ip
            if any(e.network == endpoint.network and e.address.ip == ip for e in self._endpoints.values()):
                raise AddressInUse(f"ip_address {ip} is already assigned to another endpoint")
            self._endpoints[endpoint.container_id] = endpoint
            self._last[endpoint.network] = ip

    def mark_ready(self, container_id: str, host_ifindex: int) -> Endpoint:
        with self._lock:
            endpoint = replace(self._endpoints[container_id], host_ifindex=host_ifindex, ready=True)
            self._endpoints[container_id] = endpoint
            return endpoint

    def remove(self, container_id: str) -> bool:
        with self._lock:
            return self._endpoints.pop(container_id, None) is not None

    def get(self, container_id: str) -> Endpoint | None:
        with self._lock:
            return self._endpoints.get(container_id)

    def by_host_ifname(self, host_ifname: str) -> Endpoint | None:
        with self._lock:
            return next((e for e in self._endpoints.values() if e.host_ifname == host_ifname), None)

    def list(self, network: str | None = None) -> list[Endpoint]:
        with self._lock:
            endpoints = sorted(self._endpoints.values(), key=lambda e: (e.created_at, e.container_id))
        return [e for e in endpoints if network is None or e.network == network]

    def used_addresses(self, network: str) -> set[IPv4Address]:
        with self._lock:
            return {e.address.ip for e in self._endpoints.values() if e.network == network}

    def last_reserved(self, network: str) -> IPv4Address | None:
        with self._lock:
            return self._last.get(network)

    def close(self) -> None:
        pass
