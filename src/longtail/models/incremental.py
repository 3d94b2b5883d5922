"""What ``Recommender.partial_fit`` shares: checking an update before anything changes, growing the
interaction matrix some models keep, and finding what an update touched.

An update is ``(new_interactions, new_items)``: only the new positives, in the fit's index space
(user indices continue the fit's, new users appended; item columns are the model's items followed
by the new ones), and the unit text vectors of the new items, in column order. A new item needs its
text and nothing else; an item column beyond them is refused before any state changes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from longtail.data.interactions import Interactions
from longtail.errors import ConfigError


def check_update(name: str, n_items: int, new_interactions: Interactions,
                 new_items: np.ndarray | None, dim: int | None = None) -> np.ndarray | None:
    """The new items' vectors (float32 (m, d), or None when there are none) once the update is
    known to be consistent; a ``ConfigError`` naming what is wrong otherwise.

    ``dim``: the text dimension the model was fitted with (None: the model reads no text)."""
    if not isinstance(new_interactions, Interactions):
        raise TypeError(f"partial_fit expects longtail.data.Interactions, got {type(new_interactions).__name__}")
    vectors = None
    if new_items is not None:
        vectors = np.asarray(new_items, dtype=np.float32)
        if vectors.ndim != 2 or not np.all(np.isfinite(vectors)):
            raise ConfigError(f"{name}: new_items must be a finite (n_new_items, d) array of text vectors")
        if dim is not None and len(vectors) and vectors.shape[1] != dim:
            raise ConfigError(f"{name}: new_items have {vectors.shape[1]}-d vectors, the model's items {dim}-d "
                              "(encode them with the encoder the model was fitted with)")
        if not len(vectors):
            vectors = None
    known = n_items + (0 if vectors is None else len(vectors))
    if new_interactions.n_items > known:
        unknown = np.flatnonzero(new_interactions.item_counts()[known:]) + known
        shown = ", ".join(str(int(i)) for i in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise ConfigError(
            f"{name}: new interactions name item column(s) {shown or known} beyond the model's {n_items} "
            f"items and the {known - n_items} new item(s) given: a new item needs its text (new_items)")
    if new_interactions.n_items != known:
        raise ConfigError(f"{name}: new interactions have {new_interactions.n_items} item columns, the model "
                          f"{n_items} (+ {known - n_items} new item(s)): index them in the fit's item space")
    return vectors


def grown(matrix: sp.csr_matrix, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """``matrix`` padded with empty rows and columns to (n_rows, n_cols)."""
    rows, cols = matrix.shape
    if n_rows < rows or n_cols < cols:
        raise ConfigError(f"an update cannot shrink the matrix ({rows} x {cols} -> {n_rows} x {n_cols})")
    if (n_rows, n_cols) == (rows, cols):
        return matrix
    indptr = np.concatenate([matrix.indptr, np.full(n_rows - rows, matrix.indptr[-1], matrix.indptr.dtype)])
    return sp.csr_matrix((matrix.data, matrix.indices, indptr), shape=(n_rows, n_cols))


def merged(matrix: sp.csr_matrix, new: Interactions) -> sp.csr_matrix:
    """The binary union of the users x items ``matrix`` and ``new``'s positives, grown to hold
    both (float32 CSR)."""
    n_users = max(matrix.shape[0], new.n_users)
    out = grown(sp.csr_matrix(matrix, dtype=np.float32), n_users, new.n_items) + grown(new.csr, n_users, new.n_items)
    out = sp.csr_matrix(out)
    out.data[:] = 1.0
    return out


def absorb(matrix: sp.csr_matrix, new: Interactions) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(``merged(matrix, new)``, the users whose row changed, the items whose column changed):
    what every model that keeps its interactions starts an update with."""
    after = merged(matrix, new)
    diff = sp.csr_matrix(after - grown(sp.csr_matrix(matrix, dtype=np.float32), *after.shape))
    diff.eliminate_zeros()
    users, items = diff.nonzero()
    return after, np.unique(users), np.unique(items)


def relisted(similarity: sp.csr_matrix, items: np.ndarray, lists: sp.csr_matrix, *, by_column: bool
             ) -> sp.csr_matrix:
    """``similarity`` grown to the catalogue of ``lists`` with the neighbour lists of ``items``
    replaced by ``lists`` (len(items), n_items): rows, or columns when ``by_column`` (lists kept
    per target item)."""
    n = lists.shape[1]
    base = grown(similarity, n, n)
    if by_column:
        return sp.csr_matrix(replace_rows(sp.csr_matrix(base.T), items, lists).T, dtype=np.float32)
    return sp.csr_matrix(replace_rows(base, items, lists), dtype=np.float32)


def pack_csr(key: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as the arrays a model's ``_state`` persists (``unpack_csr`` reads them)."""
    return {f"{key}.data": matrix.data, f"{key}.indices": matrix.indices, f"{key}.indptr": matrix.indptr}


def unpack_csr(key: str, arrays: dict[str, np.ndarray], n_cols: int) -> sp.csr_matrix:
    indptr = arrays[f"{key}.indptr"]
    return sp.csr_matrix((arrays[f"{key}.data"], arrays[f"{key}.indices"], indptr), shape=(len(indptr) - 1, n_cols))


def replace_rows(matrix: sp.csr_matrix, rows: np.ndarray, fresh: sp.csr_matrix) -> sp.csr_matrix:
    """``matrix`` with its rows ``rows`` replaced by the rows of ``fresh`` (len(rows), n_cols)."""
    keep = np.ones(matrix.shape[0], np.float32)
    keep[rows] = 0.0
    placed = sp.coo_matrix(fresh)
    placed = sp.csr_matrix((placed.data, (np.asarray(rows)[placed.row], placed.col)), shape=matrix.shape)
    out = sp.csr_matrix(sp.diags(keep) @ matrix + placed)
    out.eliminate_zeros()
    return out
