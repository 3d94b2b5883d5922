"""Ranking metrics as pure functions of top-k lists (formulas as in ``PROTOCOL.md``).

Accuracy metrics take a boolean hit matrix ``hits`` (n_users, K_max) — ``hits[u, r]`` is True when
the item at rank ``r + 1`` of user u's list is relevant — and ``n_relevant`` (n_users,). They return
one value per user; the mean over users is the reported figure.
"""

from __future__ import annotations

import numpy as np


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """``|hits in top k| / |relevant|``."""
    return hits[:, :k].sum(axis=1) / np.maximum(n_relevant, 1)


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """``|hits in top k| / k`` (k even when a list is shorter)."""
    return hits[:, :k].sum(axis=1) / k


def hit_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """1 if any of the top k is relevant."""
    return hits[:, :k].any(axis=1).astype(np.float64)


def mrr_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """``1 / rank`` of the first hit within k, else 0."""
    top = hits[:, :k]
    first = np.argmax(top, axis=1)
    return np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Binary gains, log2 discount: ``DCG = sum_r hit_r / log2(r + 1)``; the ideal DCG puts
    ``min(k, |relevant|)`` hits first."""
    discounts = _discounts(k)
    dcg = (hits[:, :k] * discounts[: hits[:, :k].shape[1]]).sum(axis=1)
    ideal_cum = np.concatenate([[0.0], np.cumsum(discounts)])
    idcg = ideal_cum[np.minimum(n_relevant, k)]
    return np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)


def accuracy_metrics(hits: np.ndarray, n_relevant: np.ndarray, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per-user recall, ndcg, mrr, hit and precision at every k in ``ks``."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(hits, n_relevant, k)
        out[f"ndcg@{k}"] = ndcg_at_k(hits, n_relevant, k)
        out[f"mrr@{k}"] = mrr_at_k(hits, k)
        out[f"hit@{k}"] = hit_at_k(hits, k)
        out[f"precision@{k}"] = precision_at_k(hits, k)
    return out


def coverage(lists: np.ndarray, n_items: int) -> float:
    """Share of catalogue items recommended at least once (``-1`` padding ignored)."""
    valid = lists[lists >= 0]
    return float(len(np.unique(valid)) / n_items)


def gini_index(lists: np.ndarray, n_items: int) -> float:
    """Gini of recommendation counts over *all* catalogue items (never recommended counts 0),
    sorted-ascending Lorenz form: ``sum_i (2i - n - 1) c_(i) / (n sum c)``."""
    counts = np.bincount(lists[lists >= 0], minlength=n_items).astype(np.float64)
    if counts.sum() == 0:
        return 0.0
    x = np.sort(counts)
    ranks = np.arange(1, n_items + 1)
    return float(np.sum((2 * ranks - n_items - 1) * x) / (n_items * x.sum()))


def aplt(lists: np.ndarray, long_tail: np.ndarray) -> np.ndarray:
    """Per user: share of the list's items in tail ∪ cold (``long_tail`` is a bool mask of items)."""
    valid = lists >= 0
    in_tail = long_tail[np.where(valid, lists, 0)] & valid
    return in_tail.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def novelty(lists: np.ndarray, item_counts: np.ndarray) -> np.ndarray:
    """Per user: mean ``-log2 p_i`` over the list, ``p_i = (c_i + 1) / (sum_j c_j + |catalogue|)``."""
    p = (item_counts + 1.0) / (item_counts.sum() + len(item_counts))
    info = -np.log2(p)
    valid = lists >= 0
    values = np.where(valid, info[np.where(valid, lists, 0)], 0.0)
    return values.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def intra_list_diversity(lists: np.ndarray, embeddings: np.ndarray, batch: int = 512) -> np.ndarray:
    """Per user: mean over unordered pairs of the list of ``1 - cos(e_i, e_j)`` (unit-norm ``e``)."""
    out = np.zeros(len(lists))
    for start in range(0, len(lists), batch):
        block = lists[start : start + batch]
        valid = block >= 0
        vectors = embeddings[np.where(valid, block, 0)] * valid[..., None]  # (b, K, d)
        sims = np.einsum("bkd,bld->bkl", vectors, vectors)  # (b, K, K)
        n = valid.sum(axis=1)
        pair_sum = (sims.sum(axis=(1, 2)) - np.einsum("bkk->b", sims)) / 2.0
        pairs = n * (n - 1) / 2.0
        out[start : start + batch] = np.where(pairs > 0, 1.0 - pair_sum / np.maximum(pairs, 1), 0.0)
    return out
