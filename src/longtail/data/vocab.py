"""String ids <-> contiguous int indices.

Ids are sorted as strings, so index order *is* the protocol's tie-break order (``item_id``
ascending); the mapping depends only on the set of ids, which makes it stable across runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from longtail.errors import LongtailError


class IdVocab:
    """A sorted, immutable vocabulary of string ids. New ids are appended (serving), never reordered."""

    def __init__(self, ids: np.ndarray | list[str]) -> None:
        self.ids = np.asarray(ids, dtype=object)
        self._index = pd.Index(self.ids)
        if not self._index.is_unique:
            raise LongtailError("IdVocab: ids must be unique")

    @classmethod
    def from_values(cls, values: pd.Series | np.ndarray) -> IdVocab:
        """Build from any column of ids (duplicates allowed), sorted as strings."""
        return cls(np.sort(pd.unique(np.asarray(values, dtype=object)).astype(str)).astype(object))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def index(self, ids: pd.Series | np.ndarray | list[str], *, strict: bool = True) -> np.ndarray:
        """Map ids to int32 indices; unknown ids raise (``strict``) or map to -1."""
        out = self._index.get_indexer(np.asarray(ids, dtype=object))
        if strict and (out < 0).any():
            unknown = np.asarray(ids, dtype=object)[out < 0][:5]
            raise LongtailError(f"unknown ids: {', '.join(map(str, unknown))}")
        return out.astype(np.int32)

    def extend(self, new_ids: list[str]) -> IdVocab:
        """A new vocabulary with unseen ``new_ids`` appended at the end (existing indices unchanged)."""
        fresh = [i for i in dict.fromkeys(map(str, new_ids)) if i not in self._index]
        return IdVocab(np.concatenate([self.ids, np.asarray(fresh, dtype=object)]))

    def save(self, path: str | Path) -> None:
        """Write the mapping as JSON (a list: position = index), atomically."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.ids.tolist(), handle)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> IdVocab:
        return cls(np.asarray(json.loads(Path(path).read_text(encoding="utf-8")), dtype=object))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdVocab) and np.array_equal(self.ids, other.ids)

    __hash__ = None  # type: ignore[assignment]
