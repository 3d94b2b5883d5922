"""Popularity buckets of the protocol: head (top 20% of warm items), tail (other warm), cold."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

HEAD, TAIL, COLD = 0, 1, 2
BUCKET_NAMES = {HEAD: "head", TAIL: "tail", COLD: "cold"}


def popularity_buckets(counts: np.ndarray, head_share: float = 0.2) -> np.ndarray:
    """Bucket of each item from its train+valid positive count.

    Head = ``floor(head_share * n_warm)`` warm items with the most positives; ties go to the
    smaller item index, which is the smaller ``item_id`` as a string (vocabularies are sorted).
    Returns (n_items,) int8 with values HEAD, TAIL, COLD.
    """
    counts = np.asarray(counts)
    buckets = np.full(len(counts), COLD, dtype=np.int8)
    warm = np.flatnonzero(counts > 0)
    buckets[warm] = TAIL
    n_head = int(np.floor(head_share * len(warm)))
    order = warm[np.lexsort((warm, -counts[warm]))]
    buckets[order[:n_head]] = HEAD
    return buckets


def bucket_mix(histories: sp.csr_matrix, buckets: np.ndarray) -> np.ndarray:
    """(n_users, 3) share of each user's history in HEAD, TAIL, COLD (rows of zeros when empty)."""
    histories = sp.csr_matrix(histories)
    onehot = sp.csr_matrix((np.ones(len(buckets)), (np.arange(len(buckets)), np.asarray(buckets, np.int64))),
                           shape=(len(buckets), 3))
    counts = np.asarray((histories[:, : len(buckets)] != 0).astype(np.float64) @ onehot.toarray())
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


PICKS = ("head-heavy", "tail-leaning")


def pick_user(histories: sp.csr_matrix, buckets: np.ndarray, rule: str) -> int:
    """The user a rule picks, for demos and docs (never an id chosen by hand): among users whose
    history is at least the median length (lists worth reading), ``head-heavy`` = the largest
    head share, ``tail-leaning`` = the largest tail + cold share; ties: the longer history, then
    the smaller index."""
    if rule not in PICKS:
        raise ValueError(f"rule must be one of {PICKS}, got {rule!r}")
    histories = sp.csr_matrix(histories)
    lengths = np.diff(histories.indptr)
    eligible = np.flatnonzero((lengths >= np.median(lengths[lengths > 0])) & (lengths > 0))
    mix = bucket_mix(histories[eligible], buckets)
    share = mix[:, HEAD] if rule == "head-heavy" else mix[:, TAIL] + mix[:, COLD]
    order = np.lexsort((eligible, -lengths[eligible], -share))
    return int(eligible[order[0]])
