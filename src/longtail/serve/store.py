"""Durable storage of the live service: posted catalogue items, interaction events and API keys.

SQLite in WAL mode with ``synchronous=FULL``: a write is on disk (WAL fsync'd) when ``commit``
returns, so a request is answered 2xx only after its data would survive a ``kill -9`` or a power
cut. WAL lets readers (replay, ``keys list``) run while the service writes. The schema is a few
``CREATE TABLE IF NOT EXISTS`` statements and a ``schema_version`` row: no migration framework
until a second version exists.

One writer per file: the service holds an OS lock on ``<db>.lock`` (``exclusive=True``), so a second
server refuses to start instead of splitting the live state; ``longtail keys`` opens the file without
it. A store that cannot be written is refused at open (a real commit happens there); a write that fails
later raises ``StoreUnavailable`` with a reason in words: the service answers 503, acknowledges nothing.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from longtail.errors import ConfigError
from longtail.serve.store_errors import EventIdConflict, StoreError, StoreUnavailable, unavailable

__all__ = ["EventIdConflict", "ItemRow", "NewEvent", "Store", "StoreError", "StoreUnavailable", "StoredEvents",
           "store_path"]

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
    """``client_ts``: the client gave ``ts`` (so it is part of the payload a retry must repeat);
    False when the server stamped it."""

    user_id: str
    item_id: str
    ts: int
    event_id: str | None = None
    client_ts: bool = True

    def same_as(self, user_id: str, item_id: str, ts: int) -> bool:
        """A retry of the stored event ``(user_id, item_id, ts)``, not another event."""
        return (self.user_id, self.item_id) == (user_id, item_id) and (not self.client_ts or int(self.ts) == ts)


class Store:
    """One SQLite file. Writes go through one connection under a lock (SQLite serialises writers
    anyway), each in one ``BEGIN IMMEDIATE`` transaction; ``reader()`` opens a separate connection
    for long reads such as replay. ``exclusive``: also hold ``<db>.lock`` until ``close()`` (the
    service: one writer per file)."""

    def __init__(self, url: str | Path, *, exclusive: bool = False) -> None:
        self.path = store_path(url)
        self._lock = threading.Lock()
        self._lock_fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store {self.path}: cannot create its directory ({exc.strerror or exc})") from None
        try:
            if exclusive:
                self._lock_fd = self._take_lock()
            try:
                self._conn = self._connect()
            except sqlite3.Error as exc:
                raise StoreError(f"store {self.path} cannot be opened ({exc}); check that it is a SQLite "
                                 "file and that it and its directory are writable") from None
            self._open()
        except BaseException:
            self.close()
            raise

    def _take_lock(self) -> int:
        """Hold ``<db>.lock`` (flock: the OS releases it when the process dies) and write our pid."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = -1
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            return fd
        except BlockingIOError:  # only flock(LOCK_NB) raises it: another process holds the lock
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            message = (f"store {self.path} is already served by another process (pid {holder}); "
                       "several servers share one store through PostgreSQL")
        except OSError as exc:
            message = f"store {self.path}: cannot take its lock file {lock_path.name} ({exc.strerror or exc})"
        if fd >= 0:
            os.close(fd)
        raise StoreError(message)

    def _connect(self) -> sqlite3.Connection:
        """Autocommit mode: every write is an explicit ``BEGIN IMMEDIATE ... COMMIT`` (``_write``)."""
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")  # the WAL is fsync'd at every commit
            conn.execute("PRAGMA busy_timeout=30000")
            if str(mode).lower() != "wal":
                raise StoreError(f"store {self.path}: SQLite refused WAL mode (got {mode}); use a local disk")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> None:
        """Create the schema and commit a row: a store that cannot be written fails here, at start,
        not at the first event."""
        try:
            with self._write() as conn:
                for statement in filter(str.strip, _DDL.split(";")):
                    conn.execute(statement)
                row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) != SCHEMA_VERSION:
                    raise StoreError(f"store {self.path}: schema {row[0]}, this longtail reads {SCHEMA_VERSION}")
                conn.execute("INSERT INTO meta VALUES ('last_opened', ?) ON CONFLICT (key) DO UPDATE "
                             "SET value = excluded.value", (time.strftime("%Y-%m-%dT%H:%M:%S%z"),))
        except StoreUnavailable as exc:
            raise StoreError(f"store {self.path} cannot be written ({exc.__cause__}); "
                             "check free space, permissions, lsattr") from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    @property
    def conn(self) -> sqlite3.Connection:
        """The writer connection (tests inject faults through it, e.g. ``PRAGMA max_page_count``)."""
        if self._conn is None:
            raise StoreUnavailable("the store is closed (the service is stopping)", 5)
        return self._conn

    def reader(self) -> sqlite3.Connection:
        """A fresh connection for reads that should not hold the writer's lock."""
        return self._connect()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed (durable) on exit or rolled back entirely; SQLite faults
        become ``StoreUnavailable``."""
        with self._lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # SQLite rolls back itself when the commit cannot be written
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                    raise unavailable(exc) from exc
                raise

    @contextmanager
    def _reading(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """A read on ``conn`` (default: a fresh reader, closed after); faults become ``StoreUnavailable``."""
        opened: sqlite3.Connection | None = None
        try:
            if conn is None:
                conn = opened = self.reader()
            yield conn
        except sqlite3.Error as exc:
            raise unavailable(exc) from exc
        finally:
            if opened is not None:
                opened.close()

    # -- events -------------------------------------------------------------------------------
    def append_events(self, events: Sequence[NewEvent]) -> list[int | None]:
        """Commit ``events`` in one transaction; durable on return. Per event, its sequence number,
        or None when its ``event_id`` was already stored with the same payload (a client's retry).
        An ``event_id`` stored with another payload raises ``EventIdConflict``: nothing is stored."""
        now = time.time()
        seqs: list[int | None] = []
        with self._write() as conn:
            for e in events:
                cursor = conn.execute(
                    "INSERT INTO events (user_id, item_id, ts, event_id, received) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (event_id) DO NOTHING",
                    (e.user_id, e.item_id, int(e.ts), e.event_id, now),
                )
                if cursor.rowcount == 1:
                    seqs.append(int(cursor.lastrowid or 0))
                    continue
                stored = conn.execute("SELECT user_id, item_id, ts FROM events WHERE event_id = ?",
                                      (e.event_id,)).fetchone()
                if not e.same_as(*stored):
                    raise EventIdConflict(str(e.event_id))
                seqs.append(None)
        return seqs

    def count_events(self) -> int:
        with self._lock, self._reading(self.conn) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def events_since(self, after_seq: int = 0, *, chunk: int = 200_000) -> Iterator[StoredEvents]:
        """Stored events with ``seq > after_seq`` in commit order, in chunks (replay)."""
        with self._reading() as conn:
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

    def event_ids(self) -> set[str]:
        """The client-given ``event_id`` of every stored event that has one (durability checks)."""
        with self._reading() as conn:
            return {row[0] for row in conn.execute("SELECT event_id FROM events WHERE event_id IS NOT NULL")}

    # -- items --------------------------------------------------------------------------------
    def add_items(self, rows: Sequence[tuple[str, str, str, str]], encoder: str, vectors: np.ndarray) -> list[int]:
        """Commit new items ``(item_id, title, text, categories)`` with their (n, d) float32 vectors;
        raises ``sqlite3.IntegrityError`` (nothing written) if an id is already stored."""
        now = time.time()
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        seqs: list[int] = []
        with self._write() as conn:
            for (item_id, title, text, categories), vector in zip(rows, vectors, strict=True):
                cursor = conn.execute(
                    "INSERT INTO items (item_id, title, text, categories, encoder, embedding, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (item_id, title, text, categories, encoder, vector.tobytes(), now),
                )
                seqs.append(int(cursor.lastrowid or 0))
        return seqs

    def items(self, after_seq: int = 0) -> list[ItemRow]:
        """The posted items with ``seq > after_seq``, in the order they were added."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT seq, item_id, title, text, categories, encoder, embedding FROM items "
                "WHERE seq > ? ORDER BY seq", (after_seq,))
            return [ItemRow(s, i, t, x, c, e, np.frombuffer(b, dtype="<f4").astype(np.float32))
                    for s, i, t, x, c, e, b in rows]

    def count_items(self) -> int:
        with self._lock, self._reading(self.conn) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    # -- api keys -----------------------------------------------------------------------------
    def add_key(self, key_id: str, salt: bytes, digest: bytes, scope: str, name: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                         (key_id, salt, digest, scope, name, time.time()))

    def get_key(self, key_id: str) -> tuple[bytes, bytes, str] | None:
        """(salt, digest, scope) of a live (not revoked) key, or None."""
        with self._lock, self._reading(self.conn) as conn:
            row = conn.execute(
                "SELECT salt, digest, scope FROM api_keys WHERE key_id = ? AND revoked IS NULL", (key_id,)
            ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]), str(row[2]))

    def list_keys(self) -> list[dict[str, object]]:
        with self._lock, self._reading(self.conn) as conn:
            rows = conn.execute(
                "SELECT key_id, scope, name, created, revoked FROM api_keys ORDER BY created").fetchall()
        return [{"key_id": k, "scope": s, "name": n, "created": c, "revoked": r} for k, s, n, c, r in rows]

    def revoke_key(self, key_id: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL", (time.time(), key_id))
        return cursor.rowcount == 1

    def count_keys(self) -> int:
        with self._lock, self._reading(self.conn) as conn:
            return int(conn.execute(
                "SELECT COUNT(*) FROM api_keys WHERE revoked IS NULL").fetchone()[0])
