"""The Store on disk: one SQLite file in WAL mode under the state dir.

Every write goes to SQLite first (the record of truth across crashes), then
to an in-memory mirror that answers all reads: one netd owns the file (see
daemon.lock_state_dir), so the mirror cannot go stale, and listing 1000
endpoints costs no parsing of rows. UNIQUE constraints are the last line
against handing out an address twice.

One connection shared by all threads behind a lock: SQLite serialises
writes anyway, and it avoids per-thread connection setup on the attach path.

Checkpoints (copying the WAL into the database, with an fsync: ~20 ms here)
run on a thread of their own. Left to SQLite, every ~160th attach would pay
for one while holding the write lock, stalling every caller behind it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network, ip_address
from pathlib import Path

import structlog

from netd.errors import StoreError
from netd.model import Endpoint, NetnsId, NetworkConfig, PortMapping
from netd.store.memory import MemoryStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoints (
    container_id TEXT NOT NULL,
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
    owner        TEXT NOT NULL DEFAULT '',
    ports        TEXT NOT NULL DEFAULT '[]',
    address6     TEXT NOT NULL DEFAULT '',
    gateway6     TEXT NOT NULL DEFAULT '',
    name         TEXT NOT NULL DEFAULT '',
    aliases      TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (network, container_id),
    UNIQUE (network, ip)
);
CREATE TABLE IF NOT EXISTS allocator (
    network       TEXT PRIMARY KEY,
    last_reserved TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS networks (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
"""

COLUMNS = (
    "container_id, network, ifname, host_ifname, address, gateway, mac_address, "
    "pid, netns_path, netns_id, created_at, host_ifindex, ready, owner, ports, address6, gateway6, name, aliases"
)
CHECKPOINT_INTERVAL = 1.0  # seconds: at most one checkpoint per interval, only after writes
log = structlog.get_logger("netd")
# Columns added after the first release: (name, definition) for ALTER TABLE.
ADDED_COLUMNS = (("owner", "TEXT NOT NULL DEFAULT ''"), ("ports", "TEXT NOT NULL DEFAULT '[]'"),
                 ("address6", "TEXT NOT NULL DEFAULT ''"), ("gateway6", "TEXT NOT NULL DEFAULT ''"),
                 ("name", "TEXT NOT NULL DEFAULT ''"), ("aliases", "TEXT NOT NULL DEFAULT '[]'"))


def ports_to_json(ports: tuple[PortMapping, ...]) -> str:
    return json.dumps([[m.protocol, str(m.host_ip or ""), m.host_port, m.container_port, m.count] for m in ports])


def ports_from_json(text: str) -> tuple[PortMapping, ...]:
    return tuple(PortMapping(host, inside, proto, ip_address(ip) if ip else None, count)
                 for proto, ip, host, inside, count in json.loads(text))


def network_to_json(net: NetworkConfig) -> str:
    return json.dumps({
        "name": net.name, "bridge": net.bridge, "subnet": str(net.subnet), "gateway": str(net.gateway),
        "mtu": net.mtu, "icc": net.icc, "masquerade": net.masquerade, "subnet6": str(net.subnet6 or ""),
        "masquerade6": net.masquerade6, "multicast_snooping": net.multicast_snooping, "internal": net.internal,
        "dns": net.dns, "labels": dict(net.labels)}, sort_keys=True)


def network_from_json(text: str) -> NetworkConfig:
    d = json.loads(text)
    return NetworkConfig(
        name=d["name"], bridge=d["bridge"], subnet=IPv4Network(d["subnet"]), gateway=IPv4Address(d["gateway"]),
        mtu=d["mtu"], icc=d["icc"], masquerade=d["masquerade"],
        subnet6=IPv6Network(d["subnet6"]) if d["subnet6"] else None, masquerade6=d["masquerade6"],
        multicast_snooping=d["multicast_snooping"], internal=d["internal"], dns=d["dns"],
        labels=tuple(sorted(d["labels"].items())), source="api")


