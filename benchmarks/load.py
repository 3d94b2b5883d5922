"""Load benchmark: what validation and the split cost on top of a bare ``pandas.read_csv``.

    /tmp/tv/bin/python benchmarks/load.py [--dataset NAME_OR_PATH] [--runs 7] [--json]

Times ``--runs`` interleaved rounds (a, b, c in turn) after one warm-up; the ratio is the median
of the per-round ratios, so machine drift cancels:
  (a) bare ``pandas.read_csv`` of the interactions and items files (no dtypes, no checks);
  (b) ``longtail.data.io.read_raw``: read + validate (types, ids, timestamps, ratings, catalogue);
  (c) ``longtail.data.load_dataset``: (b) + vocabularies, positives, per-user split.
The target (issue): loading costs less than 2x a bare ``read_csv``. Without ``--dataset`` the
largest shared dataset (by interaction count) is used, else the shipped ml-latest-small.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from longtail.data import load_dataset, resolve_dataset
from longtail.data.io import find_table, read_raw

TARGET = 2.0
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def largest_shared_dataset() -> str:
    """The shared dataset with the most interactions (stats.json, else a line count)."""
    best, best_n = "ml-latest-small", -1
    if not SHARED_DATA.is_dir():
        return best
    for folder in sorted(SHARED_DATA.iterdir()):
        if not folder.is_dir() or not any(folder.glob("interactions.*")):
            continue
        stats = folder / "stats.json"
        if stats.is_file():
            n = int(json.loads(stats.read_text()).get("interactions", 0))
        else:
            n = len(read_raw(folder).interactions)
        if n > best_n:
            best, best_n = str(folder.resolve()), n
    return best


def bare_read(path: Path) -> pd.DataFrame:
    name = path.name
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path)
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True)


def timed_rounds(steps: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Interleaved timing: each round runs every step once, so drift on a noisy machine hits all
    steps alike and per-round ratios are paired."""
    for func in steps.values():
        func()  # warm-up: imports, page cache, pyarrow thread pool
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(runs):
        for name, func in steps.items():
            gc.collect()
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dataset", help="name or folder (default: largest shared dataset)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs after one warm-up (default 7)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)

    folder = resolve_dataset(args.dataset or largest_shared_dataset())
    inter_path, items_path = find_table(folder, "interactions"), find_table(folder, "items")
    n_rows = len(read_raw(folder).interactions)

    steps = {
        "(a) pandas.read_csv (bare)": lambda: (bare_read(inter_path), bare_read(items_path)),
        "(b) read_raw (load + validate)": lambda: read_raw(folder),
        "(c) load_dataset (+ vocab, positives, split)": lambda: load_dataset(folder),
    }
    results = timed_rounds(steps, args.runs)
    medians = {name: statistics.median(times) for name, times in results.items()}
    bare = results["(a) pandas.read_csv (bare)"]
    base = medians["(a) pandas.read_csv (bare)"]
    # the verdict uses the median of per-round ratios (paired, robust to drift between steps)
    paired = {name: statistics.median(t / b for t, b in zip(times, bare)) for name, times in results.items()}

    console = Console()
    table = Table(
        title=f"load benchmark: {folder.name} ({n_rows:,} interactions; "
        f"{inter_path.name} + {items_path.name}), {args.runs} interleaved rounds after 1 warm-up"
    )
    for column in ("step", "median ms", "min ms", "max ms", "x bare (median of paired)"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, times in results.items():
        ratio = paired[name]
        style = "" if name.startswith("(a)") else ("green" if ratio < TARGET else "red")
        table.add_row(
            name,
            f"{medians[name] * 1e3:.1f}",
            f"{min(times) * 1e3:.1f}",
            f"{max(times) * 1e3:.1f}",
            f"[{style}]{ratio:.2f}x[/]" if style else f"{ratio:.2f}x",
        )
    console.print(table)
    ratio_b = paired["(b) read_raw (load + validate)"]
    ratio_c = paired["(c) load_dataset (+ vocab, positives, split)"]
    console.print(
        f"cores: {os.cpu_count()}, pyarrow threads: {pa.cpu_count()}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    for label, ratio in (("(b)/(a) load + validate", ratio_b), ("(c)/(a) full load_dataset", ratio_c)):
        verdict = "[green]meets[/]" if ratio < TARGET else "[red]misses[/]"
        console.print(f"{label}: {ratio:.2f}x -> {verdict} the target (< {TARGET:g}x bare read_csv)")
    if args.json:
        print(
            json.dumps(
                {
                    "dataset": folder.name,
                    "interactions": n_rows,
                    "runs": args.runs,
                    "median_seconds": {"bare_read_csv": base,
                                       "read_raw": medians["(b) read_raw (load + validate)"],
                                       "load_dataset": medians["(c) load_dataset (+ vocab, positives, split)"]},
                    "ratio_read_raw": ratio_b,
                    "ratio_load_dataset": ratio_c,
                    "target": TARGET,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
