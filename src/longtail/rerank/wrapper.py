"""``Reranked``: a model plus a re-ranker that looks like a model to the evaluator and to serving.

``recommend`` asks the model for its top ``n_candidates`` (with the same history, exclusion and
candidate restriction) and re-ranks them to ``k``. The popularity groups come from ``buckets``;
pass the buckets of the split being ranked (``eval.evaluator.split_view``): on valid they come from
train counts, on test from train+valid. Left out, they are computed from the model's own training
matrix, which is the same thing for a model fitted on that split's history.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from longtail.data.buckets import popularity_buckets
from longtail.errors import ConfigError
from longtail.rerank.base import Reranker, group_profile, item_groups

DEFAULT_CANDIDATES = 200


class CandidateSource(Protocol):
    """What ``Reranked`` needs of a model: ``recommend`` with the ``Recommender`` signature."""

    def recommend(
        self, user_ids: Any, k: int = 20, *, exclude_seen: bool = True, history: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


class Reranked:
    """``model``'s top-``n_candidates`` re-ranked by ``reranker``; ``recommend`` has the model's API.

    Parameters
    ----------
    model : a fitted recommender (anything with ``recommend``; ``user_items_`` when ``history`` is
        not passed to ``recommend`` or ``buckets`` is left out and the method needs groups).
    reranker : e.g. ``make_reranker("dpp", diversity=0.3)``.
    n_candidates : list length asked of the model (at least ``k``).
    item_embeddings : (n_items, d) float32 unit rows, for MMR and DPP.
    buckets : (n_items,) HEAD/TAIL/COLD of the split being ranked, for calibration and xQuAD.
    """

    def __init__(
        self,
        model: CandidateSource,
        reranker: Reranker,
        *,
        n_candidates: int = DEFAULT_CANDIDATES,
        item_embeddings: np.ndarray | None = None,
        buckets: np.ndarray | None = None,
    ) -> None:
        if n_candidates < 1:
            raise ConfigError(f"n_candidates must be >= 1, got {n_candidates}")
        reranker.check_params()
        if "embeddings" in reranker.needs and item_embeddings is None:
            raise ConfigError(f"re-ranker {reranker.name} needs item embeddings (see longtail.text)")
        self.model = model
        self.reranker = reranker
        self.n_candidates = int(n_candidates)
        self.item_embeddings = item_embeddings
        self.buckets = buckets
        self.name = f"{getattr(model, 'name', 'model')}+{reranker.name}"

    def _groups(self) -> np.ndarray:
        if self.buckets is None:
            if not hasattr(self.model, "user_items_"):
                raise ConfigError("Reranked needs buckets (or a fitted model with user_items_)")
            counts = np.asarray(self.model.user_items_.sum(axis=0)).ravel()
            self.buckets = popularity_buckets(counts)
        return item_groups(self.buckets)

    def recommend(
        self,
        user_ids: np.ndarray | list[int],
        k: int = 20,
        *,
        exclude_seen: bool = True,
        history: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Re-ranked top-``k`` (items int32 (n, k), scores float32 (n, k)), padded with -1 / -inf."""
        users = np.asarray(user_ids, dtype=np.int64)
        items, scores = self.model.recommend(
            users, max(self.n_candidates, k), exclude_seen=exclude_seen, history=history, candidates=candidates
        )
        groups = profile = None
        if self.reranker.needs & {"groups", "profile"}:
            groups = self._groups()
            source = history if history is not None else getattr(self.model, "user_items_", None)
            if source is None:
                raise ConfigError("Reranked needs the users' history (pass history=)")
            profile = group_profile(sp.csr_matrix(source)[users], groups)
        return self.reranker.rerank(items, scores, k, embeddings=self.item_embeddings, groups=groups,
                                    profile=profile)
