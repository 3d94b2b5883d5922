"""Occlusion explanations: which history items a score leans on, measured by taking each out.

A composite model's score is a nonlinear mix (parts standardised over the catalogue, a learned
gate), so a part's own weights need not say what moves the whole. Occlusion asks the model itself:
the evidence for a recommendation is the history items whose removal lowers its score the most,
and the weight is that drop, so an explanation is faithful by construction.

Cost: one scoring of the catalogue per candidate. Models make it cheap where they can
(``Recommender._scores_without``): semantic-attn computes its history x catalogue similarities
once for all candidates (``attention_without``) instead of once per candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from longtail.data.history import HistoryBatch
from longtail.models.explain import Evidence, top_evidence

COLUMN_BLOCK = 8_192  # catalogue columns per block: (history x block) float64 arrays stay small


def occlusion_evidence(base: np.ndarray, without: np.ndarray, items: Sequence[int], candidates: np.ndarray,
                       top: int = 3) -> list[tuple[Evidence, ...]]:
    """For each of ``items``: the ``top`` ``candidates`` whose removal lowers the score most.
    ``base`` (n_items,) is the full history's scores, ``without`` (len(candidates), n_items) the
    scores with each candidate removed; only positive drops count as evidence."""
    columns = np.asarray(items, np.int64)
    if len(candidates) == 0:
        return [() for _ in columns]
    drops = base[columns][None, :].astype(np.float64) - without[:, columns].astype(np.float64)
    return [top_evidence(candidates, drops[:, j], top) for j in range(len(columns))]


def shortlist(proposals: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` history items proposed most often (ties: proposed first), sorted: items that
    several parts or several recommendations point at are tested first."""
    proposals = np.asarray(proposals, np.int64)
    items, first, counts = np.unique(proposals, return_index=True, return_counts=True)
    return np.sort(items[np.lexsort((first, -counts))[:size]])


def closest_in_history(vectors: np.ndarray, history: np.ndarray, items: Sequence[int], n: int = 3) -> np.ndarray:
    """The ``n`` history items whose ``vectors`` are closest (dot product) to each of ``items``,
    concatenated: cheap occlusion candidates for models that score by similarity."""
    history = np.unique(np.asarray(history, np.int64))
    if len(history) == 0 or len(items) == 0:
        return np.zeros(0, np.int64)
    sim = vectors[np.asarray(items, np.int64)] @ vectors[history].T  # (k, m)
    top = np.argsort(-sim, axis=1, kind="stable")[:, :n]
    return history[top].ravel()


def attention_without(vectors: np.ndarray, window: HistoryBatch, log_weights: np.ndarray, older_boost: float,
                      temperature: float | None, cap: int | None, items: np.ndarray) -> np.ndarray:
    """semantic-attn's scores of one history with each of ``items`` removed, (len(items), n) float32.

    ``window``: the history's ``cap + 1`` most recent events (all of them when shorter), one row,
    no repeats; ``log_weights``: each window event's log weight (recency by age + own weight);
    ``older_boost``: how much an event's log recency grows when it becomes one step more recent
    (``ln 2 / half_life``, 0 without recency). Removing the event at position ``p`` makes every older
    event one step more recent and, when the history was capped, lets the oldest window event in:
    with ``e_j = exp(logit_j)`` and ``c = exp(older_boost)``, ``score = (c * sum_{j<p} e_j s_j +
    sum_{j>p} e_j s_j) / (c * sum_{j<p} e_j + sum_{j>p} e_j)``. The window is cut at the removed
    positions and summed per segment (float64), so the similarities and their exponentials are
    computed once for all removals, and no sum ever subtracts the removed event (no cancellation)."""
    m = len(window.items)
    capped = cap is not None and m > cap  # the window holds one event older than the history
    where = {int(item): j for j, item in enumerate(window.items)}
    position = np.asarray([where.get(int(i), -1) for i in items], np.int64)
    position[capped & (position == 0)] = -1  # the extra oldest event is not in the history
    cuts = np.unique(np.concatenate([[0], [1] if capped else [], position[position >= 0],
                                     position[position >= 0] + 1]).astype(np.int64))
    cuts = cuts[cuts < m]
    segment = {int(c): k for k, c in enumerate(cuts)}  # a removed event is a segment of its own
    first = segment[1] if capped else 0  # the unchanged history's first segment
    boost = float(np.exp(older_boost))
    out = np.zeros((len(items), len(vectors)), dtype=np.float32)
    history_vectors = vectors[window.items]
    for lo in range(0, len(vectors), COLUMN_BLOCK):
        sim = history_vectors @ vectors[lo: lo + COLUMN_BLOCK].T  # (m, b) float32
        logits = log_weights.astype(np.float32)[:, None] + (sim / np.float32(temperature) if temperature
                                                             else np.zeros_like(sim))
        weight = np.exp(logits - logits.max(axis=0, keepdims=True))
        sums = [np.add.reduceat(x, cuts, axis=0, dtype=np.float64) for x in (weight * sim, weight)]  # (S, b)
        zero = np.zeros((1, sums[0].shape[1]))
        before = [np.concatenate([zero, np.cumsum(x, axis=0)]) for x in sums]  # k: segments < k
        after = [np.concatenate([np.cumsum(x[::-1], axis=0)[::-1], zero]) for x in sums]  # k: segments >= k
        for c, p in enumerate(position):
            if p < 0:  # not in the (capped) history: nothing changes
                num, den = after[0][first], after[1][first]
            else:
                k = segment[int(p)]
                num = boost * before[0][k] + after[0][k + 1]
                den = boost * before[1][k] + after[1][k + 1]
            out[c, lo: lo + COLUMN_BLOCK] = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return out
