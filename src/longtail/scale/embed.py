"""``longtail embed --backend ray``: encode a catalogue with Ray Data, into the embedding cache.

The texts, keys and fingerprint are exactly those of ``longtail.text.embed_items`` (``item_texts``
with the same template and ``max_chars``; ``text_key``; the encoder's ``fingerprint``), so a later
local ``embed_items`` finds every vector in the cache and encodes nothing.

Only texts the cache lacks are encoded, each distinct text once. They are sorted by length and cut
into blocks of ``TextEncoder.texts_per_call``, the very blocks ``TextEncoder.encode`` would hand the
model in one process: every batch is padded alike, so a vector differs from the local one only by
what a different number of torch threads does to float sums (measured: ``benchmarks/ray_scaling.py``).
Ray Data maps the blocks over an actor pool (``concurrency=workers``), one encoder (one model load)
per actor (``ActorPoolStrategy``: ``concurrency=`` is deprecated since Ray 2.51), writes Parquet shards (``item_id``, ``key``, ``vector``) under a scratch folder, and the
driver merges them into the cache as one shard.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from longtail.scale.backend import Backend, RayBackend
from longtail.text import DEFAULT_TEMPLATE, EmbeddingCache, TextEncoder, embed_texts, item_texts
from longtail.text.cache import text_key
from longtail.text.similar import EmbedReport, embed_catalogue


class EncodeBlock:
    """The Ray Data callable: built once per actor, so each worker loads the model once."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder

    def __call__(self, batch: pd.DataFrame) -> object:
        """One length-sorted block of texts -> a table of (item_id, key, vector float32[d])."""
        import pyarrow as pa

        vectors = self.encoder.encode(batch["text"].tolist())  # (n, d) float32, unit rows
        flat = pa.array(np.ascontiguousarray(vectors).reshape(-1), type=pa.float32())
        return pa.table({"item_id": pa.array(batch["item_id"].tolist(), pa.string()),
                         "key": pa.array(batch["key"].tolist(), pa.string()),
                         "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})


def missing_texts(items: pd.DataFrame, texts: list[str], found: np.ndarray) -> pd.DataFrame:
    """The distinct texts the cache lacks (first item carrying each), in ``encode``'s order:
    longest first, ties in catalogue order."""
    first: dict[str, int] = {}
    for row, (text, hit) in enumerate(zip(texts, found, strict=True)):
        if not hit:
            first.setdefault(text, row)
    rows = list(first.values())
    frame = pd.DataFrame({"item_id": items["item_id"].astype(str).to_numpy()[rows] if rows else [],
                          "key": [text_key(texts[r]).hex() for r in rows],
                          "text": [texts[r] for r in rows]})
    order = np.argsort([-len(t) for t in frame["text"]], kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def read_shards(folder: Path) -> tuple[list[bytes], np.ndarray]:
    """Keys and (n, d) float32 vectors of every Parquet shard under ``folder``."""
    import pyarrow.parquet as pq

    files = sorted(folder.rglob("*.parquet"))
    if not files:
        return [], np.zeros((0, 0), np.float32)
    table = pq.read_table(files)
    column = table["vector"].combine_chunks()
    width = column.type.list_size
    vectors = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, width)
    return [bytes.fromhex(k) for k in table["key"].to_pylist()], vectors


def encode_with_ray(backend: RayBackend, frame: pd.DataFrame, encoder: TextEncoder, scratch: Path) -> None:
    """Encode ``frame``'s texts on ``backend.workers`` actors; Parquet shards land in ``scratch``."""
    data = backend.ray.data
    context = data.DataContext.get_current()
    bars, context.enable_progress_bars = context.enable_progress_bars, False
    size = encoder.texts_per_call
    blocks = [frame.iloc[i:i + size] for i in range(0, len(frame), size)]  # one block = one batch
    try:
        with _quiet("ray.data"):  # its chatter stays in the Ray session's log folder
            dataset = data.from_pandas(blocks)
            encoded = dataset.map_batches(EncodeBlock, fn_constructor_kwargs={"encoder": encoder},
                                          compute=data.ActorPoolStrategy(size=backend.workers), num_cpus=1,
                                          batch_size=size, batch_format="pandas")
            encoded.write_parquet(str(scratch))
    finally:
        context.enable_progress_bars = bars


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Only errors of logger ``name`` while the block runs; its level is restored afterwards."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def embed_catalogue_on(backend: Backend, items: pd.DataFrame, *, encoder: TextEncoder | None = None,
                       cache: EmbeddingCache | None = None, template: str | None = DEFAULT_TEMPLATE,
                       max_chars: int = 1000, scratch: Path | None = None) -> tuple[np.ndarray, EmbedReport]:
    """(n_items, d) float32 vectors of ``items`` and what it cost; every vector ends in ``cache``.

    ``backend``: local runs ``text.similar.embed_catalogue`` (what ``longtail embed`` always did);
    ray runs the Ray Data job. ``scratch``: where the Parquet shards go (default: a temporary
    folder here; on a real cluster, a folder every node can write and this process read)."""
    encoder = TextEncoder() if encoder is None else encoder
    cache = EmbeddingCache() if cache is None else cache
    if not isinstance(backend, RayBackend):
        return embed_catalogue(items, encoder=encoder, cache=cache, template=template, max_chars=max_chars)
    start = time.perf_counter()
    texts = item_texts(items, template, max_chars)
    found, _ = cache.get(encoder.fingerprint, [text_key(t) for t in texts])
    frame = missing_texts(items, texts, found)
    if len(frame):
        with tempfile.TemporaryDirectory(prefix="longtail-embed-", dir=scratch) as folder:
            encode_with_ray(backend, frame, encoder, Path(folder) / "shards")
            keys, vectors = read_shards(Path(folder) / "shards")
        if len(keys) != len(frame):
            raise RuntimeError(f"Ray Data wrote {len(keys)} vectors for {len(frame)} texts")
        cache.put(encoder.fingerprint, keys, vectors)
    vectors = embed_texts(texts, encoder=encoder, cache=cache)  # every text is cached now
    report = EmbedReport(len(texts), int(found.sum()), len(frame), int(vectors.shape[1]),
                         time.perf_counter() - start)
    return vectors, report
