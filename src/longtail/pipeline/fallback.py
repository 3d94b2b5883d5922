"""The text fallback: how items a model cannot score (cold in training, or posted since) compete.

A CF model has no column for an item posted after training and scores its training-cold items
``UNSCORED``; without a rule they would never be shown. The fallback scores them by text:

- the user's profile is the unit mean vector of their ``profile_items`` most recent history items;
- an unscored item's similarity ``s`` to that profile decides: for a model that scores by cosine
  (``Recommender.cosine_scores``: ``semantic``, ``semantic-attn``) ``s`` is its score; for any other
  model the item enters only when ``s >= threshold`` (tau), with the score
  ``lo + (hi - lo) (s - tau) / (1 - tau)``, ``hi`` / ``lo`` the user's best and k-th best model
  scores: a perfect text match ties the model's first item, a bare one its k-th, whatever the model's
  scale.

``threshold`` is a hyper-parameter like any other: chosen on valid for each model (``FALLBACK_GRID``;
``None`` switches the fallback off), then measured under both protocols (``longtail evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from longtail.common.scores import UNSCORED, scored_mask
from longtail.common.topk import topk
from longtail.data.history import HistoryBatch
from longtail.errors import ConfigError
from longtail.models.explain import Explanation, top_evidence

# Grid searched on valid, first point on ties (models that score every item tie everywhere).
FALLBACK_GRID: list[float | None] = [0.35, 0.2, 0.5, None]
PROFILE_ITEMS = 200


class RowCache:
    """The last ``vectors[columns]`` gathered, reused while the same rows of the same matrix are
    asked for again. A service asks for the same unscored columns (the training-cold and posted
    items) on every request; gathering them (10k x 384 floats) cost more than the model's scores.
    Valid while the rows it copied do not change in place (the service's catalogue only appends;
    a grown catalogue is a new buffer, hence a new key). One per live state, not process-wide."""

    def __init__(self) -> None:
        self._last: tuple[tuple[int, tuple[int, ...]], np.ndarray, np.ndarray] | None = None

    def rows(self, vectors: np.ndarray, columns: np.ndarray) -> np.ndarray:
        key = (int(vectors.__array_interface__["data"][0]), vectors.shape)
        last = self._last  # one read: another thread may replace it meanwhile
        if last is not None and last[0] == key and np.array_equal(last[1], columns):
            return last[2]
        block = np.ascontiguousarray(vectors[columns])
        self._last = (key, columns.copy(), block)
        return block


@dataclass(frozen=True)
class TextFallback:
    """Scores for the items a model leaves ``UNSCORED`` (see the module docstring)."""

    threshold: float | None = 0.35
    profile_items: int = PROFILE_ITEMS

    def __post_init__(self) -> None:
        if self.threshold is not None and not -1.0 <= float(self.threshold) < 1.0:
            raise ConfigError(f"fallback threshold must lie in [-1, 1) or be None, got {self.threshold}")
        if int(self.profile_items) < 1:
            raise ConfigError(f"fallback profile_items must be >= 1, got {self.profile_items}")

    def profiles(self, queries: HistoryBatch, vectors: np.ndarray) -> np.ndarray:
        """Unit mean of each history's most recent item vectors, (n, d) float32 (0 if empty)."""
        history = queries.recent(int(self.profile_items)).csr(len(vectors), dtype=np.float64)
        # only the rows the histories use, in float64: ``csr(float64) @ vectors(float32)`` made scipy
        # copy the whole (N, d) matrix to float64 on every call (~100 ms per request at 100k items)
        used, columns = np.unique(history.indices, return_inverse=True)
        compact = sp.csr_matrix((history.data, columns.astype(history.indices.dtype), history.indptr),
                                shape=(history.shape[0], len(used)))
        sums = compact @ vectors[used].astype(np.float64)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def apply(self, scores: np.ndarray, queries: HistoryBatch, vectors: np.ndarray, k: int, *,
              cosine: bool, rows: RowCache | None = None) -> np.ndarray:
        """Fill ``scores`` (n, N) in place where the model left ``UNSCORED`` and the text qualifies;
        returns the (n, N) mask of the items it scored. Seen items (in ``queries``) are skipped and
        do not count toward ``hi`` / ``lo``."""
        n, n_items = scores.shape
        filled = np.zeros((n, n_items), dtype=bool)
        if self.threshold is None or n == 0:
            return filled
        unscored = ~scored_mask(scores)
        unscored[queries.rows, queries.items] = False
        columns = np.flatnonzero(unscored.any(axis=0))
        if len(columns) == 0:
            return filled
        block = vectors[columns] if rows is None else rows.rows(vectors, columns)
        sims = self.profiles(queries, vectors) @ block.T  # (n, c)
        if cosine:
            mapped = sims
            enough = np.ones_like(sims, dtype=bool)
        else:
            tau = float(self.threshold)
            model = np.where(unscored, -np.inf, scores)
            model[queries.rows, queries.items] = -np.inf
            _, best = topk(model, k)  # (n, k) the user's best model scores, -inf padded
            hi = np.where(np.isfinite(best[:, :1]), best[:, :1], 0.0).astype(np.float64)
            lo = np.where(np.isfinite(best), best, np.inf).min(axis=1, keepdims=True)  # k-th, or last there is
            lo = np.where(np.isfinite(lo), lo, 0.0).astype(np.float64)
            spread = hi - lo + 1e-6 * np.maximum(1.0, np.abs(hi))
            mapped = lo + spread * (sims.astype(np.float64) - tau) / (1.0 - tau)
            enough = sims >= tau
        use = unscored[:, columns] & enough
        block = scores[:, columns]
        block[use] = mapped[use]
        scores[:, columns] = block
        filled[:, columns] = use
        return filled

    def explain(self, query: HistoryBatch, item: int, vectors: np.ndarray, model: str, n_model: int) -> Explanation:
        """"New item, similar to X": the recent history items whose text is closest to ``item``."""
        recent = query.recent(int(self.profile_items)).row(0)
        sims = vectors[recent] @ vectors[item] if len(recent) else np.zeros(0)
        return Explanation(item, "text", model, top_evidence(recent, sims),
                           {"new": float(item >= n_model)})


__all__ = ["FALLBACK_GRID", "PROFILE_ITEMS", "RowCache", "TextFallback", "UNSCORED"]
