"""Most-popular baseline: every user gets the items with the most training positives."""

from __future__ import annotations

import numpy as np
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.models.base import Recommender
from longtail.models.explain import Explanation


class Popularity(Recommender):
    """Score = training positive count (the same list for everyone; ties by item id)."""

    name = "pop"
    param_grid: dict = {}

    def __init__(self) -> None:
        pass

    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        self.counts_ = X.item_counts().astype(np.float32)

    def _score(self, queries: HistoryBatch) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(queries), self.n_items_))

    def _explain_row(self, query: HistoryBatch, item: int) -> Explanation:
        return Explanation(item, "popular", self.name, detail={"count": float(self.counts_[item])})

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """Counts simply add up; a new item starts at its new events."""
        counts = np.zeros(new.n_items, np.float32)
        counts[: len(self.counts_)] = self.counts_
        self.counts_ = counts + new.item_counts().astype(np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts_ = arrays["counts"]
