"""Stream replay (issue 16): the last ``--share`` of a dataset's events, in global time order, in
``--chunks`` chunks of equal time (default: half the events in 20 chunks; of the grid {0.1, 0.3, 0.5} x {5, 10, 20}, the
window that scores the most user-chunks, counted with no model by ``--windows``; ml-latest-small's
users rate in bursts, so fewer and shorter windows leave ~100 user-chunks and no signal). Before each chunk every user of the chunk who has a history is recommended 20
items (the ranking pipeline of ``evaluate`` and the service: model, text fallback for what it
cannot score, exclusion of the history), then the model learns the chunk. Three ways to learn it:

- (a) ``frozen``: the model fitted before the replay, never updated;
- (b) ``partial``: ``partial_fit`` with the chunk's events (and the next chunk's new items);
- (c) ``refit``: a full ``fit`` on everything before the next chunk.

Items join the catalogue (with their text) just before the chunk of their first event, so every
chunk has new, cold items. Targets: the chunk's events of each user on items outside their
history; tail / cold are the buckets of the counts before the chunk. Parameters and text fallback:
what ``evaluate`` chose on valid (``benchmarks/results/<dataset>/metrics.json``). Update time is
the updates' wall time (the initial fit, common to all three, is not counted).

    python benchmarks/stream_replay.py --dataset ml-latest-small --model als
    python benchmarks/stream_replay.py --dataset amazon-digital-music-sample --model longtail

The last line is ``recovered=<share of (c)'s ndcg@20 gain over (a) that (b) recovers>
time_ratio=<(b) update time / (c) update time>``. amazon-scientific-seqorder has sequence
positions, not times: it is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from longtail.cli.evaluation import params_from_metrics
from longtail.common.figures import save_figure
from longtail.data.buckets import COLD, TAIL, popularity_buckets
from longtail.data.dataset import load_dataset
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.eval.metrics import ndcg_at_k
from longtail.eval.tuning import pipeline_for
from longtail.models import make_model
from longtail.text import DEFAULT_TEMPLATE, embed_items

ROOT = Path(__file__).resolve().parents[1]
K = 20
DAY = 86_400
VARIANTS = ("frozen", "partial", "refit")
GROUPS = ("overall", "tail", "cold")


class Stream:
    """All positives in global time order, items renumbered by arrival: those known before the
    replay first (in id order), then the others by their first event."""

    def __init__(self, events: Interactions, vectors: np.ndarray, start: int) -> None:
        first = np.full(events.n_items, np.iinfo(np.int64).max)
        np.minimum.at(first, events.items, events.timestamps)
        early = first < start
        arriving = np.flatnonzero(~early & (first < np.iinfo(np.int64).max))
        order = np.concatenate([np.flatnonzero(early), arriving[np.argsort(first[arriving], kind="stable")]])
        position = np.empty(events.n_items, np.int64)
        position[order] = np.arange(len(order))
        kept = np.isin(events.items, order)
        sort = np.lexsort((events.items[kept], events.users[kept], events.timestamps[kept]))
        self.users = events.users[kept][sort].astype(np.int32)
        self.items = position[events.items[kept][sort]].astype(np.int32)
        self.ts = events.timestamps[kept][sort].astype(np.int64)
        self.first = np.sort(first[order])  # first event of each renumbered item (known ones: before start)
        self.vectors = vectors[order]
        self.n_users = events.n_users
        self.n_start = int(early.sum())

    def catalogue(self, until: int) -> int:
        """Items known when the chunk ending at ``until`` is ranked: those first seen before it."""
        return max(self.n_start, int(np.searchsorted(self.first, until, side="left")))

    def before(self, t: int, n_items: int) -> Interactions:
        m = self.ts < t
        return Interactions(self.users[m], self.items[m], self.ts[m], self.n_users, n_items)

    def between(self, lo: int, hi: int, n_items: int) -> Interactions:
        m = (self.ts >= lo) & (self.ts < hi)
        return Interactions(self.users[m], self.items[m], self.ts[m], self.n_users, n_items)


def chunk_scores(model: Any, stream: Stream, lo: int, hi: int, fallback: dict) -> dict[str, list[float]]:
    """ndcg@20 of each user of the chunk [lo, hi) with a history, overall and per bucket."""
    n = stream.catalogue(hi)
    history, chunk = stream.before(lo, n), stream.between(lo, hi, n)
    users = np.intersect1d(np.unique(chunk.users), history.active_users())
    queries = HistoryBatch.from_interactions(history, users)
    counts = history.item_counts()
    ranked = pipeline_for(model, counts, stream.vectors[:n], fallback).recommend(queries, K)
    seen = history.csr[users]
    targets = chunk.csr[users] - seen.multiply(chunk.csr[users])
    targets.eliminate_zeros()
    buckets = popularity_buckets(counts)
    out: dict[str, list[float]] = {g: [] for g in GROUPS}
    for row in range(len(users)):
        relevant = targets[row].indices
        if not len(relevant):
            continue
        items = ranked.items[row]
        for group, keep in (("overall", relevant), ("tail", relevant[buckets[relevant] == TAIL]),
                            ("cold", relevant[buckets[relevant] == COLD])):
            if len(keep):
                hits = np.isin(items, keep)[None, :]
                out[group].append(float(ndcg_at_k(hits, np.asarray([len(keep)]), K)[0]))
    return out


def chosen(dataset: str, model: str) -> tuple[dict, dict]:
    """(params, text fallback) that ``evaluate`` chose on valid for ``model`` (empty if it has none)."""
    params, fallback = params_from_metrics(ROOT / "benchmarks" / "results" / dataset / "metrics.json", [model])
    return params.get(model, {}), fallback.get(model, {})


def fitter(name: str, params: dict, stream: Stream) -> Callable[[int, int], Any]:
    """``fitted(t, n)``: a new model fitted on the events before ``t``, over the first ``n`` items."""
    needs_text = make_model(name).needs_embeddings

    def fitted(t: int, n: int) -> Any:
        return make_model(name, **params).fit(stream.before(t, n), item_embeddings=stream.vectors[:n] if needs_text else None)

    return fitted


def steps(stream: Stream, bounds: list[int]) -> Iterator[tuple[int, int, int, Interactions, np.ndarray | None]]:
    """Per chunk ``[lo, hi)``: (lo, hi, items known, the previous chunk's events, the vectors of this
    chunk's new items or None): what ``partial_fit`` learns before the chunk is ranked."""
    n_prev = stream.n_start
    for c, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        n = stream.catalogue(hi)
        previous = stream.between(bounds[c - 1], lo, n) if c else stream.between(lo, lo, n)
        yield lo, hi, n, previous, stream.vectors[n_prev:n] if n > n_prev else None
        n_prev = n


def replay(name: str, params: dict, fallback: dict, stream: Stream, bounds: list[int], variant: str
           ) -> tuple[list[dict[str, list[float]]], float]:
    """Per chunk scores of one variant and its total update time (seconds)."""
    fitted = fitter(name, params, stream)
    model = fitted(bounds[0], stream.n_start)
    seconds, per_chunk = 0.0, []
    for lo, hi, n, previous, new_items in steps(stream, bounds):
        if variant != "frozen":
            began = time.perf_counter()
            model = fitted(lo, n) if variant == "refit" else model.partial_fit(previous, new_items=new_items)
            seconds += time.perf_counter() - began
        per_chunk.append(chunk_scores(model, stream, lo, hi, fallback))
    return per_chunk, seconds


def windows(timestamps: np.ndarray, share: float, chunks: int) -> list[int]:
    """Chunk bounds: the last ``share`` of the events, ``chunks`` chunks of equal time."""
    times = np.sort(timestamps)
    start, end = int(times[int(len(times) * (1.0 - share))]), int(times[-1]) + 1
    return np.linspace(start, end, chunks + 1).astype(np.int64).tolist()


def count_windows(events: Interactions) -> None:
    """User-chunks with a history (the ones scored) for each window of the grid: how the default
    window was chosen, with no model run (the most user-chunks, so the replay has the most signal)."""
    table = Table(title="user-chunks scored per (share, chunks)")
    for column in ("share", "5 chunks", "10 chunks", "20 chunks"):
        table.add_column(column, justify="right")
    for share in (0.1, 0.3, 0.5):
        row = []
        for chunks in (5, 10, 20):
            bounds = windows(events.timestamps, share, chunks)
            row.append(sum(len(np.intersect1d(np.unique(events.users[(events.timestamps >= lo) & (events.timestamps < hi)]),
                                              np.unique(events.users[events.timestamps < lo])))
                           for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)))
        table.add_row(f"{share:.1f}", *(f"{n:,}" for n in row))
    Console().print(table)


