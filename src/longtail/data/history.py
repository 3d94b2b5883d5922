"""The query every model scores: a batch of user histories that keeps order and time.

In the spirit of LensKit's ``RecQuery`` / ``ItemList``: a model is asked "what next, after these
items, in this order?", never "what for row 17 of the matrix you were fitted on". ``evaluate``
builds the batch from a split, the service from its store, a library user from lists of item ids;
all three reach the models through the same type, so what is served is what is measured.

Rows are flattened like CSR: the events of row ``r`` are ``indptr[r]:indptr[r + 1]``, oldest first,
ties by item index (the protocol's order). Each (row, item) appears once: its earliest event — unless
the batch has ``repeats`` (``--keep-seen``, the paper-comparison mode): then every event stays, a
repeated item as a later step of the sequence. ``csr`` gives one entry per (row, item) either way, so
order-free models score a history with repeats exactly as its deduplicated version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from longtail.data.interactions import Interactions
from longtail.data.vocab import IdVocab
from longtail.errors import ConfigError


def first_events(users: np.ndarray, items: np.ndarray, times: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One event per (user, item), its earliest (the protocol's duplicate rule), sorted by
    (user, item). Returns int64 (users, items, times)."""
    users, items, times = (np.asarray(a, np.int64) for a in (users, items, times))
    keep = first_event_index(users, items, times)
    return users[keep], items[keep], times[keep]