def _row_to_endpoint(row: tuple) -> Endpoint:
    (cid, network, ifname, host_ifname, address, gateway, mac, pid, path, nsid, created, ifindex, ready, owner,
     ports, address6, gateway6, name, aliases) = row
    return Endpoint(
        container_id=cid, network=network, ifname=ifname, host_ifname=host_ifname,
        address=IPv4Interface(address), gateway=IPv4Address(gateway), mac_address=mac, pid=pid,
        netns_path=path, netns_id=NetnsId.parse(nsid), created_at=created, host_ifindex=ifindex,
        ready=bool(ready), owner=owner, ports=ports_from_json(ports),
        address6=IPv6Interface(address6) if address6 else None, gateway6=IPv6Address(gateway6) if gateway6 else None,
        name=name, aliases=tuple(json.loads(aliases)),
    )


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database from an older netd up to SCHEMA."""
    columns = {row[1]: row for row in db.execute("PRAGMA table_info(endpoints)")}
    for name, definition in ADDED_COLUMNS:
        if name not in columns:
            db.execute(f"ALTER TABLE endpoints ADD COLUMN {name} {definition}")
    if columns["container_id"][5] == 1 and columns["network"][5] == 0:
        # Keyed by container id alone (one network per container): rebuild
        # keyed by (network, container id).
        db.executescript(f"""
            BEGIN;
            ALTER TABLE endpoints RENAME TO endpoints_old;
            {SCHEMA}
            INSERT INTO endpoints ({COLUMNS}, ip) SELECT {COLUMNS}, ip FROM endpoints_old;
            DROP TABLE endpoints_old;
            COMMIT;
        """)


class SqliteStore:
    def __init__(self, path: Path, checkpoint_interval: float = CHECKPOINT_INTERVAL) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable against a crash of netd (WAL survives the
            # process); only a power loss can drop the last transactions.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.executescript(SCHEMA)
            _migrate(self._db)
            rows = self._db.execute(f"SELECT {COLUMNS} FROM endpoints").fetchall()
            last = self._db.execute("SELECT network, last_reserved FROM allocator").fetchall()
            specs = self._db.execute("SELECT spec FROM networks ORDER BY rowid").fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"failed to open state database {path}: {e}") from e
        self._lock = threading.Lock()
        self._mirror = MemoryStore()
        self._mirror.load([_row_to_endpoint(r) for r in rows], {n: IPv4Address(a) for n, a in last},
                          [network_from_json(spec) for (spec,) in specs])
        self._checkpointer = _Checkpointer(path, self._lock, checkpoint_interval)

    def _write(self, what: str, *statements: tuple[str, tuple]) -> list[tuple]:
        """Run statements in one transaction; rows returned by the last one."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    rows = self._db.execute(sql, args).fetchall()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._checkpointer.wrote()
            return rows
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as e:
            raise StoreError(f"failed to {what}: {e}") from e

    def add(self, endpoint: Endpoint) -> None:
        """Reserve in the mirror only: the record reaches the disk when it is
        ready, in one transaction. An attach interrupted before then leaves
        no record, only a netd-named veth, which reconcile deletes as an
        orphan at the next start."""
        with self._lock:
            self._mirror.add(endpoint)

    def mark_ready(self, network: str, container_id: str, host_ifindex: int) -> Endpoint:
        with self._lock:
            e = self._mirror.get(network, container_id)
            if e is None:
                raise StoreError(f"failed to record endpoint {container_id}: its reservation vanished")
            try:
                self._write(
                    f"record endpoint {container_id}",
                    # A replug records again what is there already.
                    (f"INSERT INTO endpoints ({COLUMNS}, ip) VALUES ({','.join('?' * 20)}) "
                     "ON CONFLICT(network, container_id) DO UPDATE SET host_ifindex = excluded.host_ifindex, ready = 1",
                     (e.container_id, e.network, e.ifname, e.host_ifname, str(e.address), str(e.gateway),
                      e.mac_address, e.pid, e.netns_path, str(e.netns_id), e.created_at, host_ifindex, 1, e.owner,
                      ports_to_json(e.ports), str(e.address6 or ""), str(e.gateway6 or ""), e.name, json.dumps(e.aliases),
                      str(e.address.ip))),
                    ("INSERT INTO allocator (network, last_reserved) VALUES (?, ?) "
                     "ON CONFLICT(network) DO UPDATE SET last_reserved = excluded.last_reserved",
                     (e.network, str(self._mirror.last_reserved(e.network)))),
                )
            except sqlite3.IntegrityError as err:  # the mirror let it through: a record it does not hold
                raise StoreError(f"failed to record endpoint {container_id}: {err}") from None
            return self._mirror.mark_ready(network, container_id, host_ifindex)

    def remove(self, network: str, container_id: str) -> bool:
        with self._lock:
            self._write(f"remove endpoint {container_id}",
                        ("DELETE FROM endpoints WHERE network = ? AND container_id = ?", (network, container_id)))
            return self._mirror.remove(network, container_id)

    def get(self, network: str, container_id: str) -> Endpoint | None:
        return self._mirror.get(network, container_id)

    def add_network(self, net: NetworkConfig) -> None:
        with self._lock:
            self._write(f"record network {net.name}",
                        ("INSERT INTO networks (name, spec) VALUES (?, ?)", (net.name, network_to_json(net))))
            self._mirror.add_network(net)

    def remove_network(self, name: str) -> None:
        with self._lock:
            self._write(f"remove network {name}", ("DELETE FROM networks WHERE name = ?", (name,)),
                        ("DELETE FROM allocator WHERE network = ?", (name,)))
            self._mirror.remove_network(name)

    def networks(self) -> list[NetworkConfig]:
        return self._mirror.networks()

    def of_container(self, container_id: str) -> list[Endpoint]:
        return self._mirror.of_container(container_id)

    def by_host_ifname(self, host_ifname: str) -> Endpoint | None:
        return self._mirror.by_host_ifname(host_ifname)

    def list(self, network: str | None = None) -> list[Endpoint]:
        return self._mirror.list(network)

    def used_addresses(self, network: str) -> set[IPv4Address]:
        return self._mirror.used_addresses(network)

    def last_reserved(self, network: str) -> IPv4Address | None:
        return self._mirror.last_reserved(network)

    def close(self) -> None:
        self._checkpointer.stop()
        with self._lock:
            self._db.close()  # the last connection to close checkpoints what is left


class _Checkpointer:
    """Copies the WAL into the database in the background, at most once per
    interval and only after writes.

    A PASSIVE checkpoint never blocks writers, but under steady writes it
    never catches up either, and SQLite starts the WAL over only once a
    checkpoint has copied all of it: the file would grow without end (40 KB
    per attach and detach). So the bulk is copied without the lock, then the
    few frames written meanwhile with the write lock held (~2 ms), after
    which the next write starts the WAL from its beginning.
    """

    def __init__(self, path: Path, write_lock: threading.Lock, interval: float) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        self._write_lock = write_lock
        self._interval = interval
        self._dirty = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="store-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        self._dirty.set()

    def checkpoint(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            with self._write_lock:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as e:
            # The next round retries; the WAL only grows meanwhile.
            log.warning("store_checkpoint_failed", error=str(e))

    def _loop(self) -> None:
        while True:
            self._dirty.wait()
            if self._stopped.is_set():
                return
            self._dirty.clear()
            self.checkpoint()
            self._stopped.wait(self._interval)

    def stop(self) -> None:
        self._stopped.set()
        self._dirty.set()
        self._thread.join()
        self._db.close()
