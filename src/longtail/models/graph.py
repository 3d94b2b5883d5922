"""Item graph recommender: personalised PageRank over semantic and co-occurrence item edges.

Two kinds of item-item edges, both symmetric and top-k sparse:

- ``semantic``: the ``k`` nearest neighbours of each item's text vector (cosine, exact faiss search
  through ``text.index.VectorIndex``). Every item has them, cold items included: this is how an
  item nobody has interacted with yet is reached, and so recommended.
- ``cooccurrence``: the ``k`` items most often liked by the same users, cosine-normalised co-counts
  (``itemknn.cosine_topk``, with its shrinkage).

Each kind is row-normalised separately and mixed, ``(1 - semantic_weight) C + semantic_weight S``,
then row-normalised into the transition matrix ``P`` (an item with one kind of edge only, such as a
cold item, walks along that kind). A user's scores are the personalised PageRank from their history:
``r <- (1 - restart) r P + restart p0``, ``p0`` uniform over the history, a few power iterations
batched over users as one sparse-dense product each; mass reaching an item without edges restarts.
``r`` stays a probability distribution over the catalogue (each row sums to 1).

A walk drifts toward well-connected items, which are mostly popular ones; as in RP3beta (Paudel et
al., "Updatable, accurate, diverse, and scalable recommendations for interactive applications",
TiiS 2017) the final score divides ``r`` by the item's in-degree ``sum_i P[i, j]`` to the power
``beta``. On ml-latest-small's valid split ``beta = 0.25`` raised overall, tail and cold ndcg@20
together, and larger values trade overall for tail and cold: ``beta`` is in the grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import Recommender
from longtail.models.explain import Explanation, top_evidence
from longtail.models.incremental import absorb, grown, pack_csr, relisted, unpack_csr
from longtail.models.itemknn import cosine_topk
from longtail.text.index import VectorIndex

EDGE_KINDS = ("semantic", "cooccurrence")


def semantic_edges(vectors: np.ndarray, k: int, first: int = 0) -> sp.csr_matrix:
    """Symmetric kNN graph of unit ``vectors`` (n, d): ``S[i, j] = cos(v_i, v_j)`` when ``j`` is among
    ``i``'s ``k`` nearest neighbours or ``i`` among ``j``'s; self-loops and non-positive cosines are
    dropped. ``first``: only the edges of items ``first..`` (the new items of an update). (n, n)
    float32 CSR."""
    n = len(vectors)
    if n < 2:
        return sp.csr_matrix((n, n), dtype=np.float32)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = VectorIndex(vectors.shape[1], "exact")
    index.add(np.arange(n), vectors)
    ids, scores = index.search(vectors[first:], min(k + 1, n))  # (m, k+1): usually self first
    rows = np.broadcast_to(np.arange(first, n)[:, None], ids.shape)
    keep = (ids >= 0) & (ids != rows) & (scores > 0)
    keep &= np.cumsum(keep, axis=1) <= k  # at most k neighbours besides self
    knn = sp.csr_matrix((scores[keep], (rows[keep], ids[keep])), shape=(n, n), dtype=np.float32)
    return knn.maximum(knn.T).tocsr()


def row_normalize(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum 1 (empty rows stay empty)."""
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    inverse = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return (sp.diags(inverse.astype(np.float32)) @ matrix).tocsr()


def transition_matrix(semantic: sp.csr_matrix, cooccurrence: sp.csr_matrix, semantic_weight: float
                      ) -> sp.csr_matrix:
    """Row-stochastic ``P`` (rows without any edge stay empty) mixing the two kinds of edges."""
    mixed = (1.0 - semantic_weight) * row_normalize(cooccurrence) + semantic_weight * row_normalize(semantic)
    return row_normalize(mixed.tocsr()).astype(np.float32)


