"""API keys: created once, shown once, stored only as a salted hash, checked in constant time.

A key reads ``lt_<key_id>_<secret>``: ``key_id`` (8 hex) finds the row, ``secret`` (32 random
bytes, url-safe base64) is verified against ``HMAC-SHA256(salt, secret)`` stored with a per-key
16-byte salt. A fast hash is enough here, unlike for passwords: a 256-bit random secret cannot be
guessed, so slowing each guess (scrypt, bcrypt) buys nothing and would cost every request
milliseconds; the hash only makes a leaked database useless as a set of keys.

Scopes (what a key may do; ``GRANTS`` is the one place that says it):

- ``read``: recommendations and items, without anything that tells whether a user exists or what
  they did (``known_user``, ``history_size``, ``because`` and the history titles in explanations
  are left out); ``/metrics``, ``/docs`` and the OpenAPI schema. Every valid key may read.
- ``profile``: read, plus histories and profiles (``/users/{id}/profile``) and the private fields
  of ``/recommend``: whoever holds it sees what users did.
- ``write``: read, plus posting events and items. It does NOT imply ``profile``: a client that
  feeds events need not be able to read them back (a leaked ingestion key leaks no history).
- ``admin``: everything, including ``/admin/*`` (reload, and later refit, keys, deletion).

Keys stored before these four scopes existed carry ``read`` or ``write`` and keep those meanings.
A key may carry an expiry (``expires``, epoch seconds): once past it, the key is refused with 401.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from longtail.errors import ConfigError
from longtail.serve.store import Store

SCOPES = ("read", "profile", "write", "admin")
GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "profile": frozenset({"read", "profile"}),
    "write": frozenset({"read", "write"}),
    "admin": frozenset(SCOPES),
}
PREFIX = "lt_"
_KEY = re.compile(r"^lt_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
_SPAN = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MISSING, INVALID, EXPIRED = ("missing X-API-Key header", "invalid or revoked API key", "expired API key")


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("ascii"), hashlib.sha256).digest()


def allows(granted: str, needed: str) -> bool:
    """Whether a key of scope ``granted`` may do what needs ``needed`` (``GRANTS``)."""
    return needed in GRANTS.get(granted, frozenset())


def parse_expiry(text: str, now: float | None = None) -> float:
    """``30d``, ``12h``, ``90m``, ``2w`` from ``now``, or an ISO date / date-time (UTC unless it says
    otherwise) -> epoch seconds; refused when not in the future."""
    now = time.time() if now is None else now
    span = _SPAN.match(text.strip().lower())
    if span:
        when = now + int(span.group(1)) * _UNIT_S[span.group(2)]
    else:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ConfigError(f"--expires {text!r}: give a span (30d, 12h, 90m, 2w) or an ISO date "
                              "(2027-01-31 or 2027-01-31T12:00)") from None
        when = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    if when <= now:
        raise ConfigError(f"--expires {text!r} is not in the future")
    return when


def create_key(store: Store, scope: str, name: str = "", *, expires: float | None = None) -> str:
    """Store a new key of ``scope`` (valid until ``expires``, epoch seconds; None: until revoked)
    and return it in clear (the only time it exists in clear)."""
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    while True:
        key_id = secrets.token_hex(4)
        if store.get_key(key_id) is None:
            break
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    store.add_key(key_id, salt, _digest(salt, secret), scope, name, expires)
    return f"{PREFIX}{key_id}_{secret}"


@dataclass(frozen=True)
class Verdict:
    """What a presented key is worth: its id and scope when valid; else why not, in words."""

    key_id: str | None
    scope: str | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.scope is not None


class KeyChecker:
    """Verifies presented keys against the store, reading the store as little as possible: a flood of
    bad keys must not cost a store read each (nor slow the writes).

    Remembered, by an HMAC under a per-process pepper (never the key in clear): a valid key for
    ``ttl_s`` (so a revoked key stops working within ``ttl_s``; an expiring one at its expiry); a
    refused key, and a key_id with no live row (whatever secret comes with it), until ``miss_ttl_s``
    pass without it being presented (a refusal cannot turn valid: a wrong secret stays wrong, a
    revoked or expired key stays so, and key ids are random). Each table holds at most
    ``max_entries``. A well-formed key with a fresh random key_id still costs one read; reads are
    serialised and use the store's key-lookup connection, which never waits on the writer.
    ``store_reads`` counts them, ``refused_reads`` those that ended in a refusal (what a flood of
    bad keys costs)."""

    def __init__(self, store: Store, *, ttl_s: float = 10.0, miss_ttl_s: float = 5.0,
                 max_entries: int = 10_000) -> None:
        self._store = store
        self._ttl = ttl_s
        self._miss_ttl = miss_ttl_s
        self._max = max_entries
        self._pepper = secrets.token_bytes(16)
        self._known: dict[bytes, tuple[Verdict, float]] = {}  # presented key's HMAC -> verdict, until
        self._absent: dict[bytes, tuple[Verdict, float]] = {}  # key_id without a live row -> refusal, until
        self._lock = threading.Lock()  # guards the tables and counters
        self._lookup = threading.Lock()  # one store read at a time: the same bad key is read once
        self.store_reads = 0
        self.refused_reads = 0

    def cached(self, presented: str | None) -> Verdict | None:
        """The verdict without touching the store, or None when only the store can tell."""
        if not presented:
            return Verdict(None, None, MISSING)
        match = _KEY.match(presented)
        if match is None:
            return Verdict(None, None, INVALID)
        with self._lock:
            return (self._recall(self._known, _digest(self._pepper, presented))
                    or self._recall(self._absent, match.group(1).encode("ascii")))

    def check(self, presented: str | None) -> Verdict:
        """The verdict on ``presented``, reading the store when the memory cannot tell."""
        verdict = self.cached(presented)
        if verdict is not None:
            return verdict
        match = _KEY.match(presented or "")
        assert match is not None  # cached() answers for missing and malformed keys
        key_id, secret = match.groups()
        with self._lookup:
            verdict = self.cached(presented)  # another thread may just have read it
            if verdict is not None:
                return verdict
            row = self._store.get_key(key_id)
        now, wall = time.monotonic(), time.time()
        if row is None:
            verdict, until = Verdict(key_id, None, INVALID), now + self._miss_ttl
            table, memo = self._absent, key_id.encode("ascii")
        else:
            salt, digest, scope, expires = row
            table, memo = self._known, _digest(self._pepper, str(presented))
            if not hmac.compare_digest(_digest(salt, secret), digest):
                verdict, until = Verdict(key_id, None, INVALID), now + self._miss_ttl
            elif expires is not None and expires <= wall:
                verdict, until = Verdict(key_id, None, EXPIRED), now + self._miss_ttl
            else:
                left = self._ttl if expires is None else min(self._ttl, expires - wall)
                verdict, until = Verdict(key_id, scope), now + left
        with self._lock:
            self.store_reads += 1
            self.refused_reads += not verdict.ok
            self._remember(table, memo, verdict, until)
        return verdict

    def _recall(self, table: dict[bytes, tuple[Verdict, float]], memo: bytes) -> Verdict | None:
        """The remembered verdict, if still good; a refusal's memory is renewed by each use (the
        caller holds ``_lock``)."""
        hit = table.get(memo)
        now = time.monotonic()
        if hit is None or hit[1] <= now:
            return None
        if not hit[0].ok:
            table[memo] = (hit[0], now + self._miss_ttl)
        return hit[0]

    def _remember(self, table: dict[bytes, tuple[Verdict, float]], memo: bytes, verdict: Verdict,
                  until: float) -> None:
        """Remember ``verdict`` until ``until``, first forgetting the lapsed entries (all, if none
        lapsed) when the table is full: a flood of distinct bad keys must not grow the memory
        without bound (the caller holds ``_lock``)."""
        if len(table) >= self._max:
            now = time.monotonic()
            for old in [k for k, (_, good_until) in table.items() if good_until <= now]:
                del table[old]
            if len(table) >= self._max:
                table.clear()
        table[memo] = (verdict, until)

    def scope_of(self, presented: str | None) -> str | None:
        """The scope of a valid, unrevoked, unexpired key; None for any other."""
        return self.check(presented).scope
