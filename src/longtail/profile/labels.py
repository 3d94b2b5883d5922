"""Item -> genre (or category) labels as a sparse matrix.

A catalogue names its labels in ``genres`` (MovieLens) or ``categories`` (Amazon), pipe-separated.
A column without pipes (amazon-scientific: one category path per item) counts each value as one
label, less the words every value starts with ("Industrial & Scientific"). Labels carried by more
than ``max_share`` of the catalogue ("CDs & Vinyl", "Digital Music", "Pop" on 98% of the music
sample) say nothing about one person and are dropped, as is MovieLens' "(no genres listed)".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

LABEL_COLUMNS = ("genres", "genre", "categories", "category")
NO_LABEL = {"(no genres listed)", ""}


@dataclass(frozen=True, eq=False)
class ItemLabels:
    """``matrix``: (n_items, n_labels) float32 CSR, 1 where the item carries the label."""

    names: np.ndarray  # (n_labels,) str
    matrix: sp.csr_matrix
    column: str | None  # the catalogue column they came from (None: no label column)


def _common_prefix_words(values: list[str]) -> str:
    """The words every value starts with (whole words only), with the trailing space."""
    if not values:
        return ""
    split = [v.split(" ") for v in values]
    prefix: list[str] = []
    for words in zip(*split, strict=False):
        if len(set(words)) != 1:
            break
        prefix.append(words[0])
    # never strip a whole value: a one-category catalogue keeps its one label
    if prefix and any(len(words) <= len(prefix) for words in split):
        prefix = prefix[:-1]
    return " ".join(prefix) + " " if prefix else ""


def item_labels(items: pd.DataFrame, *, max_share: float = 0.9) -> ItemLabels:
    """The label matrix of the catalogue's first label column (see the module docstring)."""
    column = next((c for c in LABEL_COLUMNS if c in items.columns), None)
    if column is None:
        return ItemLabels(np.zeros(0, dtype=object), sp.csr_matrix((len(items), 0), dtype=np.float32), None)
    values = items[column].fillna("").astype(str).str.strip().reset_index(drop=True)
    if values.str.contains("|", regex=False).any():
        exploded = values.str.split("|").explode()
    else:
        prefix = _common_prefix_words(values[values != ""].tolist())
        exploded = values.str.slice(len(prefix)) if prefix else values
    exploded = exploded.astype(str).str.strip()
    keep = ~exploded.isin(NO_LABEL)
    rows = exploded.index.to_numpy()[keep.to_numpy()]
    codes, names = pd.factorize(exploded[keep], sort=True)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, codes)), shape=(len(items), len(names)))
    matrix.data[:] = 1.0  # a label repeated on one item counts once
    share = np.asarray(matrix.sum(axis=0)).ravel() / max(len(items), 1)  # (n_labels,)
    informative = np.flatnonzero(share <= max_share)
    return ItemLabels(np.asarray(names, dtype=object)[informative], matrix[:, informative].tocsr(), column)
