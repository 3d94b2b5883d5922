"""Item-based k-nearest-neighbours CF: shrunk cosine similarity, top-k neighbours per item."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import UNSCORED, Recommender
from longtail.models.explain import Explanation, top_evidence


def cosine_topk(X: sp.csr_matrix, k: int, shrink: float, block: int = 2048) -> sp.csr_matrix:
    """Item-item similarity ``W`` (items x items, CSR) keeping, for each target item j (column),
    its ``k`` most similar items i: ``sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrink)``.

    Computed in column blocks so memory stays at (n_items x block) floats.
    """
    Xc = X.tocsc().astype(np.float32)
    n_items = X.shape[1]
    norms = np.sqrt(np.asarray(Xc.multiply(Xc).sum(axis=0)).ravel()).astype(np.float32)
    XT = Xc.T.tocsr()
    rows, cols, vals = [], [], []
    k = min(k, max(n_items - 1, 1))
    for start in range(0, n_items, block):
        stop = min(start + block, n_items)
        co = (XT @ Xc[:, start:stop]).toarray()  # (n_items, b)
        co /= norms[:, None] * norms[None, start:stop] + shrink + 1e-12
        co[np.arange(start, stop), np.arange(stop - start)] = 0.0  # no self-similarity
        part = np.argpartition(-co, k - 1, axis=0)[:k]  # (k, b) row indices
        v = np.take_along_axis(co, part, axis=0)
        keep = v > 0
        rows.append(part[keep])
        cols.append(np.broadcast_to(np.arange(start, stop), part.shape)[keep])
        vals.append(v[keep])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_items, n_items),
        dtype=np.float32,
    )


class ItemKNN(Recommender):
    """Score(u, j) = sum over the user's items i of sim(i, j), over j's ``k`` nearest neighbours.

    Parameters
    ----------
    k : neighbours kept per item.
    shrink : added to the cosine denominator; damps similarities built on few co-occurrences.
    """

    name = "itemknn"
    param_grid = {"k": [20, 50, 100, 200], "shrink": [0.0, 10.0, 100.0]}

    def __init__(self, *, k: int = 100, shrink: float = 10.0) -> None:
        self.k = k
        self.shrink = shrink

    def _check_params(self) -> None:
        if int(self.k) < 1 or float(self.shrink) < 0:
            raise ConfigError(f"itemknn: need k >= 1 and shrink >= 0, got k={self.k}, shrink={self.shrink}")

    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        self.similarity_ = cosine_topk(X.csr, int(self.k), float(self.shrink))
        self.warm_ = X.item_counts() > 0

    def _score(self, queries: HistoryBatch) -> np.ndarray:
        scores = np.asarray((queries.csr() @ self.similarity_).todense(), dtype=np.float32)
        scores[:, ~self.warm_] = UNSCORED
        return scores

    def _explain_row(self, query: HistoryBatch, item: int) -> Explanation:
        """The history items whose similarity to ``item`` make up its score."""
        history = query.row(0)
        weights = np.asarray(self.similarity_[history, item].todense()).ravel()
        return Explanation(item, "history", self.name, top_evidence(history, weights))

    def _state(self) -> dict[str, np.ndarray]:
        s = self.similarity_
        return {"sim.data": s.data, "sim.indices": s.indices, "sim.indptr": s.indptr, "warm": self.warm_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = self.n_items_
        self.similarity_ = sp.csr_matrix(
            (arrays["sim.data"], arrays["sim.indices"], arrays["sim.indptr"]), shape=(n, n)
        )
        self.warm_ = arrays["warm"]
