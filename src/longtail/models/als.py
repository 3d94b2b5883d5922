"""Implicit-feedback ALS (Hu, Koren, Volinsky 2008) via the `implicit` library, CPU."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import UNSCORED, Recommender

WEIGHTINGS = ("confidence", "bm25")


class ALS(Recommender):
    """Matrix factorisation with confidence ``1 + alpha * w``; ``w`` is 1 (``confidence``) or the
    BM25 weight of the interaction (``bm25``, as in implicit's examples). Users whose history
    differs from the fitted one are folded in with one least-squares step."""

    name = "als"
    param_grid = {
        "factors": [64, 128],
        "regularization": [0.01, 0.1],
        "alpha": [1.0, 10.0],
        "weighting": ["confidence", "bm25"],
    }

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        weighting: str = "confidence",
        iterations: int = 15,
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.weighting = weighting
        self.iterations = iterations
        self.seed = seed

    def _check_params(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(f"als: weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")

    def _weighted(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        if self.weighting == "bm25":
            from implicit.nearest_neighbours import bm25_weight

            return bm25_weight(matrix.T.tocoo(), K1=100, B=0.8).T.tocsr().astype(np.float32)
        return matrix.astype(np.float32)

    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself; a multi-threaded BLAS underneath only oversubscribes the cores
        with threadpool_limits(1, "blas"):
            self._model = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=float(self.alpha),
                iterations=int(self.iterations),
                random_state=int(self.seed),
            )
            self._model.fit(self._weighted(X.csr), show_progress=False)
        self.user_factors_ = np.asarray(self._model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(self._model.item_factors, dtype=np.float32)
        self.warm_ = X.item_counts() > 0
        self.__dict__.pop("_cold_index", None)

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """Least-squares user vectors for arbitrary histories (the ALS user step)."""
        Y = self.item_factors_.astype(np.float64)
        weighted = self._weighted(history)
        reg = float(self.regularization) * np.eye(Y.shape[1])
        gram = Y.T @ Y
        out = np.zeros((history.shape[0], Y.shape[1]), dtype=np.float32)
        for row in range(history.shape[0]):
            start, stop = weighted.indptr[row], weighted.indptr[row + 1]
            items, conf = weighted.indices[start:stop], 1.0 + float(self.alpha) * weighted.data[start:stop]
            Yi = Y[items]
            A = gram + (Yi.T * (conf - 1.0)) @ Yi + reg
            out[row] = np.linalg.solve(A, Yi.T @ conf)
        return out

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        # users past the fitted ones (new users of a live service) are always folded in
        known = bool(np.all(users < min(self.user_factors_.shape[0], self.user_items_.shape[0])))
        same = known and (self.user_items_[users] != history).nnz == 0
        vectors = self.user_factors_[users] if same else self._fold_in(history)
        scores = vectors @ self.item_factors_.T
        if not hasattr(self, "_cold_index"):  # index array: cheaper than a boolean mask per call
            self._cold_index = np.flatnonzero(~self.warm_)
        scores[:, self._cold_index] = UNSCORED
        return scores

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_, "warm": self.warm_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self.warm_ = arrays["warm"]
        self.__dict__.pop("_cold_index", None)
