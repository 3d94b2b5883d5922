"""The SQLite store (WAL, durable commits, idempotent events) and API keys (hashed, scoped)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from longtail.errors import ConfigError
from longtail.serve.keys import SCOPES, KeyChecker, Verdict, allows, create_key, parse_expiry
from longtail.serve.store import DuplicateKey, EventIdConflict, NewEvent, StoreError, open_store, store_path


def test_store_url_forms(tmp_path: Path) -> None:
    assert store_path("sqlite:///rel/x.db") == Path("rel/x.db")
    assert store_path(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db"
    assert store_path(tmp_path / "x.db") == tmp_path / "x.db"
    with pytest.raises(ConfigError, match="only sqlite"):
        store_path("postgresql://db/x")
    with pytest.raises(ConfigError, match="durable"):
        store_path("sqlite:///:memory:")


def test_wal_and_full_sync(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_events_survive_reopen_in_order_and_event_id_is_idempotent(store_url: str) -> None:
    store = open_store(store_url)
    seqs = store.append_events([NewEvent("u1", "i1", 10, "e1"), NewEvent("u2", "i2", 11, None),
                                NewEvent("u1", "i1", 10, "e1")])  # a retry inside the batch
    assert seqs[0] is not None and seqs[1] is not None and seqs[2] is None
    assert store.append_events([NewEvent("u1", "i1", 10, "e1")]) == [None]  # retried later
    with pytest.raises(EventIdConflict, match="e1"):  # the same id for another event: refused, not dropped
        store.append_events([NewEvent("u1", "i3", 13, "e1")])
    store.close()
    again = open_store(store_url)  # a new process would see the same
    batches = list(again.events_since(0))
    assert [b.user_ids for b in batches] == [["u1", "u2"]]
    assert batches[0].ts.tolist() == [10, 11]
    assert again.event_ids() == {"e1"} and again.count_events() == 2
    assert list(again.events_since(int(batches[0].seq[-1]))) == []


def test_items_round_trip_and_unique_ids(store_url: str) -> None:
    store = open_store(store_url)
    vectors = np.eye(2, 4, dtype=np.float32)
    store.add_items([("a", "A", "text a", "x|y"), ("b", "B", "", "")], "enc", vectors)
    with pytest.raises(DuplicateKey):
        store.add_items([("c", "C", "", ""), ("a", "again", "", "")], "enc", vectors)
    rows = store.items()
    assert [r.item_id for r in rows] == ["a", "b"]  # the failed batch left nothing behind
    np.testing.assert_array_equal(np.stack([r.embedding for r in rows]), vectors)


def test_keys_are_hashed_scoped_and_revocable(store_url: str) -> None:
    store = open_store(store_url)
    key = create_key(store, "read", "alice")
    key_id, secret = key.split("_")[1], key.split("_", 2)[2]
    with store._reading(own=True) as conn:  # both backends: the rows as stored
        raw = conn.execute("SELECT * FROM api_keys").fetchall()
    assert secret.encode() not in repr(raw).encode() and key not in repr(raw)  # only salt + digest
    checker = KeyChecker(store, ttl_s=0.0)
    assert checker.scope_of(key) == "read"
    assert checker.scope_of(key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # wrong secret
    assert checker.scope_of("lt_nothex!_x") is None and checker.scope_of("") is None
    assert checker.scope_of(None) is None
    assert allows("write", "read") and allows("read", "read") and not allows("read", "write")
    assert allows("profile", "read") and not allows("read", "profile") and not allows("write", "profile")
    assert all(allows("admin", s) for s in SCOPES) and not any(allows(s, "admin") for s in SCOPES[:-1])
    assert store.revoke_key(key_id)
    assert checker.scope_of(key) is None
    with pytest.raises(ConfigError, match="scope"):
        create_key(store, "owner")


def test_expired_keys_are_refused_and_failed_lookups_remembered(store_url: str) -> None:
    store = open_store(store_url)
    soon = create_key(store, "profile", "short", expires=time.time() + 1.0)
    later = create_key(store, "read", "long", expires=parse_expiry("30d"))
    checker = KeyChecker(store)
    assert checker.check(soon).scope == "profile" and checker.check(later).scope == "read"
    time.sleep(1.1)  # the remembered verdict lasts no longer than the key
    assert checker.check(soon) == Verdict(soon[3:11], None, "expired API key")
    assert {row["key_id"]: row["expires"] is not None for row in store.list_keys()} == {
        soon[3:11]: True, later[3:11]: True}
    reads = checker.store_reads
    unknown = "lt_0badc0de_" + "A" * 43
    for _ in range(50):  # the same bad key, and the same unknown key_id with other secrets: one read
        assert not checker.check(unknown).ok and not checker.check(unknown[:-1] + "B").ok
        assert checker.check(soon).reason == "expired API key"
    assert checker.store_reads == reads + 1
    store.close()


def test_expiry_spans_and_dates() -> None:
    now = 1_800_000_000.0
    assert parse_expiry("30d", now) == now + 30 * 86_400 and parse_expiry("12h", now) == now + 43_200
    assert parse_expiry("2027-03-01T00:00:00+00:00", now) == parse_expiry("2027-03-01", now)
    for bad in ("soon", "-1d", "2020-01-01"):
        with pytest.raises(ConfigError, match="expires"):
            parse_expiry(bad, now)


def test_an_old_store_is_migrated_in_place_and_a_newer_one_refused(store_url: str) -> None:
    """A store at schema version 1 (as longtail wrote it before version 2) opens at the latest
    version with its rows kept (events gain a NULL key_id, keys a NULL expiry: old keys keep
    working); a store from a newer longtail is refused, not rewritten."""
    from longtail.serve.store_schema import LATEST, MIGRATIONS

    store = open_store(store_url)
    store.append_events([NewEvent("u1", "i1", 10, "e1")])
    old_key = create_key(store, "write")
    with store._write() as conn:  # back to version 1: what an older longtail left on disk
        conn.execute("DROP INDEX events_item")
        conn.execute("ALTER TABLE events DROP COLUMN key_id")
        conn.execute("ALTER TABLE api_keys DROP COLUMN expires")
        store._set_meta(conn, "schema_version", "1")
    store.close()
    again = open_store(store_url)
    assert again.schema_version() == LATEST == 3 and again.count_events() == 1
    assert KeyChecker(again).scope_of(old_key) == "write"
    again.append_events([NewEvent("u2", "i1", 11, None, key_id=old_key[3:11])])
    with again._reading(own=True) as conn:
        assert [tuple(r) for r in conn.execute("SELECT user_id, key_id FROM events ORDER BY seq")] == [
            ("u1", None), ("u2", old_key[3:11])]
    index = {"sqlite": "SELECT name FROM sqlite_master WHERE name = 'events_item'",
             "postgresql": "SELECT indexname FROM pg_indexes WHERE indexname = 'events_item'"}[again.dialect]
    with again._reading(own=True) as conn:
        assert conn.execute(index).fetchone() is not None
    assert {m.version for m in MIGRATIONS[again.dialect]} == {1, 2, 3}
    with again._write() as conn:
        again._set_meta(conn, "schema_version", str(LATEST + 1))
    again.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(store_url)
