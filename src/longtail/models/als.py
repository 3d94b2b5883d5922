"""Implicit-feedback ALS (Hu, Koren, Volinsky 2008) via the `implicit` library, CPU."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import UNSCORED, Recommender
from longtail.models.explain import Explanation, top_evidence
from longtail.models.incremental import absorb, pack_csr, unpack_csr

WEIGHTINGS = ("confidence", "bm25")
BM25_K1, BM25_B = 100.0, 0.8  # implicit's bm25_weight defaults, as in its examples


class ALS(Recommender):
    """Matrix factorisation with confidence ``1 + alpha * w``; ``w`` is 1 (``confidence``) or the
    BM25 weight of the interaction (``bm25``, as in implicit's examples). Users whose history
    are folded in with one least-squares step from their history, training users too."""

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
        """Confidence weights ``w`` of the interactions of ``matrix`` (users x items). BM25 uses the
        training catalogue's item lengths (``item_norm_``), so a user's weights never depend on
        which other users share the batch: one user served = the same user evaluated."""
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        if self.weighting == "bm25":
            k1 = BM25_K1
            lengths = np.diff(matrix.indptr)  # each user's history length
            idf = np.log(self.n_items_) - np.log1p(lengths)  # (n,) implicit's bm25_weight on X.T
            rows = np.repeat(np.arange(matrix.shape[0]), lengths)
            norm = self.item_norm_[matrix.indices]
            matrix.data = matrix.data * (k1 + 1.0) / (k1 * norm + matrix.data) * idf[rows]
        return matrix.astype(np.float32)

    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        counts = X.item_counts().astype(np.float64)
        self.item_norm_ = (1.0 - BM25_B) + BM25_B * counts / max(counts.mean(), 1e-12)
        # implicit parallelises itself; a multi-threaded BLAS underneath only oversubscribes the cores
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=float(self.alpha),
                iterations=int(self.iterations),
                random_state=int(self.seed),
            )
            model.fit(self._weighted(X.csr), show_progress=False)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)  # for item updates
        self.norm_mean_ = float(max(counts.mean(), 1e-12))
        self.seen_ = sp.csr_matrix(X.csr, dtype=np.float32)
        self._refresh()

    def _refresh(self) -> None:
        """Derived state after the factors or the matrix changed."""
        self.factors64_ = None
        self.base_system_ = None
        self.warm_ = np.diff(self.seen_.tocsc().indptr) > 0
        self.cold_items_ = np.flatnonzero(~self.warm_)

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """implicit's ``partial_fit_users`` then ``partial_fit_items``, on what changed: the
        users with new events get the ALS user step, then the items with new events (new items
        included, from zero) the item step against every user's factors. Items no event touched
        keep theirs; BM25 lengths keep the fit's mean until the next refit."""
        after, users, items = absorb(self.seen_, new)
        n_old, f = self.item_factors_.shape
        item_factors = np.zeros((new.n_items, f), np.float32)  # new arrays: an ``updated`` copy's original keeps its own
        item_factors[:n_old] = self.item_factors_
        user_factors = np.zeros((after.shape[0], f), np.float32)
        user_factors[: len(self.user_factors_)] = self.user_factors_
        counts = np.asarray(after.sum(axis=0)).ravel()
        self.item_norm_ = np.concatenate([self.item_norm_, (1.0 - BM25_B) + BM25_B * counts[n_old:] / self.norm_mean_])
        self.n_items_, self.item_factors_, self.seen_ = new.n_items, item_factors, after
        self._refresh()  # the user step below reads the grown factors
        user_factors[users] = self._fold_in(after[users])
        item_factors[items] = self._item_step(user_factors, self._weighted(after).tocsc(), items)
        self.user_factors_ = user_factors
        self._refresh()

    def _item_step(self, users: np.ndarray, weighted: sp.csc_matrix, items: np.ndarray) -> np.ndarray:
        """The ALS item step ``(U^T U + U_i^T (C_i - I) U_i + reg I) y_i = U_i^T c_i`` for ``items``
        (float64 solves, float32 out), ``U^T U`` over all users once."""
        U = users.astype(np.float64)
        base = U.T @ U + float(self.regularization) * np.eye(U.shape[1])
        out = np.zeros((len(items), U.shape[1]), np.float32)
        for row, item in enumerate(items):
            start, stop = weighted.indptr[item], weighted.indptr[item + 1]
            who = weighted.indices[start:stop]
            conf = 1.0 + float(self.alpha) * weighted.data[start:stop].astype(np.float64)
            Ui = U[who]
            out[row] = np.linalg.solve(base + (Ui.T * (conf - 1.0)) @ Ui, Ui.T @ conf)
        return out

    def _systems(self, history: sp.csr_matrix) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per row: (items, their factors Y_h, confidences c, A) of the ALS user step
        ``A x = Y_h^T c``. Only the history's rows of Y are read (float64)."""
        weighted = self._weighted(history)
        base = self._base_system()
        out = []
        for row in range(history.shape[0]):
            start, stop = weighted.indptr[row], weighted.indptr[row + 1]
            items = weighted.indices[start:stop]
            conf = 1.0 + float(self.alpha) * weighted.data[start:stop].astype(np.float64)
            Yi = self.item_factors_[items].astype(np.float64)
            out.append((items, Yi, conf, base + (Yi.T * (conf - 1.0)) @ Yi))
        return out

    def _base_system(self) -> np.ndarray:
        """``Y^T Y + reg I``, the part of every user's system that no history changes: computed
        once per fitted model (it streams all item factors: the cost of a request otherwise)."""
        if getattr(self, "base_system_", None) is None:
            Y = self._factors64()
            self.base_system_ = Y.T @ Y + float(self.regularization) * np.eye(Y.shape[1])
        return self.base_system_

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """Least-squares user vectors of arbitrary histories (the ALS user step): every history is
        folded in, a training user's too, so a score depends on the history alone."""
        out = np.zeros((history.shape[0], self.item_factors_.shape[1]), dtype=np.float32)
        for row, (_, Yi, conf, A) in enumerate(self._systems(history)):
            out[row] = np.linalg.solve(A, Yi.T @ conf)
        return out

    def _score(self, queries: HistoryBatch) -> np.ndarray:
        # float64 product, rounded to float32 once: a batch (gemm) and one user (gemv) then give the
        # same bits, so a near-tie (1 ulp apart in float32) cannot flip between evaluate and the service
        users = self._fold_in(queries.csr()).astype(np.float64)  # (n, f)
        scores = (users @ self._factors64().T).astype(np.float32)  # (n, n_items)
        scores[:, self.cold_items_] = UNSCORED
        return scores

    def _factors64(self) -> np.ndarray:
        if getattr(self, "factors64_", None) is None or self.factors64_.shape != self.item_factors_.shape:
            self.factors64_ = self.item_factors_.astype(np.float64)
        return self.factors64_

    def _explain_items(self, query: HistoryBatch, items: list[int]) -> list[Explanation]:
        """Each history item's share of each score (Hu, Koren, Volinsky 2008, section 5):
        ``score_i = sum_j c_j y_i^T A^-1 y_j``; one system per history."""
        history, Yh, conf, A = self._systems(query.csr())[0]
        targets = self.item_factors_[np.asarray(items, np.int64)].astype(np.float64)  # (k, f)
        shares = conf[:, None] * (Yh @ np.linalg.solve(A, targets.T))  # (h, k)
        return [Explanation(item, "history", self.name, top_evidence(history, shares[:, j]))
                for j, item in enumerate(items)]

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_, "item_norm": self.item_norm_, "user_factors": self.user_factors_,
                "norm_mean": np.array([self.norm_mean_]), **pack_csr("seen", self.seen_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_factors_ = arrays["item_factors"]
        self.item_norm_ = arrays["item_norm"]
        self.user_factors_ = arrays["user_factors"]
        self.norm_mean_ = float(arrays["norm_mean"][0])
        self.seen_ = unpack_csr("seen", arrays, self.n_items_)
        self._refresh()
