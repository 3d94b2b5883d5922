"""API keys: created once, shown once, stored only as a salted hash, checked in constant time.

A key reads ``lt_<key_id>_<secret>``: ``key_id`` (8 hex) finds the row, ``secret`` (32 random
bytes, url-safe base64) is verified against ``HMAC-SHA256(salt, secret)`` stored with a per-key
16-byte salt. A fast hash is enough here, unlike for passwords: a 256-bit random secret cannot be
guessed, so slowing each guess (scrypt, bcrypt) buys nothing and would cost every request
milliseconds; the hash only makes a leaked database useless as a set of keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time

from longtail.errors import ConfigError
from longtail.serve.store import Store

SCOPES = ("read", "write")
PREFIX = "lt_"
_KEY = re.compile(r"^lt_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("ascii"), hashlib.sha256).digest()


def create_key(store: Store, scope: str, name: str = "") -> str:
    """Store a new key of ``scope`` and return it in clear (the only time it exists in clear)."""
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    while True:
        key_id = secrets.token_hex(4)
        if store.get_key(key_id) is None:
            break
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    store.add_key(key_id, salt, _digest(salt, secret), scope, name)
    return f"{PREFIX}{key_id}_{secret}"


def allows(granted: str, needed: str) -> bool:
    """A write key may also read."""
    return granted == needed or (granted == "write" and needed == "read")


class KeyChecker:
    """Verifies presented keys against the store. A verified key is remembered (by an HMAC under a
    per-process pepper, never in clear) for ``ttl_s`` seconds, so a request does not wait on the
    store's writer lock; a revoked key therefore stops working within ``ttl_s``."""

    def __init__(self, store: Store, *, ttl_s: float = 10.0) -> None:
        self._store = store
        self._ttl = ttl_s
        self._pepper = secrets.token_bytes(16)
        self._memo: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def scope_of(self, presented: str | None) -> str | None:
        """The scope of a valid, unrevoked key; None for a missing, malformed or unknown one."""
        if not presented:
            return None
        match = _KEY.match(presented)
        if match is None:
            return None
        memo_key = _digest(self._pepper, presented)
        with self._lock:
            hit = self._memo.get(memo_key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        key_id, secret = match.groups()
        row = self._store.get_key(key_id)
        if row is None:
            return None
        salt, digest, scope = row
        if not hmac.compare_digest(_digest(salt, secret), digest):
            return None
        with self._lock:
            if len(self._memo) > 10_000:
                self._memo.clear()
            self._memo[memo_key] = (scope, time.monotonic() + self._ttl)
        return scope
