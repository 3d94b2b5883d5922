"""Ray backend against one process: the same two jobs, side by side, with the outputs compared.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ray_scaling.py [--dataset ml-latest-small]
        [--model itemknn] [--k 10] [--shard-users 64] [--limit N] [--out benchmarks/results/ray_scaling.json]

Jobs, each run with the local backend, Ray with 1 worker and Ray with 2 workers:
  encode     ``longtail embed``: the whole catalogue into a fresh, empty embedding cache each time
             (the model is loaded inside the timing in every case: the local process once, each
             Ray actor once);
  recommend  ``longtail recommend --all-users``: top-k of every user through the service's pipeline
             (one model fitted beforehand on every positive, its vectors read from the cache Ray
             wrote), Parquet files + manifest.
A Ray instance (``num_cpus`` = workers) is started before its jobs; its start-up is a column of its
own, not part of a job's wall time. Outputs must agree: recommendation files byte for byte (their
sha256), vectors to 1e-6 (the guarantee: same length-sorted blocks as one process, only torch's thread
count differs); whether they are also bitwise equal is printed. Exit 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import ray
import torch
from rich.console import Console
from rich.table import Table

from longtail.data import load_dataset
from longtail.scale.backend import Backend, LocalBackend, RayBackend
from longtail.scale.batch import BatchJob, recommend_all
from longtail.scale.embed import embed_catalogue_on
from longtail.serve.bundle import train_bundle
from longtail.serve.ranking import pipeline_of, queries_of
from longtail.serve.state import LiveState
from longtail.text import EmbeddingCache, TextEncoder, item_texts
from longtail.text.cache import text_key
from longtail.text.encoder import clear_model_cache

RUNS = (("local", 1), ("ray", 1), ("ray", 2))
RESULTS = Path(__file__).resolve().parent / "results" / "ray_scaling.json"


def encode_job(backend: Backend, items: Any, cache_root: Path) -> tuple[float, np.ndarray]:
    """Seconds and vectors of one encode into an empty cache, the model loaded inside the timing."""
    clear_model_cache()  # as a fresh process: no model loaded yet (fingerprints memoised on disk)
    encoder = TextEncoder()
    start = time.perf_counter()
    vectors, report = embed_catalogue_on(backend, items, encoder=encoder, cache=EmbeddingCache(cache_root))
    seconds = time.perf_counter() - start
    assert report.from_cache == 0, "the cache was not empty"
    return seconds, vectors


def recommend_job(backend: Backend, job: BatchJob, out: Path, shard_users: int) -> tuple[float, Any]:
    start = time.perf_counter()
    manifest = recommend_all(backend, job, out, shard_users=shard_users)
    return time.perf_counter() - start, manifest


def run(kind: str, workers: int, items: Any, job: BatchJob | None, root: Path, shard_users: int) -> dict[str, Any]:
    """Both jobs on one backend (a fresh Ray instance for Ray), timed."""
    start = time.perf_counter()
    backend: Backend = LocalBackend() if kind == "local" else RayBackend(workers)
    with backend:
        started = time.perf_counter() - start
        if job is None:
            seconds, vectors = encode_job(backend, items, root / f"{kind}-{workers}" / "embeddings")
            return {"start": started, "encode": seconds, "vectors": vectors}
        seconds, manifest = recommend_job(backend, job, root / f"{kind}-{workers}-recs", shard_users)
        return {"start": started, "recommend": seconds, "manifest": manifest}


def build_job(dataset: str, model: str, k: int, shard_users: int, cache_home: Path) -> tuple[BatchJob, bool]:
    """The recommend job: ``model`` fitted on every positive, vectors from ``cache_home`` (Ray's)."""
    os.environ["LONGTAIL_CACHE"] = str(cache_home)
    ds = load_dataset(dataset)
    encoder = TextEncoder()
    found, _ = EmbeddingCache(cache_home / "embeddings").get(encoder.fingerprint,
                                                              [text_key(t) for t in item_texts(ds.items)])
    state = LiveState(train_bundle(dataset, model))
    users = list(state.histories.ids)
    job = BatchJob(pipeline_of(state, None), queries_of(state, users), np.asarray(users, dtype=object),
                   np.asarray(state.catalogue.ids, dtype=object), k=k, batch_size=min(128, shard_users))
    return job, bool(found.all())


def table_of(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("job", "backend", "workers", "Ray start s", "wall s", "rate", "speed-up vs local",
                   "overhead (ray 1 / local)"):
        table.add_column(column, justify="left" if column in ("job", "backend") else "right")
    for row in rows:
        table.add_row(row["job"], row["backend"], str(row["workers"]),
                      f"{row['start_seconds']:.1f}" if row["backend"] == "ray" else "-",
                      f"{row['seconds']:.2f}", f"{row['rate']:,.0f} {row['unit']}/s", f"{row['speedup']:.2f}x",
                      f"{row['overhead']:.2f}x" if row.get("overhead") is not None else "")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--model", default="itemknn")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--shard-users", type=int, default=64)
    parser.add_argument("--limit", type=int, help="encode only the first N items")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    ds = load_dataset(args.dataset)
    items = ds.items.head(args.limit) if args.limit else ds.items
    load_before = os.getloadavg()
    console.print(f"{ds.name}: {len(items):,} items to encode, {ds.n_users:,} users; model {args.model}, "
                  f"k={args.k}, {args.shard_users} users per shard; {os.cpu_count()} cores, torch threads "
                  f"{torch.get_num_threads()}, ray {ray.__version__}; load average {load_before[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="longtail-ray-bench-") as folder:
        root = Path(folder)
        encodes = {(kind, w): run(kind, w, items, None, root, args.shard_users) for kind, w in RUNS}
        job, from_cache = build_job(args.dataset, args.model, args.k, args.shard_users, root / "ray-2")
        recs = {(kind, w): run(kind, w, items, job, root, args.shard_users) for kind, w in RUNS}
        tables = {key: pq.read_table(sorted((root / f"{key[0]}-{key[1]}-recs").glob("part-*.parquet")))
                  for key in RUNS}
    base = RUNS[0]
    vectors = {key: value["vectors"] for key, value in encodes.items()}
    max_diff = max(float(np.abs(vectors[key] - vectors[base]).max()) for key in RUNS)
    bitwise = all(np.array_equal(vectors[key], vectors[base]) for key in RUNS)
    close = all(np.allclose(vectors[key], vectors[base], rtol=0, atol=1e-6) for key in RUNS)
    files_equal = all(recs[key]["manifest"]["files"] == recs[base]["manifest"]["files"] for key in RUNS)
    tables_equal = all(tables[key].equals(tables[base]) for key in RUNS)
    rows = []
    for name, results, unit, count in (("encode", encodes, "items", len(items)),
                                       ("recommend", recs, "users", len(job.user_ids))):
        local = results[base][name]
        for kind, workers in RUNS:
            seconds = results[(kind, workers)][name]
            rows.append({"job": name, "backend": kind, "workers": workers, "seconds": round(seconds, 3),
                         "start_seconds": round(results[(kind, workers)]["start"], 3),
                         "rate": count / seconds, "unit": unit, "speedup": local / seconds,
                         "overhead": seconds / local if (kind, workers) == ("ray", 1) else None})
    console.print(table_of(rows, f"{ds.name}: local vs Ray ({args.model}, {len(job.user_ids):,} users, "
                                 f"{len(items):,} items)"))
    ok = close and files_equal and tables_equal
    console.print(f"vectors: max |ray - local| = {max_diff:.1e} (allclose at 1e-6: {close}; bitwise equal: "
                  f"{bitwise}); recommendation files: same sha256 {files_equal}, same rows {tables_equal}; "
                  f"the recommend model read every vector from Ray's cache: {from_cache}")
    console.print("[bold green]identical[/]" if ok else "[bold red]outputs differ[/]")
    payload = {"dataset": ds.name, "model": args.model, "k": args.k, "shard_users": args.shard_users,
               "items": len(items), "users": len(job.user_ids), "ray": ray.__version__,
               "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                           "torch_threads": torch.get_num_threads(),
                           "load_average_before": round(load_before[0], 2),
                           "load_average_after": round(os.getloadavg()[0], 2)},
               "rows": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()} for row in rows],
               "checks": {"vectors_max_abs_diff": max_diff, "vectors_allclose_1e-6": close,
                          "vectors_bitwise_equal": bitwise, "recommendation_files_equal": files_equal,
                          "recommendation_rows_equal": tables_equal, "vectors_read_from_ray_cache": from_cache,
                          "identical": ok}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
