"""Profiles for every user of the largest shared dataset (issue 17, acceptance 3: under 60 s).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/profiles.py \
        [--dataset amazon-scientific-seqorder] [--method keybert|tfidf] [--out benchmarks/results/profile.json]

Each measured run is a fresh process (``--child``), timed from its first line, so a model or module
loaded by one run cannot make the next look faster:
  * cold: the keyword vocabulary's word vectors are not cached (an empty temporary cache): the run
    imports sentence-transformers, loads the encoder and embeds every word — all inside the 60 s;
  * warm: the same temporary cache, now filled: what every later run on this machine costs.
The catalogue's item vectors (``embed_items``) come from the default on-disk cache in both runs; this
parent process encodes them first if needed and reports that time separately. Histories: every user's
train+valid positives (``HistoryBatch.from_interactions(ds.train_valid)``), as ``longtail`` profiles them.

Named ``profiles.py``, not ``profile.py``: a script runs with its folder first on ``sys.path``, so a
``benchmarks/profile.py`` would stand in for the standard library's ``profile`` (which ``cProfile``
imports while transformers loads) and break every benchmark here that loads the encoder.
"""

from __future__ import annotations

import sys
import time

_START = time.perf_counter()

import argparse  # imports after the clock: they are part of a cold run
import json
import os
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from longtail.data import HistoryBatch, load_dataset
from longtail.profile import DEFAULT_METHOD, METHODS, ProfileContext, build_profiles
from longtail.text import EmbeddingCache, embed_items

ROOT = Path(__file__).resolve().parent
TARGET_SECONDS = 60.0


def child(dataset: str, method: str, vocab_cache: Path) -> dict:
    """One measured run, from the process's start; returns its timings and a summary of the profiles."""
    imports = time.perf_counter() - _START
    t = time.perf_counter()
    ds = load_dataset(dataset)
    load = time.perf_counter() - t
    t = time.perf_counter()
    vectors = embed_items(ds.items)
    item_vectors = time.perf_counter() - t
    t = time.perf_counter()
    ctx = ProfileContext.from_dataset(ds, vectors, method=method, cache=EmbeddingCache(vocab_cache))
    context = time.perf_counter() - t
    t = time.perf_counter()
    histories = HistoryBatch.from_interactions(ds.train_valid)
    histories = histories[np.flatnonzero(histories.lengths > 0)]
    profiles = build_profiles(ctx, histories, progress=sys.stderr.isatty())
    build = time.perf_counter() - t
    total = time.perf_counter() - _START
    levels = Counter(p.activity.level for p in profiles)
    example = max(profiles, key=lambda p: (len(p.interests), p.n_items, -p.user))
    return {
        "seconds": {"imports": round(imports, 2), "load_dataset": round(load, 2),
                    "item_vectors_from_cache": round(item_vectors, 2), "context": round(context, 2),
                    "profiles": round(build, 2), "total": round(total, 2)},
        "users": len(profiles), "items": ds.n_items, "vocabulary": len(ctx.keywords.words),
        "profiles_per_second": round(len(profiles) / build, 1),
        "activity_levels": dict(sorted(levels.items())), "activity_cuts": list(ctx.cuts),
        "mean_interests": round(float(np.mean([len(p.interests) for p in profiles])), 3),
        "mean_keywords": round(float(np.mean([len(p.keywords) for p in profiles])), 3),
        "mean_mix": {b: round(float(np.mean([p.mix[b] for p in profiles])), 4) for b in ("head", "tail", "cold")},
        "example": example.to_dict() | {"interests": [
            {k: v for k, v in i.to_dict().items() if k not in ("items", "item_ids")} for i in example.interests]},
    }


def run_child(args: argparse.Namespace, vocab_cache: Path) -> dict:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", "--dataset", args.dataset, "--method", args.method,
                          "--vocab-cache", str(vocab_cache)], capture_output=True, text=True, check=True,
                         env=os.environ.copy())
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["seconds"]["process_wall"] = round(time.perf_counter() - t, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dataset", default="amazon-scientific-seqorder")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "profile.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--vocab-cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.dataset, args.method, args.vocab_cache)))
        return 0

    console = Console(width=150)
    ds = load_dataset(args.dataset)
    t = time.perf_counter()
    embed_items(ds.items)  # the catalogue, into the default cache if it is not there yet
    encode = time.perf_counter() - t
    console.print(f"{args.dataset}: catalogue of {ds.n_items:,} items encoded or read from the embedding "
                  f"cache in {encode:.1f} s (outside the runs below); {os.cpu_count()} cores")
    runs = {}
    with tempfile.TemporaryDirectory(prefix="longtail-profile-bench-") as cache:
        for name in ("cold", "warm"):
            runs[name] = run_child(args, Path(cache))
            console.print(f"{name}: {runs[name]['users']:,} profiles in {runs[name]['seconds']['total']:.1f} s")

    table = Table(title=f"profiles of every user: {args.dataset}, keywords by {args.method}")
    columns = ("run", "users", "imports", "load", "item vectors", "context (vocabulary)", "profiles",
               "total", "process", "profiles/s", f"< {TARGET_SECONDS:.0f} s")
    for column in columns:
        table.add_column(column, justify="left" if column == "run" else "right")
    for name, run in runs.items():
        s = run["seconds"]
        ok = "[green]yes[/]" if s["total"] < TARGET_SECONDS else "[red]no[/]"
        table.add_row(name, f"{run['users']:,}", f"{s['imports']:.1f}", f"{s['load_dataset']:.1f}",
                      f"{s['item_vectors_from_cache']:.2f}", f"{s['context']:.1f}", f"{s['profiles']:.1f}",
                      f"{s['total']:.1f}", f"{s['process_wall']:.1f}", f"{run['profiles_per_second']:,.0f}", ok)
    console.print(table)
    warm = runs["warm"]
    console.print(f"vocabulary {warm['vocabulary']:,} words; activity cuts {warm['activity_cuts']} -> "
                  f"{warm['activity_levels']}; mean interests {warm['mean_interests']}, "
                  f"mean head/tail/cold {warm['mean_mix']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "dataset": args.dataset, "method": args.method, "cores": os.cpu_count(),
        "target_seconds": TARGET_SECONDS, "catalogue_encoding_seconds": round(encode, 2),
        "threads": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "runs": runs}, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0 if all(run["seconds"]["total"] < TARGET_SECONDS for run in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
