"""The Store on disk: one SQLite file in WAL mode under the state dir.

One connection shared by all threads behind a lock: writes are serialised by
SQLite anyway, and a single connection avoids per-thread connection setup on
the attach path. UNIQUE constraints are the last line against handing out an
address twice.
"""

from __future__ import annotations

import sqlite3
import threading
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from netd.errors import AddressInUse, AlreadyAttached, StoreError
from netd.model import Endpoint, NetnsId

SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoints (
    container_id TEXT PRIMARY KEY,
    network      TEXT NOT NULL,
    ifname       TEXT NOT NULL,
    host_ifname  TEXT NOT NULL UNIQUE,
    address      TEXT NOT NULL,
    ip           TEXT NOT NULL,
    gateway      TEXT NOT NULL,
    mac_address  TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    netns_path   TEXT NOT NULL,
    netns_id     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    host_ifindex INTEGER NOT NULL DEFAULT 0,
    ready        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (network, ip)
);
CREATE TABLE IF NOT EXISTS allocator (
    network       TEXT PRIMARY KEY,
    last_reserved TEXT NOT NULL
);
"""

COLUMNS = (
    "container_id, network, ifname, host_ifname, address, gateway, mac_address, "
    "pid, netns_path, netns_id, created_at, host_ifindex, ready"
)


def _row_to_endpoint(row: tuple) -> Endpoint:
    (cid, network, ifname, host_ifname, address, gateway, mac, pid, path, nsid, created, ifindex, ready) = row
    return Endpoint(
        container_id=cid,
        network=network,
        ifname=ifname,
        host_ifname=host_ifname,
        address=IPv4Interface(address),
        gateway=IPv4Address(gateway),
        mac_address=mac,
        pid=pid,
        netns_path=path,
        netns_id=NetnsId.parse(nsid),
        created_at=created,
        host_ifindex=ifindex,
        ready=bool(ready),
    )


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a crash of netd (WAL survives the
            # process); only a power loss can drop the last transactions.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise StoreError(f"failed to open state database {path}: {e}") from e
        self._lock = threading.Lock()

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"failed to query state database {self.path}: {e}") from e

    def add(self, endpoint: Endpoint) -> None:
        e = endpoint
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute(
                        f"INSERT INTO endpoints ({COLUMNS}, ip) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (e.container_id, e.network, e.ifname, e.host_ifname, str(e.address),
                         str(e.gateway), e.mac_address, e.pid, e.netns_path, str(e.netns_id),
                         e.created_at, e.host_ifindex, int(e.ready), str(e.address.ip)),
                    )
                    self._db.execute(
                        "INSERT INTO allocator (network, last_reserved) VALUES (?, ?) "
                        "ON CONFLICT(network) DO UPDATE SET last_reserved = excluded.last_reserved",
                        (e.network, str(e.address.ip)),
                    )
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError as err:
                if "endpoints.ip" in str(err):
                    raise AddressInUse(f"ip_address {e.address.ip} is already assigned to another endpoint") from None
                raise AlreadyAttached(f"container {e.container_id} is already attached") from None
            except sqlite3.Error as err:
                raise StoreError(f"failed to record endpoint {e.container_id}: {err}") from err

    def mark_ready(self, container_id: str, host_ifindex: int) -> Endpoint:
        self._query(
            "UPDATE endpoints SET ready = 1, host_ifindex = ? WHERE container_id = ?",
            (host_ifindex, container_id),
        )
        endpoint = self.get(container_id)
        if endpoint is None:
            raise StoreError(f"failed to mark endpoint {container_id} ready: record vanished")
        return endpoint

    def remove(self, container_id: str) -> bool:
        with self._lock:
            try:
                return self._db.execute(
                    "DELETE FROM endpoints WHERE container_id = ?", (container_id,)
                ).rowcount > 0
            except sqlite3.Error as e:
                raise StoreError(f"failed to remove endpoint {container_id}: {e}") from e

    def get(self, container_id: str) -> Endpoint | None:
        rows = self._query(f"SELECT {COLUMNS} FROM endpoints WHERE container_id = ?", (container_id,))
        return _row_to_endpoint(rows[0]) if rows else None

    def by_host_ifname(self, host_ifname: str) -> Endpoint | None:
        rows = self._query(f"SELECT {COLUMNS} FROM endpoints WHERE host_ifname = ?", (host_ifname,))
        return _row_to_endpoint(rows[0]) if rows else None

    def list(self, network: str | None = None) -> list[Endpoint]:
        sql = f"SELECT {COLUMNS} FROM endpoints"
        args: tuple = ()
        if network is not None:
            sql, args = sql + " WHERE network = ?", (network,)
        return [_row_to_endpoint(r) for r in self._query(sql + " ORDER BY created_at, container_id", args)]

    def used_addresses(self, network: str) -> set[IPv4Address]:
        rows = self._query("SELECT ip FROM endpoints WHERE network = ?", (network,))
        return {IPv4Address(r[0]) for r in rows}

    def last_reserved(self, network: str) -> IPv4Address | None:
        rows = self._query("SELECT last_reserved FROM allocator WHERE network = ?", (network,))
        return IPv4Address(rows[0][0]) if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
