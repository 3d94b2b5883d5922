"""Users and their positives as the service sees them: the artifact's training positives plus the
events stored since. Users unknown to the artifact are appended (like ``IdVocab.extend``: existing
indices never move), so the model's user indices stay valid."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from longtail.data.interactions import Interactions


@dataclass(frozen=True)
class History:
    """One user's positives, oldest first: item indices, timestamps, and which came from events."""

    items: np.ndarray  # (m,) int64
    ts: np.ndarray  # (m,) int64
    from_event: np.ndarray  # (m,) bool
    weights: np.ndarray | None = None  # (m,) float32 (train positives' weights, events 1); None: all 1

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class Staged:
    """Events checked against the histories, not yet in them (``Histories.stage``)."""

    new_users: list[str]  # appended in this order: indices len(ids), len(ids) + 1, ...
    positives: list[tuple[int, int, int]]  # (user, item, ts) pairs new to the histories
    events: int


class Histories:
    """Append-only users and histories. Writers hold ``lock``; ``history()`` takes it briefly to
    copy one user's events, so a reader never sees a half-applied event."""

    def __init__(self, user_ids: list[str], train: Interactions) -> None:
        self.ids = list(user_ids)
        self.positions = {user_id: u for u, user_id in enumerate(self.ids)}
        self.n_model_users = len(self.ids)
        # one (first) timestamp per (user, item), rows sorted by item: CSR-like arrays
        order = np.lexsort((train.timestamps, train.items, train.users))
        u, i, t = train.users[order], train.items[order], train.timestamps[order]
        first = np.ones(len(u), dtype=bool)
        first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
        u, i, t = u[first], i[first], t[first]
        # the artifact's per-positive weights (sentiment), if any: live events weigh 1
        self._weights = None if train.weights is None else train.weights[order][first].astype(np.float32)
        self._indptr = np.zeros(len(self.ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(u, minlength=len(self.ids)), out=self._indptr[1:])
        self._items = i.astype(np.int64)
        self._ts = t.astype(np.int64)
        self._extra: dict[int, dict[int, int]] = {}  # user -> {item: first event timestamp}
        self.n_events_applied = 0
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, user_id: str) -> int | None:
        return self.positions.get(user_id)

    def ensure_user(self, user_id: str) -> int:
        """The user's index, appending a new user (caller holds ``lock``)."""
        u = self.positions.get(user_id)
        if u is None:
            u = len(self.ids)
            self.ids.append(user_id)
            self.positions[user_id] = u
        return u

    def stage(self, user_ids: list[str], items: list[int], ts: list[int]) -> Staged:
        """What these events would change, changing nothing (caller holds ``lock``): the state
        commits it only once the model took it, so a refused update leaves no trace here."""
        new_users: dict[str, int] = {}
        seen: set[tuple[int, int]] = set()
        positives: list[tuple[int, int, int]] = []
        for user_id, item, t in zip(user_ids, items, ts, strict=True):
            u = self.positions.get(user_id)
            if u is None:
                u = new_users.setdefault(user_id, len(self.ids) + len(new_users))
            if (u, item) in seen or item in self._extra.get(u, ()) or self._in_train(u, item):
                continue  # a repeated interaction is still one positive, as in the protocol
            seen.add((u, item))
            positives.append((u, item, int(t)))
        return Staged(list(new_users), positives, len(items))

    def commit(self, staged: Staged) -> None:
        """Record what ``stage`` computed (caller holds ``lock``, and nothing was added between)."""
        for user_id in staged.new_users:
            self.ensure_user(user_id)
        for u, item, t in staged.positives:
            self._extra.setdefault(u, {})[item] = t
        self.n_events_applied += staged.events

    def _in_train(self, u: int, item: int) -> bool:
        if u >= self.n_model_users:
            return False
        row = self._items[self._indptr[u]:self._indptr[u + 1]]
        j = int(np.searchsorted(row, item))
        return j < len(row) and int(row[j]) == item

    def positives(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Every positive, the artifact's then the events': (users, items, ts, weights or None;
        events weigh 1). A refit's training data; the caller holds ``lock``."""
        users = np.repeat(np.arange(self.n_model_users), np.diff(self._indptr))
        extra = [(u, i, t) for u, items in self._extra.items() for i, t in items.items()]
        rows = np.asarray(extra, np.int64).reshape(-1, 3)
        weights = None if self._weights is None else np.concatenate([self._weights, np.ones(len(rows), np.float32)])
        return (np.concatenate([users, rows[:, 0]]), np.concatenate([self._items, rows[:, 1]]),
                np.concatenate([self._ts, rows[:, 2]]), weights)

    def history(self, u: int | None) -> History:
        """Train positives then events, each by (timestamp, item): oldest first."""
        if u is None:
            empty = np.zeros(0, dtype=np.int64)
            return History(empty, empty, np.zeros(0, dtype=bool))
        with self.lock:
            extra = dict(self._extra.get(u, {}))
        weights = None
        if u < self.n_model_users:
            lo, hi = self._indptr[u], self._indptr[u + 1]
            items, ts = self._items[lo:hi], self._ts[lo:hi]
            weights = None if self._weights is None else self._weights[lo:hi]
        else:
            items = ts = np.zeros(0, dtype=np.int64)
        extra_items = np.fromiter(extra.keys(), dtype=np.int64, count=len(extra))
        extra_ts = np.fromiter(extra.values(), dtype=np.int64, count=len(extra))
        order_train = np.lexsort((items, ts))
        order_extra = np.lexsort((extra_items, extra_ts))
        return History(
            np.concatenate([items[order_train], extra_items[order_extra]]),
            np.concatenate([ts[order_train], extra_ts[order_extra]]),
            np.concatenate([np.zeros(len(items), bool), np.ones(len(extra), bool)]),
            None if weights is None else np.concatenate([weights[order_train], np.ones(len(extra), np.float32)]),
        )

    @staticmethod
    def model_rows(u: int, items: np.ndarray, n_model_items: int) -> sp.csr_matrix:
        """A (u + 1, n_model_items) CSR whose only non-empty row ``u`` holds ``items`` (the
        ``history=`` argument of ``Recommender.score``: row ``u`` is read, no other)."""
        cols = np.unique(items[items < n_model_items]).astype(np.int32)
        indptr = np.zeros(u + 2, dtype=np.int32)
        indptr[u + 1] = len(cols)
        return sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(u + 1, n_model_items))
