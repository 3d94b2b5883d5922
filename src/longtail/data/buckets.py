"""Popularity buckets of the protocol: head (top 20% of warm items), tail (other warm), cold."""

from __future__ import annotations

import numpy as np

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
