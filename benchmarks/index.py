"""Vector index benchmark: exact vs HNSW vs IVF on synthetic clustered unit vectors.

    /tmp/tv/bin/python benchmarks/index.py [--n 200000] [--dim 384] [--queries 1000] [--k 100] [--json]

Data: a Gaussian mixture (``--clusters`` standard normal centres, cluster sizes Zipf-skewed like a
catalogue's topics, isotropic noise of ``--noise`` times the centres' scale), L2-normalised, fixed seed; queries are fresh draws
from the same mixture. Every kind is built through ``longtail.text.VectorIndex`` and searched with one
batched ``search(queries, k)``. Recall@k of an approximate index = mean over queries of
|its top-k ∩ exact top-k| / k. For HNSW (efSearch) and IVF (nprobe) the search knob is swept upward and
the first value reaching ``--target`` recall is the one reported (target: 0.95).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from longtail.text import VectorIndex

EF_SWEEP = (100, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1024, 1536, 2048)
NPROBE_SWEEP = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def mixture(n: int, dim: int, clusters: int, seed: int, noise: float,
            centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 unit rows drawn from the mixture, and its centres."""
    rng = np.random.default_rng(seed)
    if centres is None:
        centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.8  # Zipf-ish cluster sizes
    labels = rng.choice(clusters, size=n, p=weights / weights.sum())
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):  # chunks keep the float32 temporaries small
        stop = min(n, start + 50_000)
        spread = rng.standard_normal((stop - start, dim), dtype=np.float32)  # (chunk, dim)
        out[start:stop] = centres[labels[start:stop]] + noise * spread
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out, centres


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = [np.intersect1d(f, t, assume_unique=True).size for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / k)


def timed_search(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    ids, _ = index.search(queries, k)
    return time.perf_counter() - start, ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.7,
                        help="noise scale relative to the centres' (0.7: cluster mates at cos ~0.67)")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--m", type=int, default=32, help="HNSW M")
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--nlist", type=int, default=None, help="IVF lists (default ~sqrt(n))")
    parser.add_argument("--kinds", default="exact,hnsw,ivf")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")
    console = Console()

    vectors, centres = mixture(args.n, args.dim, args.clusters, args.seed, args.noise)
    queries, _ = mixture(args.queries, args.dim, args.clusters, args.seed + 1, args.noise, centres)
    ids = np.arange(args.n, dtype=np.int64) * 3 + 1000  # external ids, not row numbers
    console.print(f"{args.n:,} x {args.dim} unit vectors ({args.clusters} clusters), "
                  f"{args.queries:,} queries, k={args.k}, faiss {faiss.__version__}, "
                  f"{faiss.omp_get_max_threads()} threads, {os.cpu_count()} cores")

    results: list[dict[str, object]] = []
    exact = VectorIndex(args.dim, "exact")
    start = time.perf_counter()
    exact.add(ids, vectors)
    build = time.perf_counter() - start
    seconds, truth = timed_search(exact, queries, args.k)
    results.append({"kind": "exact", "param": "IndexFlatIP", "build_s": build,
                    "qps": args.queries / seconds, "recall": 1.0})
    sweeps: dict[str, list[tuple[int, float, float]]] = {}

    def sweep(kind: str, index: VectorIndex, knob: str, values: tuple[int, ...], build_s: float,
              label: str) -> None:
        rows = sweeps.setdefault(kind, [])
        for value in values:
            index.config = dataclasses.replace(index.config, **{knob: value})  # a search-time knob
            seconds, found = timed_search(index, queries, args.k)
            rows.append((value, args.queries / seconds, recall(found, truth)))
            console.print(f"  {kind} {knob}={value}: recall@{args.k} {rows[-1][2]:.4f}, "
                          f"{rows[-1][1]:,.0f} queries/s")
            if rows[-1][2] >= args.target:
                break
        value, qps, rec = rows[-1]
        results.append({"kind": kind, "param": f"{label}, {knob}={value}", "build_s": build_s,
                        "qps": qps, "recall": rec, knob: value})

    if "hnsw" in kinds:
        hnsw = VectorIndex(args.dim, "hnsw", m=args.m, ef_construction=args.ef_construction)
        start = time.perf_counter()
        hnsw.add(ids, vectors)
        build = time.perf_counter() - start
        console.print(f"hnsw built in {build:.1f} s")
        sweep("hnsw", hnsw, "ef_search", EF_SWEEP, build, f"M={args.m}, efC={args.ef_construction}")
    if "ivf" in kinds:
        ivf = VectorIndex(args.dim, "ivf", nlist=args.nlist)
        start = time.perf_counter()
        ivf.add(ids, vectors)
        build = time.perf_counter() - start
        console.print(f"ivf built (trained) in {build:.1f} s, nlist={ivf.faiss_index.nlist}")
        sweep("ivf", ivf, "nprobe", NPROBE_SWEEP, build, f"nlist={ivf.faiss_index.nlist}")

    table = Table(title=f"index benchmark: {args.n:,} x {args.dim}, {args.queries:,} queries, "
                        f"recall@{args.k} vs exact (target {args.target})")
    for column in ("kind", "parameters", "build s", "queries/s", f"recall@{args.k}", "speed-up"):
        table.add_column(column, justify="left" if column in ("kind", "parameters") else "right")
    base_qps = float(results[0]["qps"])  # type: ignore[arg-type]
    for row in results:
        rec = float(row["recall"])  # type: ignore[arg-type]
        style = "green" if rec >= args.target else "red"
        table.add_row(str(row["kind"]), str(row["param"]), f"{row['build_s']:.1f}",
                      f"{row['qps']:,.0f}", f"[{style}]{rec:.4f}[/]",
                      f"{float(row['qps']) / base_qps:.1f}x")  # type: ignore[arg-type]
    console.print(table)
    if args.json:
        print(json.dumps({"n": args.n, "dim": args.dim, "queries": args.queries, "k": args.k,
                          "results": results, "sweeps": sweeps}, indent=2))
    return 0 if all(float(r["recall"]) >= args.target for r in results) else 1  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
