"""The service's store in one SQLite file (the default: nothing to run beside the service).

WAL mode with ``synchronous=FULL``: a write is on disk (WAL fsync'd) when ``commit`` returns, so a
request is answered 2xx only after its data would survive a ``kill -9`` or a power cut. WAL lets
readers (replay, ``keys list``) run while the service writes. Queries and schema migrations are
``store_api``'s and ``store_schema``'s.

One writer per file: the service holds an OS lock on ``<db>.lock`` (``exclusive=True``), so a second
server refuses to start instead of splitting the live state; ``longtail keys`` opens the file without
it (several servers share one store through PostgreSQL, ``store_pg``). A store that cannot be written
is refused at open (a real commit happens there); a write that fails later raises
``StoreUnavailable`` with a reason in words: the service answers 503, acknowledges nothing.

A new store is owner-only (0o600, whatever the umask): the file is created here before SQLite
opens it, and SQLite gives its ``-wal`` and ``-shm`` the database file's mode; the lock file too.
It holds the API keys' hashes and every user's events.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from longtail.common.files import open_new
from longtail.common.urls import redact_url
from longtail.errors import ConfigError
from longtail.serve.store_api import Store
from longtail.serve.store_errors import DuplicateKey, StoreError, StoreUnavailable, unavailable


def store_path(url: str | Path) -> Path:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` (SQLAlchemy's form) or a bare path."""
    text = str(url)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(f"store {redact_url(url)!r}: only sqlite:///PATH and postgresql://... are supported "
                          f"(got scheme {scheme!r})")
    if not text or text == ":memory:":
        raise ConfigError(f"store {redact_url(url)!r}: give a file path (an in-memory store is not durable)")
    return Path(text).expanduser()


FILE_MODE = 0o600  # owner-only: the store holds API key hashes and every user's events


class SqliteStore(Store):
    """One SQLite file. Writes go through one connection under a lock (SQLite serialises writers
    anyway), each in one ``BEGIN IMMEDIATE`` transaction; ``reader()`` opens a separate connection
    for long reads such as replay. ``exclusive``: also hold ``<db>.lock`` until ``close()`` (the
    service: one writer per file)."""

    dialect = "sqlite"
    _driver_error = sqlite3.Error

    def __init__(self, url: str | Path, *, exclusive: bool = False) -> None:
        self.path = store_path(url)
        self.name = str(self.path)
        self._lock = threading.Lock()
        self._key_lock = threading.Lock()  # key lookups: their own connection and lock
        self._lock_fd: int | None = None
        self._conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store {self.path}: cannot create its directory ({exc.strerror or exc})") from None
        try:
            with contextlib.suppress(FileExistsError):  # a new file owner-only: SQLite's -wal, -shm follow its mode
                os.close(open_new(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        except OSError as exc:
            raise StoreError(f"store {self.path} cannot be opened ({exc.strerror or exc}); check that it "
                             "and its directory are writable") from None
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
            fd = open_new(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
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

    def close(self) -> None:
        with self._key_lock:
            self._close_key_reader()
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
                if isinstance(exc, sqlite3.IntegrityError):
                    raise DuplicateKey("a row with this key is already stored") from exc
                if isinstance(exc, sqlite3.Error):
                    raise unavailable(exc) from exc
                raise

    def _own(self) -> sqlite3.Connection:
        return self.conn

    def _fresh(self) -> sqlite3.Connection:
        return self.reader()

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return unavailable(exc)  # type: ignore[arg-type]  # only sqlite3.Error reaches here
