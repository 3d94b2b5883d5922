"""What can go wrong with the service's store, as errors that say why in words: the store cannot be
opened (start-up), a write or read failed for a reason that may pass (503 + ``Retry-After``), an
``event_id`` reused for another event (409). SQLite result codes map to reasons here, once."""

from __future__ import annotations

import sqlite3

from longtail.errors import LongtailError


class StoreError(LongtailError):
    """The store cannot be opened or is not a longtail store."""

    exit_code = 3


class StoreUnavailable(StoreError):
    """A read or write failed for a reason that may pass (disk full, I/O error, read-only, locked).
    The message says why in words, never SQL or paths; ``retry_after`` is a hint in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DuplicateKey(LongtailError):
    """A row whose unique key (an item id) is already stored: nothing of the transaction was."""


class EventIdConflict(LongtailError):
    """An ``event_id`` already stored (or repeated in the batch) with another payload."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event_id {event_id!r} was already used for another event")
        self.event_id = event_id


# primary SQLite result code -> (reason, seconds to wait before a retry)
_FAULTS: dict[int, tuple[str, int]] = {
    13: ("the store is full (no space left on its disk, or its size limit reached)", 60),  # FULL
    10: ("the store cannot be written (I/O error on its disk)", 30),  # IOERR
    8: ("the store cannot be written (it is read-only now)", 30),  # READONLY
    3: ("the store cannot be written (permission denied)", 30),  # PERM
    14: ("the store cannot be written (a file of it cannot be opened)", 30),  # CANTOPEN
    5: ("the store is busy (another process holds its write lock)", 2),  # BUSY
    6: ("the store is busy (a table is locked)", 2),  # LOCKED
    11: ("the store is damaged (its file is malformed)", 300),  # CORRUPT
    26: ("the store is damaged (not a database file)", 300),  # NOTADB
}


def unavailable(exc: sqlite3.Error) -> StoreUnavailable:
    """The ``StoreUnavailable`` for a failed SQLite call, by its result code (SQLITE_FULL, ...)."""
    code = getattr(exc, "sqlite_errorcode", None)
    reason, retry = _FAULTS.get((code or 0) & 0xFF, ("the store failed (an unexpected database error)", 30))
    return StoreUnavailable(reason, retry)
