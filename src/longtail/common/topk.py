"""Top-k selection with the protocol's tie rule: equal scores rank by item index (= item_id order)."""

from __future__ import annotations

import numpy as np


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of ``scores`` (n, m), descending, ties broken by smaller column index.

    Items scored ``-inf`` are never returned: their slots hold index -1 and score -inf (a list is
    shorter only when fewer than ``k`` items can be ranked). Returns (indices int32, scores float32).
    O(n·m) with a partition; no sort of the whole row.
    """
    n, m = scores.shape
    k = min(k, m)
    if k == 0 or n == 0:
        return np.zeros((n, k), np.int32), np.zeros((n, k), np.float32)
    scores = np.where(np.isnan(scores), -np.inf, scores)
    kth = np.partition(scores, m - k, axis=1)[:, m - k][:, None]  # the k-th largest value
    above = scores > kth
    need = k - above.sum(axis=1, keepdims=True)
    equal = scores == kth
    take_equal = equal & (np.cumsum(equal, axis=1) <= need)  # smallest indices among the ties
    chosen = above | take_equal
    cols = np.nonzero(chosen)[1].reshape(n, k)
    vals = np.take_along_axis(scores, cols, axis=1)
    order = np.lexsort((cols, -vals), axis=1)
    cols = np.take_along_axis(cols, order, axis=1).astype(np.int32)
    vals = np.take_along_axis(vals, order, axis=1).astype(np.float32)
    cols[~np.isfinite(vals) & (vals < 0)] = -1
    return cols, vals
