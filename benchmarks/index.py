"""Vector index benchmark: exact vs HNSW vs IVF vs IVF-PQ, on synthetic clustered unit vectors and
optionally on a real catalogue's MiniLM item vectors; the per-item memory and speed a sizing plan needs.

    .venv/bin/python benchmarks/index.py [--n 200000] [--dim 384] [--queries 1000] [--k 100]
        [--kinds exact,hnsw,ivf,ivfpq] [--real ml-latest-small] [--out FILE.json] [--json]

Synthetic data: a Gaussian mixture (``--clusters`` standard normal centres, cluster sizes Zipf-skewed
like a catalogue's topics, isotropic noise of ``--noise`` times the centres' scale), L2-normalised,
fixed seed; queries are fresh draws from the same mixture. Real data (``--real NAME``): the
``embed_items`` vectors of the dataset's catalogue (cached on disk after the first run); ``--queries``
random items (at most a tenth) are held out of the index and used as queries (item-to-item search).
Every kind is built through ``longtail.text.VectorIndex`` and searched with one batched
``search(queries, k)``. Recall@k = mean over queries of |its top-k ∩ exact top-k| / k. For HNSW
(efSearch) and the IVF kinds (nprobe) the knob is swept upward; the first value reaching ``--target``
(0.95) is reported, else the best recall reached (``reached: false``; the sweep also stops once recall
stops improving, as PQ codes cap it). ``ivfpq+refineR`` (one per ``--refine`` factor R) fetches
R x k candidates from the IVF-PQ index and re-ranks them by exact inner product with the float32
vectors (what faiss' ``IndexRefineFlat`` does), so its memory is the PQ index plus a flat copy. Bytes per item =
``faiss.serialize_index(index).nbytes / n`` (ids included; HNSW's id arrays kept beside faiss are not).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from longtail.text import VectorIndex

EF_SWEEP = (100, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1024, 1536, 2048)
NPROBE_SWEEP = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
PLATEAU = 0.002  # a sweep stops once a step gains less recall than this (PQ's ceiling)


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


def real_vectors(name: str, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(base, queries): a catalogue's item vectors with ``n_queries`` random items held out."""
    from longtail.data import load_dataset
    from longtail.text import embed_items

    vectors = embed_items(load_dataset(name).items)  # (n_items, 384) unit rows
    order = np.random.default_rng(seed).permutation(len(vectors))
    held = min(n_queries, len(vectors) // 10)
    return np.ascontiguousarray(vectors[order[held:]]), np.ascontiguousarray(vectors[order[:held]])


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = [np.intersect1d(f, t, assume_unique=True).size for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / k)


def bytes_per_item(index: object, n: int) -> float:
    return faiss.serialize_index(index).nbytes / n


def timed_search(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    ids, _ = index.search(queries, k)
    return time.perf_counter() - start, ids


def refined_search(index: VectorIndex, vectors: np.ndarray, row_of: Callable[[np.ndarray], np.ndarray],
                   factor: int) -> Callable[[np.ndarray, int], tuple[float, np.ndarray]]:
    """A search that fetches ``factor * k`` PQ candidates and keeps the exact top-``k`` of them."""
    def search(queries: np.ndarray, k: int) -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        ids, _ = index.search(queries, factor * k)  # (nq, factor*k)
        rows = row_of(np.maximum(ids, 0))
        exact = np.empty(ids.shape, dtype=np.float32)
        for s in range(0, len(ids), 100):  # chunks keep the gathered (100, factor*k, d) rows small
            exact[s:s + 100] = np.einsum("qd,qcd->qc", queries[s:s + 100], vectors[rows[s:s + 100]])
        exact[ids < 0] = -np.inf
        best = np.argsort(-exact, axis=1)[:, :k]
        return time.perf_counter() - start, np.take_along_axis(ids, best, axis=1)
    return search


def build(dim: int, kind: str, ids: np.ndarray, vectors: np.ndarray, console: Console,
          **params: object) -> tuple[VectorIndex, float]:
    index = VectorIndex(dim, kind, **params)  # type: ignore[arg-type]
    start = time.perf_counter()
    index.add(ids, vectors)
    seconds = time.perf_counter() - start
    nlist = f", nlist={index.faiss_index.nlist}" if kind.startswith("ivf") else ""
    console.print(f"{kind} built in {seconds:.1f} s{nlist}")
    return index, seconds


def benchmark(vectors: np.ndarray, queries: np.ndarray, args: argparse.Namespace,
              console: Console) -> dict[str, object]:
    """All kinds on one (base, queries) pair: rows of the summary table and every sweep step."""
    n, dim = vectors.shape
    k, kinds = args.k, args.kinds.split(",")
    ids = np.arange(n, dtype=np.int64) * 3 + 1000  # external ids, not row numbers

    def row_of(found: np.ndarray) -> np.ndarray:
        return (found - 1000) // 3

    results: list[dict[str, object]] = []
    sweeps: dict[str, list[dict[str, float]]] = {}
    exact, build_s = build(dim, "exact", ids, vectors, console)
    seconds, truth = timed_search(exact, queries, k)
    flat_bytes = bytes_per_item(exact.faiss_index.index, n)  # the bare float32 rows, no ids
    results.append({"kind": "exact", "param": "IndexFlatIP", "build_s": build_s,
                    "bytes_per_item": bytes_per_item(exact.faiss_index, n),
                    "qps": len(queries) / seconds, "recall": 1.0, "reached": True})

    def sweep(kind: str, index: VectorIndex, knob: str, values: tuple[int, ...], build_s: float,
              label: str, item_bytes: float,
              search: Callable[[np.ndarray, int], tuple[float, np.ndarray]] | None = None) -> None:
        rows = sweeps.setdefault(kind, [])
        for value in values:
            index.config = dataclasses.replace(index.config, **{knob: value})  # a search-time knob
            seconds, found = (search or (lambda q, kk: timed_search(index, q, kk)))(queries, k)
            rows.append({knob: value, "qps": len(queries) / seconds, "recall": recall(found, truth)})
            console.print(f"  {kind} {knob}={value}: recall@{k} {rows[-1]['recall']:.4f}, "
                          f"{rows[-1]['qps']:,.0f} queries/s")
            if rows[-1]["recall"] >= args.target:
                break
            if kind.startswith("ivfpq") and len(rows) > 1 and value >= 16 \
                    and rows[-1]["recall"] - rows[-2]["recall"] < PLATEAU:
                break
        reached = rows[-1]["recall"] >= args.target
        pick = rows[-1] if reached else max(rows, key=lambda r: r["recall"])
        results.append({"kind": kind, "param": f"{label}, {knob}={pick[knob]}", "build_s": build_s,
                        "bytes_per_item": item_bytes, "qps": pick["qps"], "recall": pick["recall"],
                        "reached": reached, knob: pick[knob]})

    if "hnsw" in kinds:
        hnsw, build_s = build(dim, "hnsw", ids, vectors, console, m=args.m,
                              ef_construction=args.ef_construction)
        sweep("hnsw", hnsw, "ef_search", EF_SWEEP, build_s, f"M={args.m}, efC={args.ef_construction}",
              bytes_per_item(hnsw.faiss_index, n))
        del hnsw
    if "ivf" in kinds:
        ivf, build_s = build(dim, "ivf", ids, vectors, console, nlist=args.nlist)
        sweep("ivf", ivf, "nprobe", NPROBE_SWEEP, build_s, f"nlist={ivf.faiss_index.nlist}",
              bytes_per_item(ivf.faiss_index, n))
        del ivf
    if "ivfpq" in kinds:
        pq, build_s = build(dim, "ivfpq", ids, vectors, console, nlist=args.nlist, pq_m=args.pq_m,
                            pq_bits=args.pq_bits)
        label = f"nlist={pq.faiss_index.nlist}, PQ{args.pq_m}x{args.pq_bits}"
        pq_bytes = bytes_per_item(pq.faiss_index, n)
        sweep("ivfpq", pq, "nprobe", NPROBE_SWEEP, build_s, label, pq_bytes)
        for factor in (int(f) for f in args.refine.split(",") if f and int(f) > 1):
            sweep(f"ivfpq+refine{factor}", pq, "nprobe", NPROBE_SWEEP, build_s,
                  f"{label}, exact re-rank of {factor}k", pq_bytes + flat_bytes,
                  refined_search(pq, vectors, row_of, factor))
    return {"n": n, "dim": dim, "queries": len(queries), "k": k, "target": args.target,
            "results": results, "sweeps": sweeps}


def show(run: dict[str, object], title: str, console: Console) -> None:
    k, target = run["k"], float(run["target"])  # type: ignore[arg-type]
    table = Table(title=f"{title}: {run['n']:,} x {run['dim']}, {run['queries']:,} queries, "
                        f"recall@{k} vs exact (target {target})")
    for column in ("kind", "parameters", "build s", "B/item", "queries/s", f"recall@{k}", "speed-up"):
        table.add_column(column, justify="left" if column in ("kind", "parameters") else "right")
    rows: list[dict] = run["results"]  # type: ignore[assignment]
    base_qps = float(rows[0]["qps"])
    for row in rows:
        rec = float(row["recall"])
        style = "green" if row["reached"] else "red"
        table.add_row(str(row["kind"]), str(row["param"]) + ("" if row["reached"] else " (best)"),
                      f"{row['build_s']:.1f}", f"{row['bytes_per_item']:,.0f}", f"{row['qps']:,.0f}",
                      f"[{style}]{rec:.4f}[/]", f"{float(row['qps']) / base_qps:.1f}x")
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="synthetic items (0: no synthetic run)")
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
    parser.add_argument("--pq-m", type=int, default=48, help="IVF-PQ sub-quantisers (divides --dim)")
    parser.add_argument("--pq-bits", type=int, default=8)
    parser.add_argument("--refine", default="4,16", help="ivfpq+refineR fetches R x k, re-ranks exactly ('': off)")
    parser.add_argument("--kinds", default="exact,hnsw,ivf,ivfpq")
    parser.add_argument("--real", default=None, metavar="DATASET", help="also run on its item vectors")
    parser.add_argument("--threads", type=int, default=None, help="faiss threads (default: all cores)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--json", action="store_true", help="print the JSON")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    console.print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, {os.cpu_count()} cores")

    runs: dict[str, dict[str, object]] = {}
    if args.n > 0:
        vectors, centres = mixture(args.n, args.dim, args.clusters, args.seed, args.noise)
        queries, _ = mixture(args.queries, args.dim, args.clusters, args.seed + 1, args.noise, centres)
        console.print(f"synthetic: {args.n:,} x {args.dim} unit vectors ({args.clusters} clusters, "
                      f"noise {args.noise})")
        runs["synthetic"] = benchmark(vectors, queries, args, console) | {
            "clusters": args.clusters, "noise": args.noise}
        show(runs["synthetic"], "synthetic", console)
        del vectors
    if args.real:
        base, queries = real_vectors(args.real, args.queries, args.seed)
        console.print(f"real: {args.real} item vectors, {len(base):,} indexed, {len(queries):,} held out")
        saved_dim, args.dim = args.dim, base.shape[1]
        runs[f"real:{args.real}"] = benchmark(base, queries, args, console)
        args.dim = saved_dim
        show(runs[f"real:{args.real}"], f"real ({args.real})", console)
    report = {"faiss": faiss.__version__, "threads": faiss.omp_get_max_threads(), "cores": os.cpu_count(),
              "command": "benchmarks/index.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "runs": runs}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {args.out}")
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
