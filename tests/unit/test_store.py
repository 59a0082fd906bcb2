from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

import pytest

from netd.errors import AddressInUse, AlreadyAttached
from netd.model import Endpoint, NetnsId, PortMapping
from netd.store.memory import MemoryStore
from netd.store.sqlite import SqliteStore


def endpoint(cid: str = "c1", ip: str = "10.89.0.2", network: str = "default") -> Endpoint:
    return Endpoint(
        container_id=cid, network=network, ifname="eth0", host_ifname=f"vnd{cid}",
        address=IPv4Interface(f"{ip}/16"), gateway=IPv4Address("10.89.0.1"),
        mac_address="02:42:0a:59:00:02", pid=42, netns_path="", netns_id=NetnsId(4, 4026532000),
        created_at=f"2026-01-01T00:00:00.000Z-{cid}",
    )


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "state" / "netd.db")
    yield s
    s.close()


def test_add_then_get_round_trips(store):
    store.add(endpoint())
    assert store.get("default", "c1") == endpoint()
    assert store.by_host_ifname("vndc1") == endpoint()


def test_add_remembers_last_reserved(store):
    assert store.last_reserved("default") is None
    store.add(endpoint("c1", "10.89.0.7"))
    assert store.last_reserved("default") == IPv4Address("10.89.0.7")


def test_duplicate_container_id_is_already_attached(store):
    store.add(endpoint("c1", "10.89.0.2"))
    with pytest.raises(AlreadyAttached, match="c1"):
        store.add(endpoint("c1", "10.89.0.3"))
    assert store.used_addresses("default") == {IPv4Address("10.89.0.2")}


def test_duplicate_address_is_address_in_use(store):
    store.add(endpoint("c1", "10.89.0.2"))
    with pytest.raises(AddressInUse, match="10.89.0.2"):
        store.add(endpoint("c2", "10.89.0.2"))
    assert store.get("default", "c2") is None


def test_same_address_in_another_network_is_fine(store):
    store.add(endpoint("c1", "10.89.0.2"))
    store.add(replace(endpoint("c2", "10.89.0.2", network="other"), host_ifname="vndother"))
    assert len(store.list()) == 2 and len(store.list("other")) == 1


def test_mark_ready_records_ifindex(store):
    store.add(endpoint())
    ready = store.mark_ready("default", "c1", 17)
    assert ready.ready and ready.host_ifindex == 17
    assert store.get("default", "c1") == ready


def test_remove_releases_and_reports(store):
    store.add(endpoint())
    assert store.remove("default", "c1") is True
    assert store.remove("default", "c1") is False
    assert store.used_addresses("default") == set()
    assert store.get("default", "c1") is None


def test_list_is_ordered_by_creation(store):
    for cid, ip in (("b", "10.89.0.3"), ("a", "10.89.0.2")):
        store.add(endpoint(cid, ip))
    assert [e.container_id for e in store.list()] == ["a", "b"]


def test_sqlite_state_survives_reopen(tmp_path):
    path = tmp_path / "netd.db"
    first = SqliteStore(path)
    first.add(endpoint())
    first.mark_ready("default", "c1", 9)
    first.close()
    second = SqliteStore(path)
    assert second.get("default", "c1").host_ifindex == 9
    assert second.last_reserved("default") == IPv4Address("10.89.0.2")
    second.close()


def test_sqlite_writes_an_endpoint_once_it_is_ready(tmp_path):
    """A reservation lives in memory only: a crash before the endpoint is
    plugged leaves no record. Marking it ready again (a replug) updates it."""
    path = tmp_path / "netd.db"
    first = SqliteStore(path)
    first.add(endpoint("c1", "10.89.0.2"))
    first.add(endpoint("c2", "10.89.0.3"))
    first.mark_ready("default", "c2", 9)
    first.mark_ready("default", "c2", 11)
    first.close()
    second = SqliteStore(path)
    assert [(e.container_id, e.host_ifindex, e.ready) for e in second.list()] == [("c2", 11, True)]
    assert second.last_reserved("default") == IPv4Address("10.89.0.3")
    second.close()


