"""The service's store in PostgreSQL (``postgresql://...``): several service processes share it.

- Durable like the SQLite store: a write is acknowledged after ``COMMIT`` returns, which with the
  server's defaults (``fsync``, ``synchronous_commit=on``) is after its WAL record is flushed.
- Commit order = sequence order: every write transaction first takes one advisory lock, so the
  identity numbers of events and items are handed out and committed in the same order, and a
  follower that reads "everything after the last sequence number I applied" never skips a row
  that committed late. Writers queue on that lock (``benchmarks/store_load.py`` measures it).
- Followers: each write ends with ``pg_notify`` (delivered at commit); ``follow`` LISTENs on a
  connection of its own and calls back on each notification, and at least every ``poll_s``
  seconds in case a notification was lost to a reconnect.
- Connection faults become ``StoreUnavailable`` (503 with ``Retry-After``); the next write
  reconnects. Messages name the server (host, port, database), never the password.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from longtail.common.urls import scrub
from longtail.serve.store_api import Store
from longtail.serve.store_errors import DuplicateKey, StoreError, StoreUnavailable

CHANNEL = "longtail_store"
WRITE_LOCK = 7_301_906_118  # advisory lock id of longtail's writers (any fixed 64-bit number)
CONNECT_TIMEOUT_S = 5

# SQLSTATE (class or full code) -> (reason in words, seconds before a retry)
_FAULTS: dict[str, tuple[str, int]] = {
    "53100": ("the store is full (no space left on its server's disk)", 60),
    "53": ("the store's server is out of resources (memory or connections)", 10),
    "08": ("the store cannot be reached (its server is down or the connection was lost)", 5),
    "57": ("the store's server is restarting or shutting down", 5),
    "25006": ("the store cannot be written (it is read-only now)", 30),
    "40": ("the store is busy (a transaction had to be retried)", 2),
    "42501": ("the store cannot be written (permission denied)", 30),
}


def unavailable_pg(exc: psycopg.Error) -> StoreUnavailable:
    """The ``StoreUnavailable`` for a failed PostgreSQL call, by its SQLSTATE."""
    state = getattr(exc, "sqlstate", None) or ("08000" if isinstance(exc, psycopg.OperationalError) else "")
    reason, retry = _FAULTS.get(state) or _FAULTS.get(state[:2]) or (
        "the store failed (an unexpected database error)", 30)
    return StoreUnavailable(reason, retry)


def public_name(url: str) -> str:
    """``postgresql://user@host:port/db`` without the password or options, for messages."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(unparseable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', 'localhost')}{port}/{parts.get('dbname', '')}"


class PostgresStore(Store):
    """One PostgreSQL database. One writer connection per process under a lock (autocommit, each
    write an explicit transaction); long reads (replay) on a connection of their own."""

    dialect = "postgresql"
    _driver_error = psycopg.Error
    shared = True

    def __init__(self, url: str, *, exclusive: bool = False) -> None:  # noqa: ARG002 - shared by design
        self.url = url
        self.name = public_name(url)
        self._lock = threading.Lock()
        self._key_lock = threading.Lock()  # key lookups: their own connection and lock
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"store {self.name} cannot be opened ({unavailable_pg(exc)}: "
                             f"{scrub(said, url)})") from None  # libpq may quote what it could not parse
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                               application_name="longtail")

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _notify(self, conn: psycopg.Connection[Any], what: str) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, what))

    def _insert_each(self, conn: psycopg.Connection[Any], sql: str, rows: list[tuple[Any, ...]]) -> list[Any]:
        """One pipelined round trip for the batch (psycopg's ``executemany(returning=True)``)."""
        if not rows:
            return []
        out = []
        with conn.cursor() as cursor:
            cursor.executemany(self._sql(sql), rows, returning=True)
            while True:
                out.append(cursor.fetchone())
                if not cursor.nextset():
                    break
        return out

    def _writer(self) -> psycopg.Connection[Any]:
        """The writer connection, opened again after a fault closed it."""
        if self._closed:
            raise StoreUnavailable("the store is closed (the service is stopping)", 5)
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        with self._key_lock:
            self._close_key_reader()
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction behind the writers' advisory lock; committed on exit or rolled back."""
        with self._lock:
            try:
                conn = self._writer()
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                    yield conn
            except pg_errors.UniqueViolation as exc:
                raise DuplicateKey("a row with this key is already stored") from exc
            except psycopg.Error as exc:
                raise unavailable_pg(exc) from exc

    def _own(self) -> psycopg.Connection[Any]:
        return self._writer()

    def _fresh(self) -> psycopg.Connection[Any]:
        return self._connect()

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return unavailable_pg(exc)  # type: ignore[arg-type]  # only psycopg.Error reaches here

    # -- following other processes' writes ----------------------------------------------------
    def follow(self, callback: Callable[[], None], stop: threading.Event, *, poll_s: float = 5.0) -> None:
        """Call ``callback`` after each commit of any process to this store (LISTEN/NOTIFY) and at
        least every ``poll_s`` seconds, until ``stop`` is set. Connection faults: retried every
        second, with a callback after each reconnect (a notification may have been missed).
        ``callback`` handles its own errors (this loop only survives the connection's)."""
        while not stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    callback()  # whatever committed before LISTEN took effect
                    last = time.monotonic()
                    while not stop.is_set():
                        woke = any(True for _ in conn.notifies(timeout=0.5, stop_after=1))
                        if woke or time.monotonic() - last >= poll_s:
                            last = time.monotonic()
                            callback()
            except psycopg.Error:
                stop.wait(1.0)
