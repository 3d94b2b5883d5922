"""``longtail recommend --all-users``: the top-k of every user, sharded, as Parquet files.

Every list comes out of the one ``RankingPipeline`` that ``evaluate`` measures and the service
serves, over the histories the caller built (the service's own, for an artifact). Users are cut into
shards of whole ranking batches (``backend.shards_of``), so a shard is ranked in exactly the batches
of a single run: the files do not depend on the backend or on the number of workers.

The job (pipeline + histories + ids) is put once (Ray: in the object store); each task ranks one
shard and returns its rows; this process writes ``part-NNNNN.parquet`` (``user_id``, ``rank``,
``item_id``, ``score``) as shards finish (no shared file system needed on a cluster) and then
``manifest.json`` with each file's rows and sha256.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longtail.common.files import atomic_write_text, atomic_writer, sha256_file
from longtail.data.history import HistoryBatch
from longtail.errors import ConfigError
from longtail.pipeline import RankingPipeline
from longtail.scale.backend import Backend, Shard, shards_of

FORMAT = "longtail.recommendations/1"
MANIFEST = "manifest.json"
COLUMNS = ("user_id", "rank", "item_id", "score")
SHARD_USERS = 256  # users per file (and per task): small enough to spread ml-latest-small's 610
BATCH_USERS = 128  # users ranked at once inside a shard: memory ~ batch x catalogue floats


@dataclass(frozen=True)
class BatchJob:
    """What every shard reads: the pipeline, every user's history (row r = ``user_ids[r]``) and
    the catalogue's ids (column j = ``item_ids[j]``)."""

    pipeline: RankingPipeline
    queries: HistoryBatch
    user_ids: np.ndarray  # (n_users,) str
    item_ids: np.ndarray  # (n_items,) str
    k: int = 10
    batch_size: int = BATCH_USERS
    exclude_seen: bool = True

    def __post_init__(self) -> None:
        if self.k < 1 or self.batch_size < 1:
            raise ConfigError(f"k and batch size must be >= 1, got {self.k} and {self.batch_size}")
        if len(self.user_ids) != len(self.queries) or len(self.item_ids) != self.queries.n_items:
            raise ConfigError(f"{len(self.user_ids)} user ids for {len(self.queries)} histories, "
                              f"{len(self.item_ids)} item ids for {self.queries.n_items} items")


def rank_shard(shard: Shard, job: BatchJob) -> Any:
    """The rows (pyarrow Table of ``COLUMNS``) of one shard's users, ranked batch by batch."""
    import pyarrow as pa

    lists, scores = [], []
    for first in range(shard.start, shard.stop, job.batch_size):
        rows = np.arange(first, min(first + job.batch_size, shard.stop))
        ranked = job.pipeline.recommend(job.queries[rows], job.k, exclude_seen=job.exclude_seen)
        lists.append(ranked.items)
        scores.append(ranked.scores)
    items = np.concatenate(lists) if lists else np.zeros((0, job.k), np.int32)  # (n, k), -1 = none
    values = np.concatenate(scores) if scores else np.zeros((0, job.k), np.float32)
    keep = items >= 0  # empty slots are only ever at the end of a list
    users = np.repeat(np.arange(shard.start, shard.stop), keep.sum(axis=1))
    ranks = np.broadcast_to(np.arange(1, items.shape[1] + 1, dtype=np.int32), items.shape)[keep]
    return pa.table({"user_id": pa.array(job.user_ids[users].tolist(), pa.string()),
                     "rank": pa.array(ranks, pa.int32()),
                     "item_id": pa.array(job.item_ids[items[keep]].tolist(), pa.string()),
                     "score": pa.array(values[keep], pa.float32())})


def _clear(out: Path) -> None:
    """Remove what an earlier run wrote here (its part files and manifest), nothing else."""
    for path in [*out.glob("part-*.parquet"), out / MANIFEST]:
        path.unlink(missing_ok=True)


def recommend_all(backend: Backend, job: BatchJob, out: Path, *, shard_users: int = SHARD_USERS,
                  about: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rank every user of ``job`` on ``backend``, write the part files and ``manifest.json`` into
    ``out``; returns the manifest. ``about`` (model, source, ...) is copied into it."""
    import pyarrow.parquet as pq

    start = time.perf_counter()
    shards = shards_of(len(job.user_ids), shard_users, align=job.batch_size)
    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    files: dict[int, dict[str, Any]] = {}

    def write(shard: Shard, table: Any) -> None:
        path = out / f"part-{shard.index:05d}.parquet"
        with atomic_writer(path) as handle:
            pq.write_table(table, handle)
        files[shard.index] = {"file": path.name, "users": len(shard), "first_user": shard.start,
                              "rows": table.num_rows, "sha256": sha256_file(path)}

    backend.map(rank_shard, shards, backend.put(job), on_result=write)
    manifest = {"format": FORMAT, **(about or {}), "k": job.k, "users": len(job.user_ids),
                "items": len(job.item_ids), "exclude_seen": job.exclude_seen, "columns": list(COLUMNS),
                "shard_users": shards[0].stop - shards[0].start if shards else shard_users,
                "batch_users": job.batch_size, "files": [files[s.index] for s in shards],
                "rows": sum(f["rows"] for f in files.values()),
                "run": {"backend": backend.name, "workers": backend.workers,
                        "seconds": round(time.perf_counter() - start, 3)}}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_recommendations(out: Path) -> Any:
    """Every row the manifest in ``out`` lists, as one pyarrow Table in file order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = json.loads((out / MANIFEST).read_text())
    tables = [pq.read_table(out / f["file"]) for f in manifest["files"]]
    return pa.concat_tables(tables) if tables else pa.table({c: [] for c in COLUMNS})
