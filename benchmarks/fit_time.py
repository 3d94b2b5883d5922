"""Fit time of a gated model (the flagship ``longtail`` by default, or ``hybrid``) vs its CF part
(EASE) alone, same data, same run.

    .venv/bin/python benchmarks/fit_time.py [--model longtail] [--dataset ml-latest-small] [--rounds 3]
        [--params-from benchmarks/results/ml-latest-small/metrics.json]

Both fit on train+valid (what ``evaluate`` refits on), on the machine's cores (2 in CI). The model's
parameters (its parts included, ``cf__l2`` etc.) come from ``--params-from`` when that file has an
entry for it, else defaults; files written before nested parameters (``cf_params``,
``semantic_params``) are read too.
Item embeddings are computed (or read from the cache) once, before timing: encoding is the
``embed`` step, not fitting. Rounds are interleaved; the verdict uses the median of per-round
ratios. Targets: the hybrid <= 3x its CF part (issue 8); the flagship <= 10 minutes (issue 15).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from longtail.data import load_dataset  # noqa: E402
from longtail.models.registry import make_model  # noqa: E402
from longtail.text import DEFAULT_TEMPLATE, embed_items  # noqa: E402

TARGETS = {"hybrid": ("ratio", 3.0), "longtail": ("seconds", 600.0)}
LEGACY_PARTS = {"cf_params": "cf", "semantic_params": "semantic"}  # metrics.json before nested params
DEFAULT_PARAMS = Path(__file__).resolve().parent / "results" / "ml-latest-small" / "metrics.json"


def nested(params: dict) -> dict:
    """``params`` with the parts' parameters in the nested form (``{"cf_params": {"l2": 200}}`` ->
    ``{"cf__l2": 200}``)."""
    out = {k: v for k, v in params.items() if k not in LEGACY_PARTS}
    for key, part in LEGACY_PARTS.items():
        out |= {f"{part}__{k}": v for k, v in (params.get(key) or {}).items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", default="longtail", choices=sorted(TARGETS))
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--params-from", type=Path, default=DEFAULT_PARAMS)
    args = parser.parse_args(argv)
    console = Console()

    params: dict = {}
    if args.params_from and args.params_from.is_file():
        params = json.loads(args.params_from.read_text()).get("models", {}).get(args.model, {}).get("params", {})
        params = nested(params)
    dataset = load_dataset(args.dataset)
    vectors = embed_items(dataset.items, template=DEFAULT_TEMPLATE)
    cf = make_model(args.model, **params).cf  # the CF part, with its parameters
    steps = {
        f"CF part alone ({cf.name})": lambda: cf.clone().fit(dataset.train_valid),
        f"{args.model} (holdout, parts x2, gate)": lambda: make_model(args.model, **params).fit(
            dataset.train_valid, item_embeddings=vectors),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, func in steps.items():
            gc.collect()
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    cf_times, hybrid_times = times.values()
    ratio = statistics.median(h / c for h, c in zip(hybrid_times, cf_times))
    table = Table(title=f"fit time on {dataset.name} train+valid ({len(dataset.train_valid):,} positives), "
                        f"{args.rounds} interleaved rounds")
    for column in ("fit", "median s", "min s", "max s"):
        table.add_column(column, justify="left" if column == "fit" else "right")
    for name, values in times.items():
        table.add_row(name, *(f"{f(values):.2f}" for f in (statistics.median, min, max)))
    console.print(table)
    console.print(f"{args.model} params: {params or 'defaults'}")
    kind, target = TARGETS[args.model]
    value = ratio if kind == "ratio" else statistics.median(hybrid_times)
    verdict = "[green]meets[/]" if value <= target else "[red]misses[/]"
    console.print(f"{args.model} / CF part, median of per-round ratios: {ratio:.2f}x; median fit "
                  f"{statistics.median(hybrid_times):.0f} s -> {verdict} the target (<= {target:g} {kind})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