def pooled(per_chunk: list[dict[str, list[float]]], group: str) -> float:
    values = [v for chunk in per_chunk for v in chunk[group]]
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--model", default="als")
    parser.add_argument("--share", type=float, default=0.5, help="share of the events replayed (the latest)")
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--windows", action="store_true",
                        help="only count the user-chunks each (share, chunks) of the grid evaluates, and exit")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=JSON",
                        help="override one of the chosen parameters (repeatable), e.g. update_epochs=0")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    events = dataset.train + dataset.valid + dataset.test
    if len(np.unique(events.timestamps)) < 0.01 * len(events) or events.timestamps.max() < 10**8:
        sys.exit(f"{args.dataset}: its timestamps are sequence positions, not times; a stream replay needs real times")
    if args.windows:
        return count_windows(events)
    params, fallback = chosen(dataset.name, args.model)
    params = {**params, **{k: json.loads(v) for k, v in (p.split("=", 1) for p in args.param)}}
    bounds = windows(events.timestamps, args.share, args.chunks)
    start, end = bounds[0], bounds[-1]
    days = (end - start) / args.chunks / DAY
    stream = Stream(events, embed_items(dataset.items, template=DEFAULT_TEMPLATE), bounds[0])
    console = Console(width=160)
    console.print(f"{dataset.name}: {args.chunks} chunks of {days:.0f} days, {len(stream.ts):,} events, "
                  f"{stream.n_start:,} items known at the start, {len(stream.vectors) - stream.n_start:,} arriving; "
                  f"{args.model} {params}")
    results: dict[str, Any] = {}
    per_variant: dict[str, list[dict[str, list[float]]]] = {}
    for variant in track(VARIANTS, description="replaying", console=console):
        per_chunk, seconds = replay(args.model, params, fallback, stream, bounds, variant)
        per_variant[variant] = per_chunk
        results[variant] = {"seconds": seconds, **{g: pooled(per_chunk, g) for g in GROUPS},
                            "per_chunk": [{g: float(np.mean(c[g])) if c[g] else None for g in GROUPS} | {"users": len(c["overall"])}
                                          for c in per_chunk]}
    a, b, c = (results[v]["overall"] for v in VARIANTS)
    recovered = (b - a) / (c - a) if c != a else float("nan")
    flat = {v: np.asarray([x for chunk in per_variant[v] for x in chunk["overall"]]) for v in VARIANTS}
    low, high = paired_interval(flat["frozen"], flat["refit"])
    gap_low, gap_high = paired_interval(flat["refit"], flat["partial"])
    time_ratio = results["partial"]["seconds"] / results["refit"]["seconds"] if results["refit"]["seconds"] else float("nan")
    table = Table(title=f"{dataset.name}, {args.model}: stream replay, ndcg@20 pooled over chunk users")
    for column in ("variant", *GROUPS, "update seconds"):
        table.add_column(column, justify="right")
    for v in VARIANTS:
        table.add_row(v, *(f"{results[v][g]:.4f}" for g in GROUPS), f"{results[v]['seconds']:.2f}")
    console.print(table)
    out = args.out or ROOT / "benchmarks" / "results" / dataset.name / f"stream_replay_{args.model}_{args.share:g}x{args.chunks}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"dataset": dataset.name, "model": args.model, "params": params, "share": args.share,
               "chunk_days": days, "chunks": args.chunks, "refit_gain": c - a, "refit_gain_95": [low, high],
               "partial_minus_refit": b - c, "partial_minus_refit_95": [gap_low, gap_high], "user_chunks": len(flat["frozen"]), "recovered": recovered, "time_ratio": time_ratio, "variants": results}
    out.write_text(json.dumps(summary, indent=2))
    plot(results, out.with_suffix(".png"), f"{dataset.name}, {args.model}")
    print(f"refit gain over frozen: {c - a:+.4f} (paired bootstrap 95%: {low:+.4f} .. {high:+.4f}; "
          f"recovered is only meaningful when this excludes 0)")
    print(f"partial - refit: {b - c:+.4f} (paired bootstrap 95%: {gap_low:+.4f} .. {gap_high:+.4f}) over {len(flat['frozen'])} user-chunks")
    print(f"recovered={recovered:.3f} time_ratio={time_ratio:.4f}")


def paired_interval(base: np.ndarray, other: np.ndarray, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean of ``other - base`` over the same user-chunks (paired bootstrap)."""
    diff = other - base
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (draws, len(diff)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def plot(results: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for v in VARIANTS:
        values = [c["overall"] if c["overall"] is not None else np.nan for c in results[v]["per_chunk"]]
        ax.plot(range(1, len(values) + 1), values, marker="o", label=f"{v} ({results[v]['seconds']:.1f} s)")
    ax.set_xlabel("chunk")
    ax.set_ylabel("ndcg@20 (chunk users)")
    ax.set_title(title)
    ax.legend()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
