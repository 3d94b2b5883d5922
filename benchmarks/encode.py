"""Encoding benchmark: our cached ``embed_items`` path against a bare sentence-transformers encode.

    OPENBLAS_NUM_THREADS=1 /tmp/tv/bin/python benchmarks/encode.py [--dataset NAME] [--limit N] [--json]

On one catalogue (default: the shared one with the most items), with the item texts of
``item_texts(items)`` and the same batch size, in one process:
  (a) ``SentenceTransformer(path).encode(texts, batch_size, normalize_embeddings=True)``;
  (b) ``embed_items(items, cache=<empty temp cache>)``: texts, hashing, encoding, writing the cache;
  (c) ``embed_items`` again on the warm cache, as a new process would: fresh encoder and cache
      objects, model and fingerprint memos cleared (the model is never loaded: every text is cached).
Targets: (b) >= 0.9x the items/s of (a); (c) >= 50x the items/s of (b). Both models are loaded and
warmed up before timing, so (a) and (b) time encoding, not loading.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from longtail.data import resolve_dataset
from longtail.data.registry import available_datasets
from longtail.text import EmbeddingCache, TextEncoder, embed_items, item_texts
from longtail.text.encoder import clear_model_cache

RATIO_TARGET = 0.9
WARM_TARGET = 50.0


def read_items(folder: Path) -> pd.DataFrame:
    path = next(p for p in sorted(folder.glob("items.*")) if p.name.endswith((".csv", ".csv.gz")))
    return pd.read_csv(path, dtype={"item_id": str})


def largest_catalogue() -> Path:
    """The available dataset whose items table has the most rows."""
    sizes = {folder: len(read_items(folder)) for folder in available_datasets().values()}
    return max(sizes, key=lambda folder: (sizes[folder], str(folder)))


def timed(func: object) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = func()  # type: ignore[operator]
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dataset", help="name or folder (default: the largest shared catalogue)")
    parser.add_argument("--limit", type=int, help="first N items only")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)

    folder = resolve_dataset(args.dataset) if args.dataset else largest_catalogue()
    items = read_items(folder)
    if args.limit:
        items = items.head(args.limit)
    texts = item_texts(items)
    n = len(texts)
    console = Console()
    console.print(f"{folder.name}: {n:,} items, batch size {args.batch_size}, torch threads "
                  f"{torch.get_num_threads()}, cores {os.cpu_count()}")

    from sentence_transformers import SentenceTransformer

    encoder = TextEncoder(batch_size=args.batch_size)
    plain_model = SentenceTransformer(str(encoder.path), device=encoder.resolved_device)
    warm_up = texts[:2 * args.batch_size]
    plain_model.encode(warm_up, batch_size=args.batch_size, normalize_embeddings=True)
    encoder.encode(warm_up)

    def plain() -> np.ndarray:
        return plain_model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True)

    with tempfile.TemporaryDirectory(prefix="longtail-encode-bench-") as root:
        t_plain, plain_vectors = timed(plain)
        t_cold, cold_vectors = timed(lambda: embed_items(items, encoder=encoder, cache=EmbeddingCache(root)))
        clear_model_cache()  # as in a new process: no loaded model, no memoised fingerprint

        def warm() -> np.ndarray:
            return embed_items(items, encoder=TextEncoder(batch_size=args.batch_size),
                               cache=EmbeddingCache(root))

        t_warm, warm_vectors = timed(warm)
        cache_bytes = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())

    max_diff = float(np.abs(np.asarray(cold_vectors) - np.asarray(plain_vectors)).max())
    assert np.array_equal(cold_vectors, warm_vectors), "warm cache returned different vectors"
    rates = {"plain": n / t_plain, "cold": n / t_cold, "warm": n / t_warm}
    ratio, speedup = rates["cold"] / rates["plain"], rates["warm"] / rates["cold"]

    table = Table(title=f"encode benchmark: {folder.name}, {n:,} items")
    for column in ("path", "seconds", "items/s", "vs (a)", "vs (b)"):
        table.add_column(column, justify="left" if column == "path" else "right")
    table.add_row("(a) SentenceTransformer.encode", f"{t_plain:.2f}", f"{rates['plain']:,.0f}", "1.00x", "")
    table.add_row("(b) embed_items, empty cache", f"{t_cold:.2f}", f"{rates['cold']:,.0f}",
                  f"{ratio:.2f}x", "1.00x")
    table.add_row("(c) embed_items, warm cache", f"{t_warm:.3f}", f"{rates['warm']:,.0f}",
                  f"{rates['warm'] / rates['plain']:.0f}x", f"{speedup:.0f}x")
    console.print(table)
    ok_ratio, ok_warm = ratio >= RATIO_TARGET, speedup >= WARM_TARGET
    verdict = {True: "[green]meets[/]", False: "[red]misses[/]"}
    console.print(f"(b)/(a) = {ratio:.3f} -> {verdict[ok_ratio]} >= {RATIO_TARGET}")
    console.print(f"(c)/(b) = {speedup:.0f}x -> {verdict[ok_warm]} >= {WARM_TARGET:g}x")
    console.print(f"max |(b) - (a)| = {max_diff:.1e}; cache on disk: {cache_bytes / 2**20:.1f} MiB")
    if args.json:
        print(json.dumps({"dataset": folder.name, "items": n, "batch_size": args.batch_size,
                          "seconds": {"plain": t_plain, "cold": t_cold, "warm": t_warm},
                          "items_per_second": rates, "ratio_cold_vs_plain": ratio,
                          "speedup_warm_vs_cold": speedup, "max_abs_diff": max_diff}, indent=2))
    return 0 if ok_ratio and ok_warm else 1


if __name__ == "__main__":
    sys.exit(main())
