"""String ids <-> contiguous int indices.

Ids are sorted as strings, so index order *is* the protocol's tie-break order (``item_id``
ascending); the mapping depends only on the set of ids, which makes it stable across runs.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from longtail.common.files import atomic_write_text
from longtail.data.validate import arrow_strings
from longtail.errors import LongtailError


class IdVocab:
    """A sorted, immutable vocabulary of string ids. New ids are appended (serving), never reordered."""

    def __init__(self, ids: np.ndarray | list[str] | pa.Array) -> None:
        self._arrow = ids.cast(pa.large_string()) if isinstance(ids, pa.Array) else pa.array(
            np.asarray(ids, dtype=object), type=pa.large_string()
        )
        if self._arrow.null_count or pc.count_distinct(self._arrow).as_py() != len(self._arrow):
            raise LongtailError("IdVocab: ids must be unique and non-null")
        self.ids = self._arrow.to_numpy(zero_copy_only=False).astype(object)

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {item_id: n for n, item_id in enumerate(self.ids)}

    @classmethod
    def from_values(cls, values: pd.Series | np.ndarray) -> IdVocab:
        """Build from any column of ids (duplicates allowed), sorted as strings.

        Arrow sorts UTF-8 bytewise, which is code-point order: the same order as sorting ``str``.
        """
        unique = pc.unique(arrow_strings(values))
        return cls(unique.take(pc.sort_indices(unique)))

    @classmethod
    def encode(cls, values: pd.Series | np.ndarray) -> tuple[IdVocab, np.ndarray]:
        """The sorted vocabulary of ``values`` and their int32 indices, in one hashing pass."""
        arrow = arrow_strings(values)
        if isinstance(arrow, pa.ChunkedArray):
            arrow = arrow.combine_chunks()
        encoded = pc.dictionary_encode(arrow)
        order = pc.sort_indices(encoded.dictionary).to_numpy()
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        return cls(encoded.dictionary.take(order)), rank[encoded.indices.to_numpy(zero_copy_only=False)]

    @classmethod
    def sorting(cls, unique_values: pd.Series | np.ndarray) -> tuple[IdVocab, np.ndarray]:
        """The vocabulary of already-unique ``unique_values`` and the order that sorts them."""
        arrow = arrow_strings(unique_values)
        order = pc.sort_indices(arrow)
        return cls(arrow.take(order).combine_chunks() if isinstance(arrow, pa.ChunkedArray)
                   else arrow.take(order)), order.to_numpy()

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._positions

    def index(self, ids: pd.Series | np.ndarray | list[str], *, strict: bool = True) -> np.ndarray:
        """Map ids to int32 indices; unknown ids raise (``strict``) or map to -1."""
        out = pc.index_in(arrow_strings(ids), value_set=self._arrow).to_numpy(zero_copy_only=False)
        out = np.where(np.isnan(out), -1, out) if out.dtype.kind == "f" else out
        if strict and (out < 0).any():
            unknown = np.asarray(ids, dtype=object)[out < 0][:5]
            raise LongtailError(f"unknown ids: {', '.join(map(str, unknown))}")
        return out.astype(np.int32)

    def extend(self, new_ids: list[str]) -> IdVocab:
        """A new vocabulary with unseen ``new_ids`` appended at the end (existing indices unchanged)."""
        fresh = [i for i in dict.fromkeys(map(str, new_ids)) if i not in self._positions]
        return IdVocab(np.concatenate([self.ids, np.asarray(fresh, dtype=object)]))

    def save(self, path: str | Path) -> None:
        """Write the mapping as JSON (a list: position = index), atomically."""
        atomic_write_text(path, json.dumps(self.ids.tolist()))

    @classmethod
    def load(cls, path: str | Path) -> IdVocab:
        return cls(np.asarray(json.loads(Path(path).read_text(encoding="utf-8")), dtype=object))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdVocab) and np.array_equal(self.ids, other.ids)

    __hash__ = None  # type: ignore[assignment]

