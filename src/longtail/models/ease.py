"""EASE (Steck, WWW 2019): closed-form linear item-item autoencoder with a zero diagonal."""

from __future__ import annotations

import numpy as np

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import UNSCORED, Recommender
from longtail.models.explain import Explanation, top_evidence


class EASE(Recommender):
    """``B = I - P diagMat(1 / diag(P))``, ``P = (X^T X + λI)^-1``, over the items seen in training.

    Items with no training positive cannot be scored (their row of B would be zero): they rank last.
    Refuses, with a clear message, to build the dense inverse above ``max_items`` warm items.
    """

    name = "ease"
    param_grid = {"l2": [10.0, 50.0, 200.0, 500.0, 1000.0, 3000.0]}

    def __init__(self, *, l2: float = 500.0, max_items: int = 30_000) -> None:
        self.l2 = l2
        self.max_items = max_items

    def _check_params(self) -> None:
        if float(self.l2) <= 0:
            raise ConfigError(f"ease: l2 must be > 0, got {self.l2}")

    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        warm = np.flatnonzero(X.item_counts() > 0)
        if len(warm) > int(self.max_items):
            gib = len(warm) ** 2 * 8 / 2**30
            raise ConfigError(
                f"ease: {len(warm):,} warm items need a dense {len(warm):,}^2 inverse (~{gib:.1f} GiB); "
                f"the limit is max_items={self.max_items:,}. Raise it or use itemknn/als."
            )
        Xw = X.csr[:, warm]
        gram = (Xw.T @ Xw).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += float(self.l2)
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        weights[np.diag_indices_from(weights)] = 0.0
        self.warm_items_ = warm.astype(np.int32)
        self.weights_ = weights.astype(np.float32)

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """Users fold in for free (a score reads the query's history); new items stay unscored,
        served through their text by the pipeline's fallback, until the next refit: the weights
        are one dense inverse over the warm items, not worth updating per event."""

    def _score(self, queries: HistoryBatch) -> np.ndarray:
        scores = np.full((len(queries), self.n_items_), UNSCORED, dtype=np.float32)
        scores[:, self.warm_items_] = queries.csr()[:, self.warm_items_] @ self.weights_
        return scores

    def _explain_row(self, query: HistoryBatch, item: int) -> Explanation:
        """The history items whose regression weights toward ``item`` make up its score."""
        column = np.searchsorted(self.warm_items_, item)
        history = query.row(0)
        if column >= len(self.warm_items_) or self.warm_items_[column] != item:
            return Explanation(item, "model", self.name)
        rows = np.searchsorted(self.warm_items_, history)
        known = (rows < len(self.warm_items_)) & (self.warm_items_[np.minimum(rows, len(self.warm_items_) - 1)] == history)
        weights = np.zeros(len(history))
        weights[known] = self.weights_[rows[known], column]
        return Explanation(item, "history", self.name, top_evidence(history, weights))

    def _state(self) -> dict[str, np.ndarray]:
        return {"warm_items": self.warm_items_, "weights": self.weights_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.warm_items_ = arrays["warm_items"]
        self.weights_ = arrays["weights"]
