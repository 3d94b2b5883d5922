"""Durable storage of the live service: posted catalogue items, interaction events and API keys.

SQLite in WAL mode with ``synchronous=FULL``: a write is on disk (WAL fsync'd) when ``commit``
returns, so a request is answered 2xx only after its data would survive a ``kill -9`` or a power
cut. WAL lets readers (replay, ``keys list``) run while the service writes. The schema is a few
``CREATE TABLE IF NOT EXISTS`` statements and a ``schema_version`` row: no migration framework
until a second version exists.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longtail.errors import ConfigError, LongtailError

SCHEMA_VERSION = 1
_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    categories TEXT NOT NULL,
    encoder TEXT NOT NULL,
    embedding BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    event_id TEXT UNIQUE,
    received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    salt BLOB NOT NULL,
    digest BLOB NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    revoked REAL
);
"""


class StoreError(LongtailError):
    """The store cannot be opened or is not a longtail store."""

    exit_code = 3


def store_path(url: str | Path) -> Path:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` (SQLAlchemy's form) or a bare path."""
    text = str(url)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(f"store {url!r}: only sqlite:///PATH is supported (got scheme {scheme!r})")
    if not text or text == ":memory:":
        raise ConfigError(f"store {url!r}: give a file path (an in-memory store is not durable)")
    return Path(text).expanduser()


@dataclass(frozen=True)
class ItemRow:
    """A catalogue item added through the service."""

    seq: int
    item_id: str
    title: str
    text: str
    categories: str  # "a|b|c", as in the shared catalogues
    encoder: str
    embedding: np.ndarray  # (d,) float32


@dataclass(frozen=True)
class StoredEvents:
    """Stored events as parallel arrays, in commit order."""

    seq: np.ndarray  # (n,) int64
    user_ids: list[str]
    item_ids: list[str]
    ts: np.ndarray  # (n,) int64


@dataclass(frozen=True)
class NewEvent:
    user_id: str
    item_id: str
    ts: int
    event_id: str | None = None


class Store:
    """One SQLite file. Writes go through one connection under a lock (SQLite serialises writers
    anyway); ``reader()`` opens a separate connection for long reads such as replay."""

    def __init__(self, url: str | Path) -> None:
        self.path = store_path(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = self._connect()
        with self._lock, self._conn:
            self._conn.executescript(_DDL)
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreError(f"{self.path}: store schema {row[0]}, this longtail reads {SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")  # the WAL is fsync'd at every commit
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open as a SQLite store ({exc})") from exc
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode}); use a local disk")
        conn.isolation_level = "DEFERRED"  # explicit transactions through ``with conn``
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def reader(self) -> sqlite3.Connection:
        """A fresh connection for reads that should not hold the writer's lock."""
        return self._connect()

    # -- events -------------------------------------------------------------------------------
    def append_events(self, events: Sequence[NewEvent]) -> list[int | None]:
        """Commit ``events`` in one transaction; durable on return. Per event, its sequence number,
        or None when its ``event_id`` was already stored (a client's retry)."""
        now = time.time()
        seqs: list[int | None] = []
        with self._lock, self._conn:
            for e in events:
                cursor = self._conn.execute(
                    "INSERT INTO events (user_id, item_id, ts, event_id, received) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (event_id) DO NOTHING",
                    (e.user_id, e.item_id, int(e.ts), e.event_id, now),
                )
                seqs.append(int(cursor.lastrowid) if cursor.rowcount == 1 else None)
        return seqs

    def count_events(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def events_since(self, after_seq: int = 0, *, chunk: int = 200_000) -> Iterator[StoredEvents]:
        """Stored events with ``seq > after_seq`` in commit order, in chunks (replay)."""
        conn = self.reader()
        try:
            last = after_seq
            while True:
                rows = conn.execute(
                    "SELECT seq, user_id, item_id, ts FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (last, chunk),
                ).fetchall()
                if not rows:
                    return
                seq, users, items, ts = zip(*rows, strict=True)
                yield StoredEvents(np.asarray(seq, np.int64), list(users), list(items), np.asarray(ts, np.int64))
                last = int(seq[-1])
        finally:
            conn.close()

    def event_ids(self) -> set[str]:
        """The client-given ``event_id`` of every stored event that has one (durability checks)."""
        conn = self.reader()
        try:
            return {row[0] for row in conn.execute("SELECT event_id FROM events WHERE event_id IS NOT NULL")}
        finally:
            conn.close()

    # -- items --------------------------------------------------------------------------------
    def add_items(self, rows: Sequence[tuple[str, str, str, str]], encoder: str, vectors: np.ndarray) -> list[int]:
        """Commit new items ``(item_id, title, text, categories)`` with their (n, d) float32 vectors;
        raises ``sqlite3.IntegrityError`` (nothing written) if an id is already stored."""
        now = time.time()
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        seqs: list[int] = []
        with self._lock, self._conn:
            for (item_id, title, text, categories), vector in zip(rows, vectors, strict=True):
                cursor = self._conn.execute(
                    "INSERT INTO items (item_id, title, text, categories, encoder, embedding, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (item_id, title, text, categories, encoder, vector.tobytes(), now),
                )
                seqs.append(int(cursor.lastrowid))
        return seqs

    def items(self, after_seq: int = 0) -> list[ItemRow]:
        """The posted items with ``seq > after_seq``, in the order they were added."""
        conn = self.reader()
        try:
            rows = conn.execute(
                "SELECT seq, item_id, title, text, categories, encoder, embedding FROM items "
                "WHERE seq > ? ORDER BY seq", (after_seq,))
            return [ItemRow(s, i, t, x, c, e, np.frombuffer(b, dtype="<f4").astype(np.float32))
                    for s, i, t, x, c, e, b in rows]
        finally:
            conn.close()

    def count_items(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    # -- api keys -----------------------------------------------------------------------------
    def add_key(self, key_id: str, salt: bytes, digest: bytes, scope: str, name: str) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                               (key_id, salt, digest, scope, name, time.time()))

    def get_key(self, key_id: str) -> tuple[bytes, bytes, str] | None:
        """(salt, digest, scope) of a live (not revoked) key, or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT salt, digest, scope FROM api_keys WHERE key_id = ? AND revoked IS NULL", (key_id,)
            ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]), str(row[2]))

    def list_keys(self) -> list[dict[str, object]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT key_id, scope, name, created, revoked FROM api_keys ORDER BY created").fetchall()
        return [{"key_id": k, "scope": s, "name": n, "created": c, "revoked": r} for k, s, n, c, r in rows]

    def revoke_key(self, key_id: str) -> bool:
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL", (time.time(), key_id))
        return cursor.rowcount == 1

    def count_keys(self) -> int:
        with self._lock:
            return int(self._conn.execute(
                "SELECT COUNT(*) FROM api_keys WHERE revoked IS NULL").fetchone()[0])
