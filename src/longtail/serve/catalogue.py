"""The live catalogue: the artifact's items plus items posted since, with their vectors and indexes.

Append-only, so a reader never needs a lock: ``snapshot()`` returns the vector buffer and the item
count together (one tuple, swapped atomically), and rows below that count never change. Growth
doubles the buffer (amortised O(1) per item) into a new array; readers holding the old one keep a
valid view. The faiss indexes need a readers-writer lock: searches may run together (faiss
releases the GIL), but ``add`` must run alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import numpy as np

from longtail.text.index import VectorIndex


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class Catalogue:
    """Item ids <-> indices, titles, texts, unit vectors, live popularity, and the ``all`` index
    (every item: ``/similar``). Indices ``< n_model`` are the model's columns; ``/recommend``
    reads the vectors snapshot (the ranking pipeline's text fallback), not an index."""

    def __init__(self, ids: list[str], titles: list[str], texts: list[str], vectors: np.ndarray,
                 popularity: np.ndarray) -> None:
        n, dim = vectors.shape
        self.n_model = n
        self.dim = dim
        self.ids = list(ids)
        self.positions = {item_id: i for i, item_id in enumerate(self.ids)}
        self.titles = list(titles)
        self.texts = list(texts)
        capacity = max(16, int(n * 1.25))
        buffer = np.zeros((capacity, dim), dtype=np.float32)
        buffer[:n] = vectors
        self._snap = (buffer, n)
        self.popularity = np.zeros(capacity, dtype=np.int64)
        self.popularity[:n] = popularity
        self._index_lock = ReadWriteLock()
        # one OpenMP thread per search: requests run in parallel threads already, and OpenMP spinning
        # on a busy 2-core machine made a 10k-row search take ~20 ms instead of ~1 ms
        self.all = VectorIndex(dim, "exact", num_threads=1)
        self.all.add(np.arange(n), vectors)

    def __len__(self) -> int:
        return self._snap[1]

    def snapshot(self) -> tuple[np.ndarray, int]:
        """(vectors (n, dim) view, n) of the items added so far; safe without a lock."""
        buffer, n = self._snap
        return buffer[:n], n

    def index_of(self, item_id: str) -> int | None:
        return self.positions.get(item_id)

    def add(self, ids: list[str], titles: list[str], texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """Append new items (caller holds the state's write lock; ids are new). Returns their indices.

        All or nothing: the vectors go to rows no reader sees yet and into the index first; ids,
        titles and texts join only once that succeeded, so a failing index add leaves the
        catalogue as it was and shifts no later item's index."""
        buffer, n = self._snap
        m = len(ids)
        popularity = self.popularity
        if n + m > len(buffer):
            capacity = max(2 * len(buffer), n + m)
            grown = np.zeros((capacity, self.dim), dtype=np.float32)
            grown[:n] = buffer[:n]
            popularity = np.zeros(capacity, dtype=np.int64)
            popularity[:n] = self.popularity[:n]
            buffer = grown
        buffer[n:n + m] = vectors  # rows >= n: outside every published snapshot
        new = np.arange(n, n + m, dtype=np.int64)
        with self._index_lock.writing():
            try:
                self.all.add(new, vectors)
            except BaseException:
                with suppress(Exception):  # whatever part of the batch went in
                    self.all.remove(new)
                raise
            self.ids.extend(ids)
            self.titles.extend(titles)
            self.texts.extend(texts)
            self.popularity = popularity
            # published after its data, with the indexes: a reader sees whole items only, and a
            # search (read lock) never meets an id its snapshot does not hold
            self._snap = (buffer, n + m)
        for offset, item_id in enumerate(ids):
            self.positions[item_id] = n + offset
        return new

    def search_all(self, queries: np.ndarray, k: int, exclude: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        with self._index_lock.reading():
            return self.all.search(queries, k, exclude=exclude)
