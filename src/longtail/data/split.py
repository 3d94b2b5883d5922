"""The positives rule and the splits of ``PROTOCOL.md`` (per-user temporal, cold items, leave-one-out).

Everything works on index arrays sorted by (user, timestamp, item); because item indices follow
string order of ``item_id``, that is exactly the protocol's ``(timestamp, item_id)`` tie order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TRAIN, VALID, TEST = 0, 1, 2
PROTOCOLS = ("temporal", "cold-items", "leave-one-out")


@dataclass(frozen=True)
class Positives:
    """Positives sorted by (user, timestamp, item); deduplicated unless ``keep_repeats`` was asked."""

    users: np.ndarray  # int32
    items: np.ndarray  # int32
    timestamps: np.ndarray  # int64


def positives(
    users: np.ndarray,
    items: np.ndarray,
    timestamps: np.ndarray,
    ratings: np.ndarray,
    min_rating: float = 4.0,
    *,
    keep_repeats: bool = False,
) -> Positives:
    """Keep rows with an empty rating or ``rating >= min_rating``; a (user, item) pair counts once,
    at its first time (ties by item index), unless ``keep_repeats`` (``--keep-seen``: every positive
    row is a step of the user's sequence, as the published sequential tables count them)."""
    keep = np.isnan(ratings) | (ratings >= min_rating)
    u, i, t = users[keep], items[keep], timestamps[keep]
    order = _order_by_user_time_item(u, t, i)
    u, i, t = u[order], i[order], t[order]
    if keep_repeats:
        return Positives(u.astype(np.int32), i.astype(np.int32), t.astype(np.int64))
    pair = u.astype(np.int64) * (int(i.max(initial=0)) + 1) + i
    first = ~pd.Series(pair).duplicated(keep="first").to_numpy()  # hash-based: no second sort
    return Positives(u[first].astype(np.int32), i[first].astype(np.int32), t[first].astype(np.int64))


def _order_by_user_time_item(u: np.ndarray, t: np.ndarray, i: np.ndarray) -> np.ndarray:
    """``np.lexsort((i, t, u))``, as one radix-friendly argsort of a packed key when it fits."""
    if len(u) == 0:
        return np.zeros(0, dtype=np.int64)
    t0 = t - t.min()
    bits_i, bits_t = int(i.max()).bit_length(), int(t0.max()).bit_length()
    if int(u.max()).bit_length() + bits_t + bits_i > 62:
        return np.lexsort((i, t, u))
    key = (u.astype(np.int64) << (bits_t + bits_i)) | (t0.astype(np.int64) << bits_i) | i
    return np.argsort(key, kind="stable")


def temporal_parts(users: np.ndarray) -> np.ndarray:
    """Part (TRAIN/VALID/TEST) of each row of positives sorted by (user, timestamp, item).

    A user with n >= 3 positives gives the last ``max(1, n // 10)`` to test and the same number
    before those to valid; users with fewer than 3 positives stay wholly in train.
    """
    n_rows = len(users)
    if n_rows == 0:
        return np.zeros(0, dtype=np.int8)
    counts = np.bincount(users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n_rows) - starts[users]
    n = counts[users]
    k = np.maximum(1, n // 10)
    eligible = n >= 3
    parts = np.full(n_rows, TRAIN, dtype=np.int8)
    parts[eligible & (rank >= n - 2 * k)] = VALID
    parts[eligible & (rank >= n - k)] = TEST
    return parts


def leave_one_out_parts(users: np.ndarray) -> np.ndarray:
    """Part of each row of positives sorted by (user, timestamp, item) under ``leave-one-out``:
    a user with n >= 3 positives gives the last to test and the one before to valid; users with
    fewer than 3 stay wholly in train."""
    n_rows = len(users)
    if n_rows == 0:
        return np.zeros(0, dtype=np.int8)
    counts = np.bincount(users)
    ends = np.cumsum(counts)
    after = ends[users] - 1 - np.arange(n_rows)  # rows after this one in its user (0 = the last)
    eligible = counts[users] >= 3
    parts = np.full(n_rows, TRAIN, dtype=np.int8)
    parts[eligible & (after == 1)] = VALID
    parts[eligible & (after == 0)] = TEST
    return parts


def draw_cold_items(item_ids: np.ndarray, items_with_positive: np.ndarray, seed: int = 0) -> np.ndarray:
    """The cold-items draw: 10% of the string-sorted items that have a positive, with
    ``numpy.random.default_rng(seed).choice(..., replace=False)``. Returns item indices."""
    candidates = np.unique(items_with_positive)  # sorted indices == string-sorted ids
    sorted_ids = np.asarray(item_ids, dtype=object)[candidates]
    n = int(np.floor(0.1 * len(candidates)))
    drawn_ids = np.random.default_rng(seed).choice(sorted_ids, n, replace=False)
    position = {item_id: index for item_id, index in zip(sorted_ids, candidates)}
    return np.asarray([position[item_id] for item_id in drawn_ids], dtype=np.int32)


def cold_items_parts(pos: Positives, drawn: np.ndarray) -> np.ndarray:
    """Part of each positive under ``cold-items``: positives on drawn items are TEST (relevant)
    when their user keeps a history, else dropped (-1); the rest follow the temporal split, whose
    own test part is dropped (-1) — it is neither history nor relevant."""
    on_drawn = np.isin(pos.items, drawn)
    parts = np.full(len(pos.users), -1, dtype=np.int8)
    rest = np.flatnonzero(~on_drawn)
    rest_parts = temporal_parts(pos.users[rest])
    kept = rest_parts != TEST
    parts[rest[kept]] = rest_parts[kept]
    has_history = np.zeros(int(pos.users.max(initial=-1)) + 1, dtype=bool)
    has_history[pos.users[parts >= 0]] = True
    parts[on_drawn & has_history[pos.users]] = TEST
    return parts