def test_sqlite_adds_new_columns_to_an_older_database(tmp_path):
    import sqlite3

    from netd.store.sqlite import SCHEMA

    path = tmp_path / "netd.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace("    owner        TEXT NOT NULL DEFAULT '',\n", "")
                      .replace("    ports        TEXT NOT NULL DEFAULT '[]',\n", ""))
    old.close()
    store = SqliteStore(path)
    ports = (PortMapping(8080, 80), PortMapping(53, 5353, "udp", IPv4Address("127.0.0.1"), 2),
             PortMapping(8443, 443, host_ip=IPv6Address("2001:db8::2")))
    store.add(replace(endpoint(), owner="cni:netd", ports=ports))
    store.mark_ready("default", "c1", 9)
    store.close()
    store = SqliteStore(path)
    assert (store.get("default", "c1").owner, store.get("default", "c1").ports) == ("cni:netd", ports)
    store.close()


def test_one_container_on_two_networks(store):
    store.add(endpoint("c1", "10.89.0.2"))
    v6 = IPv6Interface("fd89::2/64")
    other = replace(endpoint("c1", "10.90.0.2", network="other"), host_ifname="vndother", address6=v6,
                    gateway6=IPv6Address("fd89::1"))
    store.add(other)
    assert [e.network for e in store.of_container("c1")] == ["default", "other"]
    assert store.get("other", "c1") == other
    assert store.remove("default", "c1") and store.of_container("c1") == [other]


def test_sqlite_rekeys_a_database_from_one_network_per_container(tmp_path):
    """Before several networks, endpoints were keyed by container id alone."""
    import sqlite3

    from netd.store.sqlite import SCHEMA

    path = tmp_path / "netd.db"
    old_schema = (SCHEMA.replace("container_id TEXT NOT NULL,", "container_id TEXT PRIMARY KEY,")
                  .replace("    PRIMARY KEY (network, container_id),\n", "")
                  .replace("    address6     TEXT NOT NULL DEFAULT '',\n", "")
                  .replace("    gateway6     TEXT NOT NULL DEFAULT '',\n", ""))
    old = sqlite3.connect(path)
    old.executescript(old_schema)
    old.execute("INSERT INTO endpoints (container_id, network, ifname, host_ifname, address, ip, gateway, mac_address,"
                " pid, netns_path, netns_id, created_at) VALUES ('c1', 'default', 'eth0', 'vndc1', '10.89.0.2/16',"
                " '10.89.0.2', '10.89.0.1', '02:42:0a:59:00:02', 42, '', '4:4026532000', 'then')")
    old.commit()
    old.close()
    store = SqliteStore(path)
    assert store.get("default", "c1").address == IPv4Interface("10.89.0.2/16")
    store.add(replace(endpoint("c1", "10.90.0.2", network="other"), host_ifname="vndother"))
    store.mark_ready("other", "c1", 7)
    store.close()
    assert sorted(e.network for e in SqliteStore(path).of_container("c1")) == ["default", "other"]


def test_sqlite_checkpoints_in_the_background_not_on_writes(tmp_path):
    """A checkpoint fsyncs; on the write path it stalled every ~160th attach by ~20 ms."""
    import time

    path = tmp_path / "netd.db"
    store = SqliteStore(path)
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    empty = path.stat().st_size
    for i in range(300):
        store.add(endpoint(f"c{i}", f"10.89.{i // 250}.{i % 250 + 2}"))
        store.mark_ready("default", f"c{i}", i + 10)
    deadline = time.monotonic() + 5
    while path.stat().st_size == empty and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > empty, "the WAL was never copied into the database"
    store.close()
    assert len(SqliteStore(path).list()) == 300


def test_sqlite_wal_stays_bounded_under_steady_writes(tmp_path):
    """Background checkpoints racing steady writes never copy the whole WAL,
    and SQLite reuses the file only after one has: it must not grow without end."""
    import time

    store = SqliteStore(tmp_path / "netd.db", checkpoint_interval=0.02)
    writes, deadline = 0, time.monotonic() + 2
    while time.monotonic() < deadline:
        store.add(endpoint(f"c{writes}"))
        store.mark_ready("default", f"c{writes}", 9)
        store.remove("default", f"c{writes}")
        writes += 2
    wal = (tmp_path / "netd.db-wal").stat().st_size
    store.close()
    assert wal < writes * 4096 / 4, f"WAL of {wal} bytes after {writes} writes"
