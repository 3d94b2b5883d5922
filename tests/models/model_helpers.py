"""Helpers shared by the model tests: every model name with small, fast parameters, one way to fit
them, and the ml-latest-small slice most tests run on (built by the ``movies`` fixture, conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.models import MODELS, Recommender, make_model

FUSION = "fusion(ease+semantic-attn)"
ALL_MODELS = [*MODELS, FUSION]  # every registered model and a fusion of two of them
NEURAL = [name for name in MODELS if name.startswith("neural")]

# Small and fast: the slice has ~1,000 warm items; neural tensors are tiny, so one thread runs them
# fastest (OpenMP spinning costs seconds on a busy machine).
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "als": {"factors": 8, "iterations": 15, "regularization": 0.1},
    "ease": {"l2": 10.0},
    "graph": {"k": 20},
    "hybrid": {"cf__l2": 10.0, "n_candidates": 200, "gate_users": 100},
    FUSION: {"ease__l2": 10.0},
    "longtail": {"cf__l2": 10.0, "n_candidates": 200, "gate_users": 100,
                 **{f"semantic__neural-ips__{k}": v for k, v in
                    {"dim": 16, "epochs": 2, "max_history": 20, "num_threads": 1}.items()}},
    **{name: {"dim": 16, "epochs": 2, "max_history": 20, "num_threads": 1} for name in NEURAL},
}


def fit(name: str, X: Interactions, vectors: np.ndarray | None, **params: Any) -> Recommender:
    """``name`` with ``FAST_PARAMS`` (overridden by ``params``) fitted on ``X``; ``vectors`` reach
    only the models that read item text."""
    model = make_model(name, **{**FAST_PARAMS.get(name, {}), **params})
    return model.fit(X, item_embeddings=vectors if model.needs_embeddings else None)


def queries(X: Interactions, users: np.ndarray | list[int] | None = None) -> HistoryBatch:
    """The ordered histories in ``X`` of ``users`` (all of X's users if None)."""
    return HistoryBatch.from_interactions(X, users)


@dataclass(frozen=True)
class MovieSlice:
    """ml-latest-small's train+valid positives of its first ``n_users`` users on its first
    ``n_items`` items (about a third of them then cold), their test positives on the same items
    (held-out next items), and the real text vectors of those items."""

    X: Interactions
    heldout: Interactions
    vectors: np.ndarray  # (n_items, 384) unit rows, the real encoder's

    @property
    def counts(self) -> np.ndarray:
        return self.X.item_counts()

    @property
    def cold(self) -> np.ndarray:
        """Items without any positive in ``X``."""
        return np.flatnonzero(self.counts == 0)

    @property
    def users(self) -> np.ndarray:
        """Users with a history in ``X``."""
        return self.X.active_users()

    def queries(self, users: np.ndarray | list[int] | None = None) -> HistoryBatch:
        return queries(self.X, self.users if users is None else users)

    def random_vectors(self, dim: int = 32, seed: int = 0) -> np.ndarray:
        """Random unit vectors standing in for the text (where what the text says does not matter)."""
        vectors = np.random.default_rng(seed).standard_normal((self.X.n_items, dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def fit(self, name: str, vectors: np.ndarray | None = None, **params: Any) -> Recommender:
        """``fit`` on ``X`` with the real text vectors unless ``vectors`` are given."""
        return fit(name, self.X, self.vectors if vectors is None else vectors, **params)


def slice_of(train: Interactions, test: Interactions, vectors: np.ndarray, n_users: int,
             n_items: int) -> MovieSlice:
    """The ``MovieSlice`` of the first ``n_users`` users and ``n_items`` items."""

    def cut(data: Interactions) -> Interactions:
        keep = (data.users < n_users) & (data.items < n_items)
        return Interactions(data.users[keep], data.items[keep], data.timestamps[keep], n_users, n_items)

    return MovieSlice(cut(train), cut(test), np.ascontiguousarray(vectors[:n_items]))
