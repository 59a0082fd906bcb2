"""etcd through etcd3gw (its v3 JSON gateway, which etcd serves on the
client port): the few operations the cluster needs, over the endpoints in
turn, with etcd's errors as netd's.

etcd3gw rather than aetcd: it speaks TLS to etcd (aetcd opens only plain
channels), and it is synchronous, like the rest of netd's background work.
Its watch ends silently when its stream breaks; the agent's resync covers that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import etcd3gw
from etcd3gw import exceptions as etcd_errors

from netd.errors import Unavailable
from netd.model import ClusterConfig


class EtcdUnavailable(Unavailable):
    """No endpoint of etcd answered."""


def _client(url: str, cluster: ClusterConfig) -> etcd3gw.Etcd3Client:
    parts = urlsplit(url)
    tls = {"ca_cert": cluster.etcd_ca or None, "cert_cert": cluster.etcd_cert or None,
           "cert_key": cluster.etcd_key or None}
    return etcd3gw.Etcd3Client(host=parts.hostname or "localhost", port=parts.port or 2379, protocol=parts.scheme,
                               timeout=5, api_path="/v3/", **tls)


class Etcd:
    def __init__(self, cluster: ClusterConfig) -> None:
        self._clients = [_client(url, cluster) for url in cluster.etcd_endpoints]
        self._current = 0
        self._lock = threading.Lock()

    def _call(self, what: str, operation: Callable[[etcd3gw.Etcd3Client], Any]) -> Any:
        """operation on the endpoint that answered last, else on the others in turn."""
        with self._lock:
            first = self._current
        errors = []
        for step in range(len(self._clients)):
            k = (first + step) % len(self._clients)
            try:
                result = operation(self._clients[k])
            except (etcd_errors.ConnectionFailedError, etcd_errors.ConnectionTimeoutError) as e:
                errors.append(f"{self._clients[k].base_url}: {type(e).__name__}")
                continue
            except etcd_errors.Etcd3Exception as e:
                raise EtcdUnavailable(f"failed to {what}: etcd answered {e}") from None
            with self._lock:
                self._current = k
            return result
        raise EtcdUnavailable(f"failed to {what}: no etcd endpoint answered ({'; '.join(errors)})")

    def revision(self) -> int:
        return int(self._call("read etcd's revision", lambda c: c.status()["header"]["revision"]))

    def get(self, key: str) -> str | None:
        values = self._call(f"read {key}", lambda c: c.get(key))
        return values[0].decode() if values else None

    def list(self, prefix: str) -> dict[str, tuple[str, int]]:
        """key → (value, the id of the lease it is attached to, or 0)."""
        found = self._call(f"list {prefix}", lambda c: c.get_prefix(prefix))
        return {meta["key"].decode(): (value.decode(), int(meta.get("lease", 0))) for value, meta in found}

    def create(self, key: str, value: str, lease: int = 0) -> bool:
        """Put the key unless it exists, atomically; did it?"""
        return self._call(f"create {key}", lambda c: c.create(key, value, etcd3gw.Lease(lease, c) if lease else None))

    def put(self, key: str, value: str, lease: int) -> None:
        self._call(f"write {key}", lambda c: c.put(key, value, etcd3gw.Lease(lease, c)))

    def grant(self, ttl: int) -> int:
        """A new lease; its id."""
        return self._call("grant a lease", lambda c: c.lease(ttl).id)

    def refresh(self, lease: int) -> int:
        """Keep the lease alive; its TTL, or -1 if it expired."""
        return self._call(f"keep lease {lease:x} alive", lambda c: etcd3gw.Lease(lease, c).refresh())

    def time_to_live(self, lease: int) -> int:
        """Seconds the lease has left; -1 if it is gone."""
        return self._call(f"read lease {lease:x}", lambda c: etcd3gw.Lease(lease, c).ttl())

    def watch(self, prefix: str, start_revision: int) -> tuple[Iterator[dict], Callable[[], None]]:
        """The events under prefix from start_revision on, and a way to stop them."""
        return self._call(f"watch {prefix}", lambda c: c.watch_prefix(prefix, start_revision=start_revision))
