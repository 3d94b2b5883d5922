"""Nearest neighbours over unit vectors (inner product = cosine) with faiss, addressed by int64 ids.

Kinds:
- ``exact``: ``IndexIDMap2(IndexFlatIP)``, brute force, the reference; ``remove`` deletes in place.
- ``fp16``: the same brute force over vectors stored as float16 (``IndexScalarQuantizer`` QT_fp16):
  half the memory and half the bytes a search streams, which is what a scan of a large matrix on a
  busy machine waits on; scores within ~1e-3 of ``exact`` (near-ties can swap). No training.
- ``hnsw``: ``IndexHNSWFlat`` (METRIC_INNER_PRODUCT, M=32). faiss cannot delete from an HNSW graph,
  so ``remove`` marks the rows dead (tombstones); ``search`` over-fetches, drops dead rows and
  fetches more if a query came up short, and the graph is rebuilt from the live rows only once
  tombstones exceed ``rebuild_fraction`` of it. Ids map to graph rows through our own arrays, so a
  removed id can be added again.
- ``ivf``: ``IndexIVFFlat`` (inner product), trained on the first ``add`` (``nlist`` ~ sqrt(n)),
  ``nprobe`` lists scanned per query; ``remove`` deletes in place.
- ``ivfpq``: ``IndexIVFPQ``, the ivf lists holding ``pq_m`` x ``pq_bits`` product-quantised codes
  instead of vectors (48 B a 384-d item at 48 x 8 vs 1536 B): what fits 1e8 items in RAM, at a
  recall the codes cap (scores are approximate; re-rank a larger fetch exactly for more).
``add`` with an id already present replaces its vector. Missing results are id -1, score -inf.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import faiss
import numpy as np

from longtail.common.files import atomic_writer
from longtail.errors import ConfigError, LongtailError

KINDS = ("exact", "fp16", "hnsw", "ivf", "ivfpq")
FORMAT = "longtail-vector-index/1"
NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class IndexConfig:
    """Index settings (saved with the index). ``nlist=None``: ~sqrt(n) at the first add (ivf,
    ivfpq); ``pq_m`` (divides ``dim``) and ``pq_bits`` size an ivfpq code."""

    dim: int
    kind: str = "exact"
    m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 16
    rebuild_fraction: float = 0.25
    num_threads: int | None = None
    pq_m: int = 48
    pq_bits: int = 8

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"index kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("dim", "m", "ef_construction", "ef_search", "nprobe"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.nlist is not None and self.nlist < 1:
            raise ConfigError(f"nlist must be >= 1, got {self.nlist}")
        if not 0 < self.rebuild_fraction <= 1:
            raise ConfigError(f"rebuild_fraction must be in (0, 1], got {self.rebuild_fraction}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1 or None, got {self.num_threads}")
        if self.kind == "ivfpq" and (self.pq_m < 1 or self.dim % self.pq_m or not 1 <= self.pq_bits <= 16):
            raise ConfigError(f"ivfpq needs pq_m dividing dim={self.dim} and 1 <= pq_bits <= 16, "
                              f"got pq_m={self.pq_m}, pq_bits={self.pq_bits}")


@contextmanager
def _threads(num_threads: int | None) -> Iterator[None]:
    """faiss' OpenMP threads for one call (None: faiss' default, all cores), then restored."""
    if num_threads is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(num_threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _as_ids(ids: Iterable[int] | np.ndarray) -> np.ndarray:
    array = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ConfigError(f"ids must be a 1-D array of integers, got {array.dtype} {array.shape}")
    return array.astype(np.int64, copy=False)


class VectorIndex:
    """k-nearest-neighbour search by inner product over unit vectors, with external int64 ids.

    Examples
    --------
    >>> index = VectorIndex(384, "hnsw", ef_search=128)           # doctest: +SKIP
    >>> index.add(item_ids, vectors)                              # doctest: +SKIP
    >>> ids, scores = index.search(query_vectors, k=20, exclude=[seen_a, seen_b])  # doctest: +SKIP
    """

    def __init__(self, dim: int, kind: str = "exact", *, m: int = 32, ef_construction: int = 200,
                 ef_search: int = 128, nlist: int | None = None, nprobe: int = 16,
                 rebuild_fraction: float = 0.25, num_threads: int | None = None, pq_m: int = 48,
                 pq_bits: int = 8) -> None:
        self.config = IndexConfig(dim, kind, m, ef_construction, ef_search, nlist, nprobe,
                                  rebuild_fraction, num_threads, pq_m, pq_bits)
        # ivf / ivfpq: made (trained) at the first add
        self._index: Any = self._empty_index() if kind not in ("ivf", "ivfpq") else None
        self._slot: dict[int, int] = {}  # live id -> graph row (hnsw) / the id itself (others)
        self._labels = np.zeros(0, dtype=np.int64)  # hnsw: graph row -> id
        self._alive = np.zeros(0, dtype=bool)  # hnsw: graph row not removed

    def __repr__(self) -> str:
        return f"VectorIndex(dim={self.dim}, kind={self.kind!r}, n={len(self)})"

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def kind(self) -> str:
        return self.config.kind

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, (int, np.integer)) and int(item_id) in self._slot

    @property
    def ids(self) -> np.ndarray:
        """Live ids, ascending."""
        return np.sort(np.fromiter(self._slot, dtype=np.int64, count=len(self._slot)))

    @property
    def faiss_index(self) -> Any:
        """The underlying faiss index (inspection only: rows are not ids for hnsw; None for an
        ivf index before its first add). ``config.ef_search``/``nprobe`` may be changed between
        searches with ``dataclasses.replace``."""
        return self._index

    @property
    def n_tombstones(self) -> int:
        """Removed rows still inside the HNSW graph (always 0 for the other kinds)."""
        return int(len(self._alive) - self._alive.sum()) if self.kind == "hnsw" else 0

    # -- building -----------------------------------------------------------------------------
    def _empty_index(self) -> Any:
        c = self.config
        if c.kind == "exact":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(c.dim))
        if c.kind == "fp16":
            half = faiss.IndexScalarQuantizer(c.dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
            return faiss.IndexIDMap2(half)
        if c.kind == "hnsw":
            index = faiss.IndexHNSWFlat(c.dim, c.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = c.ef_construction
            index.hnsw.efSearch = c.ef_search
            return index
        raise AssertionError("ivf indexes are made by _make_ivf")

    def _make_ivf(self, training: np.ndarray) -> None:
        n = len(training)
        nlist = self.config.nlist or max(1, min(round(math.sqrt(n)), n // 39 or 1))
        if nlist > n:
            raise ConfigError(f"ivf needs at least nlist={nlist} vectors in its first add, got {n}")
        if self.kind == "ivfpq" and n < 2 ** self.config.pq_bits:  # faiss' k-means needs a point per code
            raise ConfigError(f"ivfpq needs at least {2 ** self.config.pq_bits} vectors in its first add, got {n}")
        quantizer = faiss.IndexFlatIP(self.dim)
        if self.kind == "ivfpq":
            index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, self.config.pq_m, self.config.pq_bits,
                                     faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(training)
        index.nprobe = min(self.config.nprobe, nlist)
        self._quantizer = quantizer  # the IVF index does not own it: keep it alive
        self._index = index

    def _check_vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise ConfigError(f"{what} must be (n, {self.dim}), got {np.shape(vectors)}")
        if not np.all(np.isfinite(array)):
            raise ConfigError(f"{what} contain NaN or infinite values")
        return np.ascontiguousarray(array)

    def add(self, ids: Sequence[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add unit ``vectors`` (n, dim) under ``ids`` (n,); an id already present is replaced."""
        id_array = _as_ids(ids)
        array = self._check_vectors(vectors, "vectors")
        if len(id_array) != len(array):
            raise ConfigError(f"{len(id_array)} ids for {len(array)} vectors")
        if len(np.unique(id_array)) != len(id_array):
            raise ConfigError("ids passed to add() must be distinct")
        if len(array) == 0:
            return
        norms = np.linalg.norm(array, axis=1)  # (n,)
        if np.any(np.abs(norms - 1.0) > NORM_TOLERANCE):
            raise ConfigError("VectorIndex holds unit vectors (inner product = cosine); normalise them")
        present = [i for i in id_array.tolist() if i in self._slot]
        if present:
            self.remove(present)
        with _threads(self.config.num_threads):
            if self.kind == "hnsw":
                start = self._index.ntotal
                self._index.add(array)
                self._labels = np.concatenate([self._labels, id_array])
                self._alive = np.concatenate([self._alive, np.ones(len(id_array), dtype=bool)])
                self._slot.update(zip(id_array.tolist(), range(start, start + len(id_array)), strict=True))
                return
            if self._index is None:
                self._make_ivf(array)
            self._index.add_with_ids(array, id_array)
        self._slot.update((i, i) for i in id_array.tolist())

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove ``ids`` (unknown ones are ignored); returns how many were removed. No rebuild:
        exact/fp16/ivf/ivfpq delete in place, hnsw marks tombstones (rebuilt past ``rebuild_fraction``)."""
        known = [i for i in _as_ids(ids).tolist() if i in self._slot]
        if not known:
            return 0
        if self.kind == "hnsw":
            self._alive[[self._slot.pop(i) for i in known]] = False
            if self.n_tombstones > self.config.rebuild_fraction * len(self._alive):
                self.rebuild()
            return len(known)
        removed = self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(known, dtype=np.int64)))
        if removed != len(known):
            raise LongtailError(f"faiss removed {removed} of {len(known)} ids; the index is inconsistent")
        for i in known:
            del self._slot[i]
        return len(known)

    def rebuild(self) -> None:
        """HNSW: a new graph from the live rows only (drops tombstones). No-op for other kinds."""
        if self.kind != "hnsw" or self.n_tombstones == 0:
            return
        live = np.flatnonzero(self._alive)
        vectors = self._index.reconstruct_n(0, self._index.ntotal)[live] if len(live) else None
        labels = self._labels[live]
        self._index = self._empty_index()
        self._labels = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._slot = {}
        if vectors is not None:
            self.add(labels, vectors)

    # -- searching ----------------------------------------------------------------------------
    def _raw_search(self, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss top-``fetch`` as (ids (nq, fetch), scores, valid mask) with tombstones invalid."""
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.config.ef_search, fetch))
            scores, rows = self._index.search(queries, fetch, params=params)
            safe = np.maximum(rows, 0)
            ids = np.where(rows >= 0, self._labels[safe], -1)
            ids[(rows >= 0) & ~self._alive[safe]] = -2  # tombstone: not a result, not the end
            return ids, scores
        if self.kind in ("ivf", "ivfpq"):
            params = faiss.SearchParametersIVF(nprobe=min(self.config.nprobe, self._index.nlist))
            return self._index.search(queries, fetch, params=params)[::-1]
        scores, ids = self._index.search(queries, fetch)
        return ids, scores

    def search(self, queries: np.ndarray, k: int,
               exclude: Iterable[int] | Sequence[Iterable[int]] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ids (nq, k) int64 and scores (nq, k) float32, best first.

        ``exclude``: ids never returned -- one collection for every query, or one per query (a
        sequence of nq collections). Rows with fewer than ``k`` results are padded with -1/-inf."""
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        array = self._check_vectors(queries, "queries")
        nq = len(array)
        out_ids = np.full((nq, k), -1, dtype=np.int64)
        out_scores = np.full((nq, k), -np.inf, dtype=np.float32)
        n_rows = 0 if self._index is None else int(self._index.ntotal)
        if nq == 0 or len(self) == 0:
            return out_ids, out_scores
        per_query = _per_query_exclusions(exclude, nq)
        most_excluded = max((len(e) for e in per_query), default=0)
        shared = per_query[0] if all(e is per_query[0] for e in per_query) else None
        # expect dead rows in proportion; a short row is fetched again with twice as many
        fetch = min(n_rows, math.ceil((k + most_excluded) * n_rows / len(self)) + 8)
        pending = np.arange(nq)
        with _threads(self.config.num_threads):
            while len(pending):
                ids, scores = self._raw_search(array[pending], fetch)  # (len(pending), fetch)
                valid = ids >= 0
                if shared is not None:
                    valid &= ~np.isin(ids, shared)
                else:
                    for j, q in enumerate(pending):
                        valid[j] &= ~np.isin(ids[j], per_query[q])
                exhausted = (fetch >= n_rows) | np.any(ids == -1, axis=1)
                done = (valid.sum(axis=1) >= k) | exhausted
                order = np.argsort(~valid, axis=1, kind="stable")[:, :k]  # valid first, rank kept
                take = min(k, fetch)
                sel_ids = np.take_along_axis(ids, order, axis=1)[:, :take]
                sel_scores = np.take_along_axis(scores, order, axis=1)[:, :take]
                sel_valid = np.take_along_axis(valid, order, axis=1)[:, :take]
                rows = pending[done]
                out_ids[rows, :take] = np.where(sel_valid[done], sel_ids[done], -1)
                out_scores[rows, :take] = np.where(sel_valid[done], sel_scores[done], -np.inf)
                pending = pending[~done]
                fetch = min(n_rows, fetch * 2)
        return out_ids, out_scores

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write one file atomically (temp file, fsync, ``os.replace``): faiss index, settings
        and the id/tombstone arrays together, so they can never disagree."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "config": asdict(self.config), "ids": len(self)}
        blob = faiss.serialize_index(self._index) if self._index is not None else np.zeros(0, np.uint8)
        slots = np.fromiter(self._slot.items(), dtype=np.dtype((np.int64, 2)), count=len(self._slot))
        with atomic_writer(path) as handle:
            np.savez(handle, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                     faiss=blob, labels=self._labels, alive=self._alive, slots=slots.reshape(-1, 2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read an index written by ``save``; a clear error for anything else."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(data["meta"].tobytes().decode())
                blob, labels, alive, slots = data["faiss"], data["labels"], data["alive"], data["slots"]
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise LongtailError(f"cannot read vector index {path}: {exc}") from exc
        if meta.get("format") != FORMAT:
            raise LongtailError(f"{path} is not a longtail vector index ({meta.get('format')!r})")
        self = cls(**meta["config"])
        if blob.size:
            self._index = faiss.deserialize_index(blob)
            if self.kind in ("ivf", "ivfpq"):
                self._quantizer = self._index.quantizer
        self._labels, self._alive = labels.astype(np.int64), alive.astype(bool)
        self._slot = dict(zip(slots[:, 0].tolist(), slots[:, 1].tolist(), strict=True))
        return self


def _per_query_exclusions(exclude: Any, nq: int) -> list[np.ndarray]:
    """``exclude`` as one int64 array per query."""
    if exclude is None:
        return [np.zeros(0, dtype=np.int64)] * nq
    if isinstance(exclude, np.ndarray) and exclude.ndim == 1:
        shared = _as_ids(exclude)
        return [shared] * nq
    items = list(exclude)
    nested = [not isinstance(e, (int, np.integer)) for e in items]
    if items and all(nested):
        if len(items) != nq:
            raise ConfigError(f"exclude has {len(items)} collections for {nq} queries")
        return [_as_ids(e) for e in items]
    if any(nested):
        raise ConfigError("exclude is either ids for every query or one collection of ids per query")
    shared = _as_ids(items)
    return [shared] * nq
