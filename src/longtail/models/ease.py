"""EASE (Steck, WWW 2019): closed-form linear item-item autoencoder with a zero diagonal."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import UNSCORED, Recommender
from longtail.models.explain import Explanation, top_evidence
from longtail.models.incremental import absorb, grown, pack_csr, unpack_csr

WOODBURY_SHARE = 1 / 8  # an update touching more users than this share of the warm items inverts again


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
        self._check_size(len(warm))
        self.seen_ = sp.csr_matrix(X.csr, dtype=np.float32)
        self._set_precision(warm, np.linalg.inv(self._gram(self.seen_, warm)))

    def _check_size(self, n_warm: int) -> None:
        if n_warm > int(self.max_items):
            gib = n_warm ** 2 * 8 / 2**30
            raise ConfigError(
                f"ease: {n_warm:,} warm items need a dense {n_warm:,}^2 inverse (~{gib:.1f} GiB); "
                f"the limit is max_items={self.max_items:,}. Raise it or use itemknn/als."
            )

    def _gram(self, X: sp.csr_matrix, warm: np.ndarray) -> np.ndarray:
        Xw = X[:, warm]
        gram = (Xw.T @ Xw).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += float(self.l2)
        return gram

    def _set_precision(self, warm: np.ndarray, precision: np.ndarray) -> None:
        """``B`` from ``P``, and ``diag(P)``: with ``P = (I - B) diag(P)`` the two hold all of ``P``,
        which is what ``woodbury`` updates without forming it."""
        diagonal = np.diag(precision).copy()
        weights = precision / (-diagonal)
        weights[np.diag_indices_from(weights)] = 0.0
        self.warm_items_ = warm.astype(np.int32)
        self.weights_ = weights.astype(np.float32)
        self.precision_diag_ = diagonal

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """Exact, no refit: ``B`` follows ``P = (X^T X + λI)^-1`` as the new positives arrive.

        Items that turn warm border ``P`` with ``1/λ`` (their Gram row was zero, so their ``B``
        row and column are zero); the changed users' rows (``X^T X`` gains ``x'x'^T - xx^T`` per
        user) then go through Woodbury, a rank-``2u`` correction for ``u`` users applied to ``B``
        and ``diag(P)`` directly: ``O(n² u)`` where a refit costs ``O(n³)``. An update touching
        more than ``n / 8`` users inverts again instead (same result, cheaper). New users need
        nothing; a new item with no event stays unscored (the pipeline's text fallback) until
        it gets one."""
        after, users, _ = absorb(self.seen_, new)
        warm = np.flatnonzero(np.diff(after.tocsc().indptr) > 0)
        self._check_size(len(warm))
        if len(users) > WOODBURY_SHARE * len(warm):
            self._set_precision(warm, np.linalg.inv(self._gram(after, warm)))
        elif len(users):
            before = grown(self.seen_, *after.shape)[users][:, warm]
            weights, diagonal = self._bordered(warm)
            self.weights_, self.precision_diag_ = woodbury(weights, diagonal, after[users][:, warm], before)
            self.warm_items_ = warm.astype(np.int32)
        self.seen_ = after

    def _bordered(self, warm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``B``, ``diag(P)``) over ``warm``, a superset of the fitted warm items (the others' ``B``
        rows and columns are zero, their ``P`` diagonal ``1/λ``)."""
        old = self.warm_items_
        if len(warm) == len(old):
            return self.weights_, self.precision_diag_
        at = np.searchsorted(warm, old)
        weights = np.zeros((len(warm), len(warm)), np.float32)
        weights[np.ix_(at, at)] = self.weights_
        diagonal = np.full(len(warm), 1.0 / float(self.l2))
        diagonal[at] = self.precision_diag_
        return weights, diagonal

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
        return {"warm_items": self.warm_items_, "weights": self.weights_,
                "precision_diag": self.precision_diag_, **pack_csr("seen", self.seen_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.warm_items_ = arrays["warm_items"]
        self.weights_ = arrays["weights"]
        self.precision_diag_ = arrays["precision_diag"]
        self.seen_ = unpack_csr("seen", arrays, self.n_items_)


def woodbury(weights: np.ndarray, diagonal: np.ndarray, rows_after: sp.csr_matrix, rows_before: sp.csr_matrix
             ) -> tuple[np.ndarray, np.ndarray]:
    """EASE's (``B'``, ``diag(P')``) for ``G' = G + A^T A - C^T C`` from (``B``, ``diag(P)``) of ``G``
    (``P = G^-1 = (I - B) diag(P)``), never forming ``P``: with ``V = [A^T C^T]``, ``S`` = +1 / -1
    blocks, ``W = PV (S + V^T P V)^-1 (PV)^T`` is ``P - P'`` (Woodbury), ``diag(P') = diag(P) -
    diag(W)`` and ``B'_ij = (B_ij diag(P)_j + W_ij) / diag(P')_j`` off the diagonal. A new array:
    ``weights`` is left untouched."""
    rows_before = rows_before[np.diff(rows_before.indptr) > 0]  # a new user has no old row to remove
    V = sp.vstack([rows_after, rows_before]).T.toarray().astype(np.float64)
    signs = np.concatenate([np.ones(rows_after.shape[0]), -np.ones(rows_before.shape[0])])
    DV = V * diagonal[:, None]
    PV = DV - (weights @ DV.astype(np.float32)).astype(np.float64)
    right = np.linalg.solve(np.diag(signs) + V.T @ PV, PV.T)
    after_diagonal = diagonal - np.einsum("ij,ji->i", PV, right)
    out = weights * (diagonal / after_diagonal).astype(np.float32)[None, :]
    out += PV.astype(np.float32) @ (right / after_diagonal[None, :]).astype(np.float32)
    out[np.diag_indices_from(out)] = 0.0
    return out, after_diagonal
