"""A set of (user, item, timestamp) positives in index space, and its CSR view."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, eq=False)
class Interactions:
    """Positives as parallel int arrays; ``csr`` is users x items with 1.0 per positive.

    Always users x items (never flipped), so models, evaluation and serving share one shape.
    ``repeats``: a (user, item) may occur more than once, as separate events (``--keep-seen``);
    ``csr`` stays binary, ``item_counts`` counts events, and histories built from it keep them
    (``HistoryBatch.from_interactions``), so sequence models see the repeats.
    ``weights``: an optional weight per positive (None: all 1), e.g. from the review's sentiment
    (``text.sentiment``); it travels with ``subset`` / ``+`` into ``HistoryBatch.from_interactions``
    for the models that read it; ``csr`` stays binary, so CF fits do not change.
    """

    users: np.ndarray  # (n,) int32
    items: np.ndarray  # (n,) int32
    timestamps: np.ndarray  # (n,) int64
    n_users: int
    n_items: int
    repeats: bool = False
    weights: np.ndarray | None = None  # (n,) float32 per positive (None: all 1)
    _csr: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not (len(self.users) == len(self.items) == len(self.timestamps)):
            raise ValueError("users, items and timestamps must have the same length")
        if self.weights is not None and len(self.weights) != len(self.users):
            raise ValueError("weights must have one entry per positive")

    def __len__(self) -> int:
        return len(self.users)

    @property
    def csr(self) -> sp.csr_matrix:
        """Binary users x items matrix (float32), built once."""
        if not self._csr:
            data = np.ones(len(self.users), dtype=np.float32)
            matrix = sp.csr_matrix(
                (data, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=np.float32
            )
            matrix.sum_duplicates()
            matrix.data[:] = 1.0
            self._csr.append(matrix)
        return self._csr[0]

    def item_counts(self) -> np.ndarray:
        """Number of positives (events, repeats included) per item, (n_items,) int64."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users, minlength=self.n_users).astype(np.int64)

    def active_users(self) -> np.ndarray:
        """Sorted indices of users with at least one positive."""
        return np.flatnonzero(self.user_counts() > 0).astype(np.int32)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The positives selected by ``mask`` (boolean or indices), weights included."""
        return Interactions(
            self.users[mask], self.items[mask], self.timestamps[mask], self.n_users, self.n_items,
            self.repeats, None if self.weights is None else self.weights[mask],
        )

    def with_weights(self, weights: np.ndarray | None) -> Interactions:
        """The same positives with ``weights`` (n,) (None: unweighted)."""
        weights = None if weights is None else np.asarray(weights, np.float32)
        return Interactions(self.users, self.items, self.timestamps, self.n_users, self.n_items,
                            self.repeats, weights)

    def __add__(self, other: Interactions) -> Interactions:
        if (self.n_users, self.n_items) != (other.n_users, other.n_items):
            raise ValueError("cannot add Interactions of different shapes")
        return Interactions(
            np.concatenate([self.users, other.users]),
            np.concatenate([self.items, other.items]),
            np.concatenate([self.timestamps, other.timestamps]),
            self.n_users,
            self.n_items,
            self.repeats or other.repeats,
            _joined_weights(self, other),
        )


def _joined_weights(a: Interactions, b: Interactions) -> np.ndarray | None:
    """``a``'s weights then ``b``'s, an unweighted side as ones; None when neither has any."""
    if a.weights is None and b.weights is None:
        return None
    return np.concatenate([np.ones(len(x), np.float32) if x.weights is None else x.weights.astype(np.float32)
                           for x in (a, b)])
