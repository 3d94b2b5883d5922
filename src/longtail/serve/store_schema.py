"""Versioned schema of the service's store, one ordered list of migrations per dialect.

A store records the version it is at (``meta.schema_version``); opening it applies the missing
migrations in order, in the same transaction as the version bump, so a crash mid-way leaves the old
version whole. A store newer than this longtail is refused. Plain SQL in the store's own driver
(sqlite3, psycopg) rather than Alembic: two dialects, a dozen statements, and the driver's error
codes stay the ones ``store_errors`` maps to reasons.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    why: str
    statements: tuple[str, ...]


META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"

_ITEM_INDEX = Migration(2, "events by item (recounting an item's events after a catalogue change)",
                        ("CREATE INDEX IF NOT EXISTS events_item ON events (item_id)",))


def _key_lifetimes(real: str) -> Migration:
    """Keys that expire, and the key that posted each event (audits; NULL for older events)."""
    return Migration(3, "API key expiry; the key id of each stored event", (
        f"ALTER TABLE api_keys ADD COLUMN expires {real}",
        "ALTER TABLE events ADD COLUMN key_id TEXT",
    ))

MIGRATIONS: dict[str, tuple[Migration, ...]] = {
    "sqlite": (
        Migration(1, "catalogue items, events, API keys", (
            """CREATE TABLE IF NOT EXISTS items (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
                text TEXT NOT NULL, categories TEXT NOT NULL, encoder TEXT NOT NULL, embedding BLOB NOT NULL,
                created REAL NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, item_id TEXT NOT NULL,
                ts INTEGER NOT NULL, event_id TEXT UNIQUE, received REAL NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS events_user ON events (user_id)",
            """CREATE TABLE IF NOT EXISTS api_keys (
                key_id TEXT PRIMARY KEY, salt BLOB NOT NULL, digest BLOB NOT NULL, scope TEXT NOT NULL,
                name TEXT NOT NULL, created REAL NOT NULL, revoked REAL)""",
        )),
        _ITEM_INDEX,
        _key_lifetimes("REAL"),
    ),
    "postgresql": (
        Migration(1, "catalogue items, events, API keys", (
            """CREATE TABLE IF NOT EXISTS items (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item_id TEXT NOT NULL UNIQUE,
                title TEXT NOT NULL, text TEXT NOT NULL, categories TEXT NOT NULL, encoder TEXT NOT NULL,
                embedding BYTEA NOT NULL, created DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS events (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id TEXT NOT NULL,
                item_id TEXT NOT NULL, ts BIGINT NOT NULL, event_id TEXT UNIQUE,
                received DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS events_user ON events (user_id)",
            """CREATE TABLE IF NOT EXISTS api_keys (
                key_id TEXT PRIMARY KEY, salt BYTEA NOT NULL, digest BYTEA NOT NULL, scope TEXT NOT NULL,
                name TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, revoked DOUBLE PRECISION)""",
        )),
        _ITEM_INDEX,
        _key_lifetimes("DOUBLE PRECISION"),
    ),
}

LATEST = max(m.version for m in MIGRATIONS["sqlite"])
assert LATEST == max(m.version for m in MIGRATIONS["postgresql"]), "both dialects reach the same version"


def pending(dialect: str, current: int) -> list[Migration]:
    """The migrations a store at ``current`` (0: empty) still needs, in order."""
    return [m for m in MIGRATIONS[dialect] if m.version > current]
