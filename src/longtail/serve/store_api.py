"""What the service's store is, whatever holds it: posted catalogue items, interaction events and API
keys, each write one durable transaction, events replayed in commit order.

The queries are written once here, in SQL both dialects read (``?`` placeholders, ``RETURNING``,
``ON CONFLICT``); a backend (``store_sqlite``, ``store_pg``) supplies connections, transactions,
the meaning of its error codes, and whether several processes may share it (``shared``).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from longtail.serve.store_errors import EventIdConflict, StoreError, StoreUnavailable
from longtail.serve.store_schema import LATEST, META, pending


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
    key_id: str | None = None  # the API key that posted it (who wrote what, for audits)

    def same_as(self, user_id: str, item_id: str, ts: int) -> bool:
        """A retry of the stored event ``(user_id, item_id, ts)``, not another event."""
        return (self.user_id, self.item_id) == (user_id, item_id) and (not self.client_ts or int(self.ts) == ts)


class Store(ABC):
    """One durable store. ``shared``: several service processes may write it at once, and each must
    follow the others' writes (``store_pg``); otherwise one process owns it (``store_sqlite``)."""

    dialect: ClassVar[str]
    shared: ClassVar[bool] = False
    name: str  # for messages: the file, or the URL without its password

    # -- what a backend supplies --------------------------------------------------------------
    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """A connection inside one transaction: committed (durable) on exit or rolled back whole.
        Driver faults become ``StoreUnavailable``; a unique key stored twice, ``DuplicateKey``."""

    _lock: threading.Lock  # guards the writer's connection
    _driver_error: ClassVar[type[Exception]]  # the driver's base error class

    @abstractmethod
    def _own(self) -> Any:
        """The writer's connection (the caller holds ``_lock``)."""

    @abstractmethod
    def _fresh(self) -> Any:
        """A new connection for a long read (replay), closed after it."""

    @abstractmethod
    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        """A driver fault in words, with seconds before a retry."""

    @contextmanager
    def _reading(self, own: bool = False) -> Iterator[Any]:
        """A connection for reads (``own``: the writer's, for short reads; else a fresh one for long
        reads such as replay). Driver faults become ``StoreUnavailable``."""
        opened = None
        try:
            if own:
                with self._lock:
                    yield self._own()
            else:
                opened = self._fresh()
                yield opened
        except self._driver_error as exc:
            raise self._unavailable(exc) from exc
        finally:
            if opened is not None:
                opened.close()

    _key_lock: threading.Lock  # guards the key-lookup connection (never the writer's lock)
    _key_conn: Any = None

    @contextmanager
    def _key_reading(self) -> Iterator[Any]:
        """A connection of its own for API-key lookups: every request checks its key, so that check
        must not queue behind a commit (SQLite's WAL and PostgreSQL let it read meanwhile). Opened
        on first use, dropped after a fault (the next lookup opens another)."""
        with self._key_lock:
            try:
                if self._key_conn is None:
                    self._key_conn = self._fresh()
                yield self._key_conn
            except self._driver_error as exc:
                self._close_key_reader()
                raise self._unavailable(exc) from exc

    def _close_key_reader(self) -> None:
        """Close the key-lookup connection (the caller holds ``_key_lock``)."""
        if self._key_conn is not None:
            try:
                self._key_conn.close()
            except self._driver_error:
                pass  # already broken: nothing left to release
            self._key_conn = None

    @abstractmethod
    def close(self) -> None: ...

    def _sql(self, sql: str) -> str:
        """``sql`` in the driver's placeholder style."""
        return sql

    def _notify(self, conn: Any, what: str) -> None:
        """Tell the other processes sharing the store that ``what`` ("events", "items") changed;
        delivered at commit. Nothing to do for a store one process owns."""

    def follow(self, callback: Callable[[], None], stop: threading.Event, *, poll_s: float = 5.0) -> None:
        """Call ``callback`` whenever another process commits (a ``shared`` store); a store one
        process owns has no one to follow."""

    def _insert_each(self, conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> list[Any]:
        """Run the ``INSERT ... RETURNING`` ``sql`` once per row, in order (each sees the ones
        before it); per row, its returned row or None. Backends batch the round trips."""
        return [self._run(conn, sql, row).fetchone() for row in rows]

    def _run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self._sql(sql), tuple(params))

    # -- schema -------------------------------------------------------------------------------
    def _open(self) -> None:
        """Bring the schema to ``LATEST`` and commit a row: a store that cannot be written fails
        here, at start, not at the first event."""
        try:
            with self._write() as conn:
                self._run(conn, META)
                row = self._run(conn, "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                current = 0 if row is None else int(row[0])
                if current > LATEST:
                    raise StoreError(f"store {self.name}: schema version {current} is newer than this "
                                     f"longtail's ({LATEST}); upgrade longtail")
                for migration in pending(self.dialect, current):
                    for statement in migration.statements:
                        self._run(conn, statement)
                self._set_meta(conn, "schema_version", str(LATEST))
                self._set_meta(conn, "last_opened", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        except StoreUnavailable as exc:
            raise StoreError(f"store {self.name} cannot be written ({exc}; {exc.__cause__}); "
                             "check free space, permissions, the server") from None

    def _set_meta(self, conn: Any, key: str, value: str) -> None:
        self._run(conn, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                        "SET value = excluded.value", (key, value))

    def schema_version(self) -> int:
        with self._reading(own=True) as conn:
            return int(self._run(conn, "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    # -- events -------------------------------------------------------------------------------
    def append_events(self, events: Sequence[NewEvent]) -> list[int | None]:
        """Commit ``events`` in one transaction; durable on return. Per event, its sequence number,
        or None when its ``event_id`` was already stored with the same payload (a client's retry).
        An ``event_id`` stored with another payload raises ``EventIdConflict``: nothing is stored."""
        now = time.time()
        seqs: list[int | None] = []
        with self._write() as conn:
            inserted = self._insert_each(conn, "INSERT INTO events (user_id, item_id, ts, event_id, received, key_id) "
                                               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING "
                                               "RETURNING seq",
                                         [(e.user_id, e.item_id, int(e.ts), e.event_id, now, e.key_id) for e in events])
            for e, row in zip(events, inserted, strict=True):
                if row is not None:
                    seqs.append(int(row[0]))
                    continue
                stored = self._run(conn, "SELECT user_id, item_id, ts FROM events WHERE event_id = ?",
                                   (e.event_id,)).fetchone()
                if not e.same_as(*stored):
                    raise EventIdConflict(str(e.event_id))
                seqs.append(None)
            if any(s is not None for s in seqs):
                self._notify(conn, "events")
        return seqs

    def count_events(self) -> int:
        with self._reading(own=True) as conn:
            return int(self._run(conn, "SELECT COUNT(*) FROM events").fetchone()[0])

    def events_since(self, after_seq: int = 0, *, chunk: int = 200_000) -> Iterator[StoredEvents]:
        """Stored events with ``seq > after_seq`` in commit order, in chunks (replay)."""
        with self._reading() as conn:
            last = after_seq
            while True:
                rows = self._run(conn, "SELECT seq, user_id, item_id, ts FROM events WHERE seq > ? "
                                       "ORDER BY seq LIMIT ?", (last, chunk)).fetchall()
                if not rows:
                    return
                seq, users, items, ts = zip(*rows, strict=True)
                yield StoredEvents(np.asarray(seq, np.int64), list(users), list(items), np.asarray(ts, np.int64))
                last = int(seq[-1])

    def last_event_seq(self) -> int:
        with self._reading(own=True) as conn:
            return int(self._run(conn, "SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def event_ids(self) -> set[str]:
        """The client-given ``event_id`` of every stored event that has one (durability checks)."""
        with self._reading() as conn:
            return {row[0] for row in self._run(conn, "SELECT event_id FROM events WHERE event_id IS NOT NULL")}

    # -- items --------------------------------------------------------------------------------
    def add_items(self, rows: Sequence[tuple[str, str, str, str]], encoder: str, vectors: np.ndarray) -> list[int]:
        """Commit new items ``(item_id, title, text, categories)`` with their (n, d) float32 vectors;
        raises ``DuplicateKey`` (nothing written) if an id is already stored."""
        now = time.time()
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        with self._write() as conn:
            inserted = self._insert_each(conn, "INSERT INTO items (item_id, title, text, categories, encoder, "
                                               "embedding, created) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                                         [(item_id, title, text, categories, encoder, vector.tobytes(), now)
                                          for (item_id, title, text, categories), vector
                                          in zip(rows, vectors, strict=True)])
            seqs = [int(row[0]) for row in inserted]
            self._notify(conn, "items")
        return seqs

    def items(self, after_seq: int = 0) -> list[ItemRow]:
        """The posted items with ``seq > after_seq``, in the order they were added."""
        with self._reading() as conn:
            rows = self._run(conn, "SELECT seq, item_id, title, text, categories, encoder, embedding FROM items "
                                   "WHERE seq > ? ORDER BY seq", (after_seq,)).fetchall()
        return [ItemRow(int(s), i, t, x, c, e, np.frombuffer(bytes(b), dtype="<f4").astype(np.float32))
                for s, i, t, x, c, e, b in rows]

    def count_items(self) -> int:
        with self._reading(own=True) as conn:
            return int(self._run(conn, "SELECT COUNT(*) FROM items").fetchone()[0])

    # -- api keys -----------------------------------------------------------------------------
    def add_key(self, key_id: str, salt: bytes, digest: bytes, scope: str, name: str,
                expires: float | None = None) -> None:
        with self._write() as conn:
            self._run(conn, "INSERT INTO api_keys (key_id, salt, digest, scope, name, created, revoked, expires) "
                            "VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                      (key_id, salt, digest, scope, name, time.time(), expires))

    def get_key(self, key_id: str) -> tuple[bytes, bytes, str, float | None] | None:
        """(salt, digest, scope, expires) of a key not revoked (expired or not), or None; read on the
        key-lookup connection, not the writer's."""
        with self._key_reading() as conn:
            row = self._run(conn, "SELECT salt, digest, scope, expires FROM api_keys "
                                  "WHERE key_id = ? AND revoked IS NULL", (key_id,)).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]), str(row[2]),
                                         None if row[3] is None else float(row[3]))

    def list_keys(self) -> list[dict[str, object]]:
        with self._reading(own=True) as conn:
            rows = self._run(conn, "SELECT key_id, scope, name, created, revoked, expires FROM api_keys "
                                   "ORDER BY created").fetchall()
        return [{"key_id": k, "scope": s, "name": n, "created": c, "revoked": r, "expires": x}
                for k, s, n, c, r, x in rows]

    def revoke_key(self, key_id: str) -> bool:
        with self._write() as conn:
            cursor = self._run(conn, "UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL",
                               (time.time(), key_id))
            return cursor.rowcount == 1

    def count_keys(self) -> int:
        with self._reading(own=True) as conn:
            return int(self._run(conn, "SELECT COUNT(*) FROM api_keys WHERE revoked IS NULL").fetchone()[0])
