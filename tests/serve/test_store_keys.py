"""The SQLite store (WAL, durable commits, idempotent events) and API keys (hashed, scoped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longtail.errors import ConfigError
from longtail.serve.keys import KeyChecker, allows, create_key
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
    assert store.revoke_key(key_id)
    assert checker.scope_of(key) is None
    with pytest.raises(ConfigError, match="scope"):
        create_key(store, "admin")


def test_an_old_store_is_migrated_in_place_and_a_newer_one_refused(store_url: str) -> None:
    """A store at schema version 1 (as longtail wrote it before version 2) opens at the latest
    version with its rows kept; a store from a newer longtail is refused, not rewritten."""
    from longtail.serve.store_schema import LATEST, MIGRATIONS

    store = open_store(store_url)
    store.append_events([NewEvent("u1", "i1", 10, "e1")])
    with store._write() as conn:  # back to version 1: what an older longtail left on disk
        conn.execute("DROP INDEX events_item")
        store._set_meta(conn, "schema_version", "1")
    store.close()
    again = open_store(store_url)
    assert again.schema_version() == LATEST == 2 and again.count_events() == 1
    index = {"sqlite": "SELECT name FROM sqlite_master WHERE name = 'events_item'",
             "postgresql": "SELECT indexname FROM pg_indexes WHERE indexname = 'events_item'"}[again.dialect]
    with again._reading(own=True) as conn:
        assert conn.execute(index).fetchone() is not None
    assert {m.version for m in MIGRATIONS[again.dialect]} == {1, 2}
    with again._write() as conn:
        again._set_meta(conn, "schema_version", str(LATEST + 1))
    again.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(store_url)
