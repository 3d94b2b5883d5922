"""Row-wise top-k over the stored entries of a sparse score matrix (keywords, labels)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def sparse_topk(scores: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise top-``k`` of the stored entries of ``scores``: the best first, ties by smaller
    column. Returns CSR-like (indptr (n + 1,), columns, values) of the kept entries; a row with
    fewer than ``k`` entries keeps them all. One lexsort over all entries, no loop over rows."""
    scores = scores.tocsr()
    n = scores.shape[0]
    rows = np.repeat(np.arange(n), np.diff(scores.indptr))
    order = np.lexsort((scores.indices, -scores.data, rows))
    rank = np.arange(len(order)) - scores.indptr[rows[order]]
    kept = order[rank < k]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.minimum(np.diff(scores.indptr), k), out=indptr[1:])
    return indptr, scores.indices[kept].astype(np.int64), scores.data[kept]
