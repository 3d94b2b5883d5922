"""Answers from the live state, all through ``longtail.pipeline.RankingPipeline``: the service
ranks exactly as ``longtail evaluate`` measures. What is live: the user's history (training
positives + posted events, ordered by time), the catalogue (posted items join it with their text
vectors), the model (updated with every posted event and item through the library's
``partial_fit``, see ``serve.state``; items it leaves unscored get the artifact's text fallback),
and item popularity (lists for users without history).

Re-ranking (``rerank``/``diversity``) runs in the same pipeline over the best ``RERANK_POOL``
candidates; item groups for calibration/xQuAD are the artifact's head/tail buckets, with posted
items in the long tail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longtail.data.history import HistoryBatch
from longtail.models.explain import Explanation
from longtail.pipeline import Ranked, RankingPipeline, describe
from longtail.rerank import make_reranker
from longtail.serve.state import LiveState

RERANK_POOL = 100  # candidates a re-ranker chooses from
DEFAULT_DIVERSITY = 0.3  # re-ranking asked for without a diversity
SOURCES = {Ranked.MODEL: "model", Ranked.TEXT: "text", Ranked.POPULAR: "popular"}


@dataclass(frozen=True)
class Pick:
    """One recommended item: index, score, where it came from, and why."""

    item: int
    score: float
    source: str  # "model" | "text" | "popular"
    explanation: Explanation | None  # None: not asked for


@dataclass(frozen=True)
class Rerank:
    """A re-ranking request: a ``longtail.rerank`` method name and its diversity knob."""

    method: str
    diversity: float


def rerank_of(method: str | None, diversity: float | None) -> Rerank | None:
    """What the request asks: ``method`` None uses MMR when a ``diversity`` is given; ``'none'``
    or nothing means the model's order; a diversity of 0 changes nothing."""
    if method == "none" or (method is None and diversity is None):
        return None
    rerank = Rerank(method or "mmr", DEFAULT_DIVERSITY if diversity is None else float(diversity))
    return rerank if rerank.diversity > 0 else None


def query_of(state: LiveState, user_id: str) -> HistoryBatch:
    """The user's live history as the one-row query every model scores (empty if unknown)."""
    u = state.histories.index_of(user_id)
    history = state.histories.history(u)
    n = len(state.catalogue)
    return HistoryBatch.from_events(np.zeros(len(history), np.int64), history.items, history.ts, 1, n,
                                    users=np.asarray([-1 if u is None else u]), weights=history.weights)


def queries_of(state: LiveState, user_ids: Sequence[str]) -> HistoryBatch:
    """The live histories of many users as one batch (row r = ``user_ids[r]``; unknown: empty),
    each as ``query_of`` builds it for one: what a batch job ranks. Weights are kept when any
    history has them (the others weigh 1, as live events do)."""
    index = [state.histories.index_of(user_id) for user_id in user_ids]
    histories = [state.histories.history(u) for u in index]
    lengths = [len(h) for h in histories]
    weighted = any(h.weights is not None for h in histories)
    empty = np.zeros(0, np.int64)

    def joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else empty.astype(dtype)

    weights = [np.ones(len(h), np.float32) if h.weights is None else h.weights for h in histories]
    return HistoryBatch.from_events(np.repeat(np.arange(len(user_ids)), lengths),
                                    joined([h.items for h in histories], np.int64),
                                    joined([h.ts for h in histories], np.int64), len(user_ids),
                                    len(state.catalogue),
                                    users=np.asarray([-1 if u is None else u for u in index], np.int64),
                                    weights=joined(weights, np.float32) if weighted else None)


def pipeline_of(state: LiveState, rerank: Rerank | None) -> RankingPipeline:
    """The artifact's pipeline over the live catalogue (vectors and popularity as of now)."""
    vectors, n = state.catalogue.snapshot()
    options = {}
    if rerank is not None:
        groups = np.ones(n, dtype=np.int64)  # posted items: long tail
        groups[: state.catalogue.n_model] = state.buckets
        options = {"reranker": make_reranker(rerank.method, diversity=rerank.diversity),
                   "n_candidates": RERANK_POOL, "rerank_vectors": vectors, "buckets": groups}
    return RankingPipeline(state.model, item_vectors=vectors, fallback=state.fallback,
                           popularity=state.catalogue.popularity[:n].astype(np.float32),
                           row_cache=state.row_cache, **options)


def recommend(state: LiveState, user_id: str, k: int, *, exclude_seen: bool = True,
              rerank: Rerank | None = None, explain: bool = True) -> tuple[HistoryBatch, list[Pick]]:
    """Top-``k`` for ``user_id`` from its live history, with the pipeline's explanations (None
    without ``explain``)."""
    query = query_of(state, user_id)
    pipeline = pipeline_of(state, rerank)
    ranked = pipeline.recommend(query, k, exclude_seen=exclude_seen)
    keep = ranked.items[0] >= 0
    explanations = pipeline.explain(query, ranked)[0] if explain else [None] * int(keep.sum())
    return query, [Pick(int(i), float(s), SOURCES[int(src)], e) for i, s, src, e in
                   zip(ranked.items[0][keep], ranked.scores[0][keep], ranked.sources[0][keep], explanations,
                       strict=True)]


def explain(state: LiveState, pick: Pick) -> str | None:
    """One short sentence saying why an item is in the list (None when not asked for)."""
    if pick.explanation is None:
        return None
    return describe(pick.explanation, state.catalogue.titles, state.bundle.categories)


def similar(state: LiveState, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` items whose vectors are closest to ``item``'s (itself excluded)."""
    vectors, n = state.catalogue.snapshot()
    ids, scores = state.catalogue.search_all(vectors[item][None, :], k, [np.asarray([item])])
    keep = (ids[0] >= 0) & (ids[0] < n)
    return ids[0][keep], scores[0][keep]
