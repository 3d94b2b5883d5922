"""Durable storage of the live service: posted catalogue items, interaction events and API keys.

``open_store(url)`` picks the backend by the URL: ``sqlite:///PATH`` (or a bare path: one file, one
serving process; ``store_sqlite``) or ``postgresql://...`` (one database shared by several serving
processes; ``store_pg``, needs ``psycopg``, in ``longtail[serve]``). Both have the same interface
(``store_api.Store``), the same versioned schema (``store_schema``) and the same durability: a write
is acknowledged only after it is committed.
"""

from __future__ import annotations

from pathlib import Path

from longtail.errors import ConfigError
from longtail.serve.store_api import ItemRow, NewEvent, Store, StoredEvents
from longtail.serve.store_errors import DuplicateKey, EventIdConflict, StoreError, StoreUnavailable, unavailable
from longtail.serve.store_sqlite import SqliteStore, store_path

__all__ = ["DuplicateKey", "EventIdConflict", "ItemRow", "NewEvent", "SqliteStore", "Store", "StoreError",
           "StoreUnavailable", "StoredEvents", "is_postgres", "open_store", "store_path", "unavailable"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str | Path) -> bool:
    return str(url).startswith(POSTGRES_SCHEMES)


def open_store(url: str | Path, *, exclusive: bool = False) -> Store:
    """The store at ``url``. ``exclusive`` (the service): a SQLite file is refused if another process
    serves it; a PostgreSQL store is meant to be shared, so it has no such lock."""
    if is_postgres(url):
        try:
            from longtail.serve.store_pg import PostgresStore
        except ImportError as exc:  # the [serve] extra brings psycopg
            raise ConfigError(f"a PostgreSQL store needs psycopg: pip install 'longtail[serve]' ({exc})") from None
        return PostgresStore(str(url), exclusive=exclusive)
    return SqliteStore(url, exclusive=exclusive)