def first_event_index(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Positions of ``first_events``' rows in the input (so per-event data, such as weights,
    can follow them), in (user, item) order. (k,) int64."""
    order = np.lexsort((times, items, users))
    u, i = np.asarray(users)[order], np.asarray(items)[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    return order[first]


@dataclass(frozen=True, eq=False)
class HistoryBatch:
    """Ordered histories of ``n`` users (see the module docstring).

    ``users`` holds each row's user index in the dataset or service vocabulary, or -1 for a user
    nobody indexed; models never read fitted per-user state through it (scores come from the
    history alone); it is there for bookkeeping and explanations.
    """

    items: np.ndarray  # (m,) int64 item indices, rows concatenated, oldest first
    times: np.ndarray  # (m,) int64 timestamps (or sequence positions)
    indptr: np.ndarray  # (n + 1,) int64
    n_items: int  # catalogue size the item indices refer to
    users: np.ndarray  # (n,) int64, -1 = unknown
    weights: np.ndarray | None = None  # (m,) float32 per-event weight (None: all 1)
    repeats: bool = False  # a row may hold an item more than once (separate events, in order)

    def __post_init__(self) -> None:
        if len(self.indptr) != len(self.users) + 1 or int(self.indptr[-1]) != len(self.items):
            raise ConfigError("HistoryBatch: indptr must have n + 1 entries ending at len(items)")
        if len(self.times) != len(self.items) or (self.weights is not None and len(self.weights) != len(self.items)):
            raise ConfigError("HistoryBatch: items, times and weights must have the same length")
        if len(self.items) and (int(self.items.min()) < 0 or int(self.items.max()) >= self.n_items):
            raise ConfigError(f"HistoryBatch: item indices must lie in [0, {self.n_items})")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_events(cls, rows: np.ndarray, items: np.ndarray, times: np.ndarray, n_rows: int, n_items: int,
                    *, users: np.ndarray | None = None, keep_repeats: bool = False,
                    weights: np.ndarray | None = None) -> HistoryBatch:
        """From parallel event arrays (``rows`` in [0, n_rows)); duplicates keep their earliest
        event (every event with ``keep_repeats``); each row ordered by (time, item). ``weights``
        (per event, None: all 1) follow their events."""
        r, i, t = (np.asarray(a, np.int64) for a in (rows, items, times))
        w = None if weights is None else np.asarray(weights, np.float32)
        if not keep_repeats:
            keep = first_event_index(r, i, t)
            r, i, t = r[keep], i[keep], t[keep]
            w = None if w is None else w[keep]
        order = np.lexsort((i, t, r))
        r, i, t = r[order], i[order], t[order]
        indptr = np.zeros(int(n_rows) + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=int(n_rows)), out=indptr[1:])
        users = np.full(int(n_rows), -1, np.int64) if users is None else np.asarray(users, np.int64)
        return cls(i, t, indptr, int(n_items), users, None if w is None else w[order], repeats=keep_repeats)

    @classmethod
    def from_interactions(cls, X: Interactions, users: np.ndarray | Sequence[int] | None = None, *,
                          keep_repeats: bool | None = None) -> HistoryBatch:
        """The histories in ``X`` of ``users`` (indices; all of X's users if None), in that order,
        with ``X.weights``; repeated items are kept when ``X.repeats`` (``keep_repeats`` overrides)."""
        users = np.arange(X.n_users, dtype=np.int64) if users is None else np.asarray(users, np.int64)
        row_of = np.full(X.n_users, -1, dtype=np.int64)
        row_of[users] = np.arange(len(users))
        rows = row_of[X.users]
        keep = rows >= 0
        return cls.from_events(rows[keep], X.items[keep], X.timestamps[keep], len(users), X.n_items,
                               users=users, keep_repeats=X.repeats if keep_repeats is None else keep_repeats,
                               weights=None if X.weights is None else X.weights[keep])

    @classmethod
    def from_lists(cls, histories: Sequence[Sequence[int]], n_items: int, *,
                   times: Sequence[Sequence[int]] | None = None) -> HistoryBatch:
        """From item-index lists, each oldest first (``times`` default: the list position)."""
        lengths = np.asarray([len(h) for h in histories], dtype=np.int64)
        items = np.concatenate([np.asarray(h, np.int64) for h in histories]) if len(histories) else np.zeros(0, np.int64)
        if times is None:
            stamps = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths]) if len(lengths) else items
        else:
            stamps = np.concatenate([np.asarray(t, np.int64) for t in times]) if len(times) else items
        rows = np.repeat(np.arange(len(lengths)), lengths)
        if len(items) and (items.min() < 0 or items.max() >= n_items):
            raise ConfigError(f"history item indices must lie in [0, {n_items})")
        return cls.from_events(rows, items, stamps, len(lengths), n_items)

    @classmethod
    def from_ids(cls, histories: Sequence[Sequence[str]], vocab: IdVocab, *,
                 times: Sequence[Sequence[int]] | None = None) -> HistoryBatch:
        """From lists of item ids (strings of the dataset's ``item_vocab``), each oldest first;
        an unknown id is a ``ConfigError`` naming it."""
        indices = []
        for history in histories:
            unknown = [item for item in history if item not in vocab]
            if unknown:
                raise ConfigError(f"unknown item_id {unknown[0]!r} in a history ({len(unknown)} unknown)")
            indices.append(vocab.index(list(history)).tolist() if len(history) else [])
        return cls.from_lists(indices, len(vocab), times=times)

    # -- views --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def rows(self) -> np.ndarray:
        """(m,) row of each event."""
        return np.repeat(np.arange(len(self)), self.lengths)

    @property
    def age(self) -> np.ndarray:
        """(m,) events after this one in its row (0 = the most recent)."""
        return np.repeat(self.indptr[1:], self.lengths) - 1 - np.arange(len(self.items))

    def row(self, r: int) -> np.ndarray:
        """Item indices of row ``r``, oldest first."""
        return self.items[self.indptr[r]:self.indptr[r + 1]]

    def __getitem__(self, rows: slice | np.ndarray | Sequence[int]) -> HistoryBatch:
        """The sub-batch of the given rows, in that order."""
        picked = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows, np.int64)
        lengths = self.lengths[picked]
        starts = self.indptr[picked]
        index = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        weights = None if self.weights is None else self.weights[index]
        return HistoryBatch(self.items[index], self.times[index], indptr, self.n_items, self.users[picked], weights,
                            self.repeats)

    def recent(self, max_events: int | None) -> HistoryBatch:
        """Only the ``max_events`` most recent events of each row (None: unchanged)."""
        if max_events is None:
            return self
        keep = self.age < int(max_events)
        lengths = np.minimum(self.lengths, int(max_events))
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        weights = None if self.weights is None else self.weights[keep]
        return HistoryBatch(self.items[keep], self.times[keep], indptr, self.n_items, self.users, weights,
                            self.repeats)

    def without(self, r: int, items: Sequence[int] | np.ndarray) -> HistoryBatch:
        """One row per item of ``items``: row ``r`` with every event of that item removed, the
        rest (order, times, weights) untouched — what "remove it from the history" means to a
        faithfulness check and to occlusion explanations."""
        start, stop = int(self.indptr[r]), int(self.indptr[r + 1])
        own = self.items[start:stop]
        keep = [np.flatnonzero(own != int(item)) + start for item in items]
        index = np.concatenate(keep) if keep else np.zeros(0, np.int64)
        indptr = np.concatenate([[0], np.cumsum([len(k) for k in keep])]).astype(np.int64)
        weights = None if self.weights is None else self.weights[index]
        return HistoryBatch(self.items[index], self.times[index], indptr, self.n_items,
                            np.full(len(keep), self.users[r], np.int64), weights, self.repeats)

    def with_catalogue(self, n_items: int) -> HistoryBatch:
        """The same histories restricted to items ``< n_items`` (a model fitted on a smaller
        catalogue than the service's live one sees only the items it knows)."""
        if n_items >= self.n_items and not (len(self.items) and self.items.max() >= n_items):
            return HistoryBatch(self.items, self.times, self.indptr, int(n_items), self.users, self.weights,
                                self.repeats)
        keep = self.items < n_items
        lengths = np.bincount(self.rows[keep], minlength=len(self))
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        weights = None if self.weights is None else self.weights[keep]
        return HistoryBatch(self.items[keep], self.times[keep], indptr, int(n_items), self.users, weights,
                            self.repeats)

    def csr(self, n_items: int | None = None, *, dtype: type = np.float32, counts: bool = False) -> sp.csr_matrix:
        """(n, n_items) matrix with each event's weight (1 when unweighted): order is lost here,
        so only order-free models (item-item, linear, walks) read it. With ``repeats`` it stays one
        entry per (row, item), its most recent event's weight (binary: what CF models are fitted
        on); ``counts`` sums the events instead (a repeated item weighs its number of events)."""
        n_items = self.n_items if n_items is None else int(n_items)
        data = np.ones(len(self.items), dtype) if self.weights is None else self.weights.astype(dtype)
        if self.repeats:
            rows, items = self.rows, self.items
            if not counts:  # events are oldest first: keep each (row, item)'s last
                key = rows * max(self.n_items, 1) + items
                _, last = np.unique(key[::-1], return_index=True)
                keep = len(key) - 1 - last
                rows, items, data = rows[keep], items[keep], data[keep]
            matrix = sp.csr_matrix((data, (rows, items)), shape=(len(self), n_items), dtype=dtype)
        else:
            matrix = sp.csr_matrix((data, self.items.astype(np.int32), self.indptr), shape=(len(self), n_items))
        matrix.sort_indices()
        return matrix


__all__ = ["HistoryBatch", "first_event_index", "first_events"]