def personalized_pagerank(start: sp.csr_matrix, transition: sp.csr_matrix, restart: float,
                          iterations: int) -> np.ndarray:
    """Random walk with restart from each row of ``start`` (n, m), rows non-negative.

    ``p0`` = each row scaled to sum 1; ``r <- (1 - restart) (r P + dangling(r) p0) + restart p0``
    where ``dangling(r)`` is the mass on items without out-edges. Rows of the result sum to 1 (0 for
    an empty start row). float32 (n, m)."""
    p0 = np.asarray(row_normalize(sp.csr_matrix(start, dtype=np.float32)).todense())  # (n, m)
    dangling = np.asarray(transition.sum(axis=1)).ravel() == 0  # (m,)
    PT = transition.T.tocsr()
    r = p0.copy()
    for _ in range(iterations):
        lost = r[:, dangling].sum(axis=1, keepdims=True)  # (n, 1)
        r = (1.0 - restart) * ((PT @ r.T).T + lost * p0) + restart * p0  # (n, m)
    return r.astype(np.float32)


class GraphRecommender(Recommender):
    """Personalised PageRank over the mixed semantic + co-occurrence item graph.

    Parameters
    ----------
    k : neighbours kept per item, for each kind of edge.
    semantic_weight : share of the walk that follows semantic edges (items that have both kinds).
    restart : restart probability of the walk; high = stay near the history, low = wander further
        (toward well-connected, often popular, items).
    beta : popularity penalty, scores divided by in-degree ** beta (0: plain PageRank).
    shrink : co-occurrence cosine shrinkage (as in ``itemknn``).
    iterations : power iterations; the error after ``t`` is at most ``(1 - restart) ** t``.

    ``param_grid`` (24 points, each fit ~10 s on ml-latest-small with 2 cores): ``k`` in {20, 50},
    ``semantic_weight`` in {0.2, 0.5}, ``restart`` in {0.3, 0.6}, ``beta`` in {0, 0.25, 0.5}.

    Examples
    --------
    >>> model = GraphRecommender(k=50).fit(train, item_embeddings=vectors)  # doctest: +SKIP
    >>> model.export_edges("edges.csv", item_ids=dataset.item_vocab.ids)    # doctest: +SKIP
    """

    name = "graph"
    needs_embeddings = True
    param_grid = {"k": [20, 50], "semantic_weight": [0.2, 0.5], "restart": [0.3, 0.6],
                  "beta": [0.0, 0.25, 0.5]}

    def __init__(self, *, k: int = 50, semantic_weight: float = 0.3, restart: float = 0.5,
                 beta: float = 0.25, shrink: float = 10.0, iterations: int = 10) -> None:
        self.k = k
        self.semantic_weight = semantic_weight
        self.restart = restart
        self.beta = beta
        self.shrink = shrink
        self.iterations = iterations

    def _check_params(self) -> None:
        if int(self.k) < 1 or int(self.iterations) < 1 or float(self.shrink) < 0 or float(self.beta) < 0:
            raise ConfigError(f"graph: need k >= 1, iterations >= 1, shrink >= 0, beta >= 0; got "
                              f"k={self.k}, iterations={self.iterations}, shrink={self.shrink}, "
                              f"beta={self.beta}")
        if not 0.0 <= float(self.semantic_weight) <= 1.0 or not 0.0 < float(self.restart) <= 1.0:
            raise ConfigError(f"graph: need semantic_weight in [0, 1] and restart in (0, 1]; got "
                              f"{self.semantic_weight}, {self.restart}")

    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        self.item_vectors_ = np.ascontiguousarray(item_embeddings, dtype=np.float32)  # new items' edges
        self.semantic_ = semantic_edges(self.item_vectors_, int(self.k))
        self.seen_ = sp.csr_matrix(X.csr, dtype=np.float32)
        self.top_ = cosine_topk(X.csr, int(self.k), float(self.shrink))  # per target; symmetrised below
        self._build()

    def _text_dim(self) -> int | None:
        return int(self.item_vectors_.shape[1])

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """New edges: a new item's ``k`` nearest texts (both ways), and the co-occurrence lists of
        every item in the history of a user with new events (``itemknn``'s rule); the walk runs
        on the rebuilt transition matrix."""
        n = new.n_items
        if new_items is not None:
            vectors = np.concatenate([self.item_vectors_, np.asarray(new_items, np.float32)])
            self.semantic_ = grown(self.semantic_, n, n).maximum(semantic_edges(vectors, int(self.k), first=len(self.item_vectors_)))
            self.item_vectors_ = vectors
        after, users, _ = absorb(self.seen_, new)
        items = np.unique(after[users].indices)
        fresh = cosine_topk(after, int(self.k), float(self.shrink), columns=items)  # (n, len(items))
        self.top_ = relisted(self.top_, items, sp.csr_matrix(fresh.T), by_column=True)
        self.seen_ = after
        self._build()

    def _build(self) -> None:
        self.cooccurrence_ = self.top_.maximum(self.top_.T).tocsr()
        self.transition_ = transition_matrix(self.semantic_, self.cooccurrence_, float(self.semantic_weight))
        in_degree = np.asarray(self.transition_.sum(axis=0)).ravel()  # (n_items,)
        penalty = np.power(np.maximum(in_degree, 1e-6), -float(self.beta))
        self.penalty_ = penalty.astype(np.float32)  # (n_items,) multiplies the PageRank scores

    def _score(self, queries: HistoryBatch) -> np.ndarray:
        ranks = personalized_pagerank(queries.csr(), self.transition_, float(self.restart), int(self.iterations))
        return ranks * self.penalty_  # (n, n_items)

    def _explain_row(self, query: HistoryBatch, item: int) -> Explanation:
        """The walk mass each history item sends to ``item`` (a walk restarting at that item alone;
        the user's walk starts from all of them)."""
        history = query.row(0)
        if len(history) == 0:
            return Explanation(item, "model", self.name)
        starts = sp.csr_matrix((np.ones(len(history), np.float32), (np.arange(len(history)), history)),
                               shape=(len(history), self.n_items_))
        mass = personalized_pagerank(starts, self.transition_, float(self.restart), int(self.iterations))
        return Explanation(item, "history", self.name, top_evidence(history, mass[:, item]))

    # -- inspection ---------------------------------------------------------------------------
    def edges(self, item_ids: Sequence[str] | np.ndarray | None = None) -> pd.DataFrame:
        """Every directed edge as rows ``src_item_id, dst_item_id, weight, kind`` (weight = the
        cosine before mixing); ids are ``item_ids[index]`` when given, else item indices."""
        self._check_fitted()
        frames = []
        for kind, matrix in zip(EDGE_KINDS, (self.semantic_, self.cooccurrence_), strict=True):
            coo = matrix.tocoo()
            frames.append(pd.DataFrame({"src_item_id": coo.row, "dst_item_id": coo.col,
                                        "weight": coo.data.astype(np.float64), "kind": kind}))
        table = pd.concat(frames, ignore_index=True)
        if item_ids is not None:
            ids = np.asarray(item_ids)
            table["src_item_id"] = ids[table["src_item_id"].to_numpy()]
            table["dst_item_id"] = ids[table["dst_item_id"].to_numpy()]
        return table

    def export_edges(self, path: str | Path, *, item_ids: Sequence[str] | np.ndarray | None = None) -> Path:
        """Write ``edges(item_ids)`` as CSV (for inspection, e.g. in a graph viewer)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.edges(item_ids).to_csv(path, index=False)
        return path

    # -- persistence --------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        return {**pack_csr("semantic", self.semantic_), **pack_csr("top", self.top_), **pack_csr("seen", self.seen_),
                "item_vectors": self.item_vectors_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = self.n_items_
        self.semantic_, self.top_, self.seen_ = (unpack_csr(key, arrays, n) for key in ("semantic", "top", "seen"))
        self.item_vectors_ = arrays["item_vectors"]
        self._build()
