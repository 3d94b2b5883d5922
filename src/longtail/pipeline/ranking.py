"""``RankingPipeline``: the one way a list is made, for ``longtail evaluate`` and for the service.

1. the model scores each ordered history over the catalogue it was fitted on;
2. the catalogue may be larger (items posted to the service since): those columns start
   ``UNSCORED``; a history without any event gets the ``popularity`` scores instead (when given);
3. the text fallback (``fallback.TextFallback``) scores what the model could not;
4. the history's own items (``exclude_seen``) and items outside ``candidates`` are removed;
5. top-``k`` (ties by item index), or top-``n_candidates`` re-ranked to ``k``;
6. on request, explanations: the model's own (``Recommender.explain``) for the items it scored,
   the fallback's for the items it scored, ``popular`` for the popularity list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from longtail.common.topk import topk
from longtail.data.history import HistoryBatch
from longtail.errors import ConfigError
from longtail.models.base import UNSCORED, Recommender
from longtail.models.explain import Explanation
from longtail.pipeline.fallback import RowCache, TextFallback
from longtail.rerank.base import Reranker, group_profile, item_groups

DEFAULT_CANDIDATES = 200  # a re-ranker's pool: the best this many items of the model (+ fallback)


@dataclass(frozen=True)
class Ranked:
    """Lists of a batch: items (n, k) int32 (-1 = empty slot), scores (n, k) float32, and where
    each item came from (0 model, 1 text fallback, 2 popularity)."""

    items: np.ndarray
    scores: np.ndarray
    sources: np.ndarray

    MODEL, TEXT, POPULAR = 0, 1, 2


class RankingPipeline:
    """A fitted model and what ranks around it (see the module docstring).

    Parameters
    ----------
    model : a fitted ``Recommender``.
    item_vectors : (N, d) unit text vectors of the whole catalogue (N >= the model's items), for the
        fallback; None switches the fallback off.
    fallback : the text fallback's settings (None: off).
    popularity : (N,) scores for histories without any event (None: the model's own).
    reranker, n_candidates, rerank_vectors, buckets : optional re-ranking of the top
        ``n_candidates``; MMR / DPP read ``rerank_vectors``, calibration / xQuAD the ``buckets``
        (head / tail / cold per item of the split being ranked).
    row_cache : keeps the fallback's gathered item vectors between calls (a service's state
        passes one; see ``fallback.RowCache``).
    """

    def __init__(self, model: Recommender, *, item_vectors: np.ndarray | None = None,
                 fallback: TextFallback | None = None, popularity: np.ndarray | None = None,
                 reranker: Reranker | None = None, n_candidates: int = DEFAULT_CANDIDATES,
                 rerank_vectors: np.ndarray | None = None, buckets: np.ndarray | None = None,
                 row_cache: RowCache | None = None) -> None:
        model._check_fitted()
        self.model = model
        self.n_items = model.n_items_ if item_vectors is None else len(item_vectors)
        if self.n_items < model.n_items_:
            raise ConfigError(f"the catalogue has {self.n_items} items, fewer than the model's {model.n_items_}")
        self.item_vectors = item_vectors
        self.fallback = fallback if item_vectors is not None else None
        self.popularity = popularity
        if reranker is not None:
            reranker.check_params()
            if n_candidates < 1:
                raise ConfigError(f"n_candidates must be >= 1, got {n_candidates}")
            if "embeddings" in reranker.needs and rerank_vectors is None:
                raise ConfigError(f"re-ranker {reranker.name} needs item embeddings (see longtail.text)")
            if reranker.needs & {"groups", "profile"} and buckets is None:
                raise ConfigError(f"re-ranker {reranker.name} needs the items' popularity buckets")
        self.reranker = reranker
        self.n_candidates = int(n_candidates)
        self.rerank_vectors = rerank_vectors
        self.buckets = buckets
        self.row_cache = row_cache

    @property
    def name(self) -> str:
        return self.model.name if self.reranker is None else f"{self.model.name}+{self.reranker.name}"

    def scores(self, queries: HistoryBatch, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Steps 1-3: (n, N) float32 scores and sources, before exclusion."""
        if queries.n_items != self.n_items:
            raise ConfigError(f"the histories index {queries.n_items} items, the pipeline {self.n_items}")
        n_model = self.model.n_items_
        scores = np.full((len(queries), self.n_items), UNSCORED, dtype=np.float32)
        scores[:, :n_model] = self.model.score(queries.with_catalogue(n_model))
        sources = np.zeros(scores.shape, dtype=np.int8)
        empty = queries.lengths == 0
        if self.popularity is not None and empty.any():
            scores[empty] = np.asarray(self.popularity, np.float32)[None, :]
            sources[empty] = Ranked.POPULAR
        if self.fallback is not None:
            filled = self.fallback.apply(scores, queries, self.item_vectors, k, cosine=self.model.cosine_scores,
                                         rows=self.row_cache)
            sources[filled] = Ranked.TEXT
        return scores, sources

    def recommend(self, queries: HistoryBatch, k: int = 20, *, exclude_seen: bool = True,
                  candidates: np.ndarray | None = None) -> Ranked:
        """Steps 1-5 for every history of ``queries``."""
        if self.reranker is None:
            return self.candidates(queries, k, k, exclude_seen=exclude_seen, candidates=candidates)
        pool = self.candidates(queries, max(self.n_candidates, k), k, exclude_seen=exclude_seen,
                               candidates=candidates)
        return self.rerank(queries, pool, k)

    def candidates(self, queries: HistoryBatch, n: int, k: int, *, exclude_seen: bool = True,
                   candidates: np.ndarray | None = None) -> Ranked:
        """Steps 1-5 without re-ranking: the best ``n`` items (the fallback maps onto the user's
        top-``k`` range, so ``k`` is the final list length)."""
        scores, sources = self.scores(queries, k)
        if exclude_seen:
            scores[queries.rows, queries.items] = -np.inf
        if candidates is not None:
            keep = np.zeros(self.n_items, dtype=bool)
            keep[np.asarray(candidates)] = True
            scores[:, ~keep] = -np.inf
        items, values = topk(scores, n)
        return Ranked(items, values, self._sources(sources, items))

    @staticmethod
    def _sources(sources: np.ndarray, items: np.ndarray) -> np.ndarray:
        picked = np.take_along_axis(sources, np.maximum(items, 0).astype(np.int64), axis=1)
        return np.where(items >= 0, picked, Ranked.MODEL).astype(np.int8)

    def rerank(self, queries: HistoryBatch, pool: Ranked, k: int) -> Ranked:
        """Step 5's re-ranking of candidate lists ``pool`` (from ``candidates``) down to ``k``."""
        if self.reranker is None:
            raise ConfigError("this pipeline has no re-ranker")
        groups = profile = None
        if self.reranker.needs & {"groups", "profile"}:
            buckets = np.asarray(self.buckets)
            # items beyond the buckets (posted since they were computed) are long tail
            full = np.ones(self.n_items, dtype=np.int64)
            full[:len(buckets)] = item_groups(buckets)[: self.n_items]
            groups = full
            profile = group_profile(queries.csr(self.n_items), groups)
        items, values = self.reranker.rerank(pool.items, pool.scores, k, embeddings=self.rerank_vectors,
                                             groups=groups, profile=profile)
        # where each chosen item came from, looked up in the pool
        sources = np.zeros(items.shape, dtype=np.int8)
        for r in range(len(items)):
            where = dict(zip(pool.items[r].tolist(), pool.sources[r].tolist(), strict=True))
            sources[r] = [where.get(int(i), Ranked.MODEL) for i in items[r]]
        return Ranked(items, values, sources)

    def explain(self, queries: HistoryBatch, ranked: Ranked) -> list[list[Explanation]]:
        """Step 6: one explanation per listed item, from whatever put it there (the model is asked
        once per history, for all the items it ranked)."""
        n_model = self.model.n_items_
        out: list[list[Explanation]] = []
        for r in range(len(queries)):
            query = queries[[r]]
            listed = [(int(i), int(s)) for i, s in zip(ranked.items[r], ranked.sources[r], strict=True) if i >= 0]
            by_model = [i for i, s in listed if s == Ranked.MODEL]
            from_model = dict(zip(by_model, self.model.explain(query.with_catalogue(n_model),
                                                               np.asarray([by_model]))[0], strict=True)) if by_model else {}
            row: list[Explanation] = []
            for item, source in listed:
                if source == Ranked.POPULAR:
                    row.append(Explanation(item, "popular", self.model.name,
                                           detail={"count": float(np.asarray(self.popularity)[item])}))
                elif source == Ranked.TEXT:
                    row.append(self.fallback.explain(query, item, self.item_vectors, self.model.name, n_model))
                else:
                    row.append(from_model[item])
            out.append(row)
        return out
