"""The flagship against the strongest baselines, read from ``evaluate`` outputs (no refitting).

    .venv/bin/python benchmarks/flagship_front.py benchmarks/results/ml-latest-small [...more dirs]
        [--model longtail] [--reference-tail benchmarks/results/ml-latest-small/tail-reference]

For each results directory (``metrics.json`` of the temporal protocol; ``cold-items/metrics.json``
beside it when present): every model's test overall / tail ndcg@20 and cold-items cold ndcg@20, the
flagship's ratios to the best baseline of each (issue 15's acceptance: overall >= 1.00x the best
baseline, tail >= 1.5x the best baseline tail, cold >= 0.6x ``semantic-attn``), and the flagship's
valid front over its ``tail_weight`` grid. ``--reference-tail`` adds baselines evaluated at fixed
tail-friendly points (e.g. ItemKNN-BM25 K=200) to the tail comparison. Writes ``flagship_front.png``
in each directory (test overall vs tail, every model; the flagship's valid front).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

BASELINES = ("pop", "itemknn", "als", "bpr", "ease", "rp3beta")
COLD_REFERENCE = "semantic-attn"
TARGETS = {"overall": 1.0, "tail": 1.5, "cold": 0.6}


def ndcg(entry: dict | None, group: str) -> float | None:
    return None if entry is None else (entry.get(group) or {}).get("ndcg@20")


def load(folder: Path) -> tuple[dict, dict]:
    models = json.loads((folder / "metrics.json").read_text())["models"]
    cold_file = folder / "cold-items" / "metrics.json"
    cold = json.loads(cold_file.read_text())["models"] if cold_file.is_file() else {}
    return models, cold


def verdicts(models: dict, cold: dict, flagship: str, extra_tail: dict) -> list[tuple[str, float, str, float, float]]:
    """(what, flagship value, best baseline, its value, ratio) for overall, tail and cold."""
    mine = models[flagship]
    rows = []
    for group in ("overall", "tail"):
        pool = {name: ndcg(models.get(name), group) for name in BASELINES if name in models}
        if group == "tail":
            pool |= {f"{name} (fixed point)": ndcg(entry, group) for name, entry in extra_tail.items()}
        best = max((k for k in pool if pool[k] is not None), key=lambda k: pool[k])
        rows.append((group, ndcg(mine, group), best, pool[best], ndcg(mine, group) / max(pool[best], 1e-12)))
    if flagship in cold and COLD_REFERENCE in cold:
        a, b = ndcg(cold[flagship], "cold"), ndcg(cold[COLD_REFERENCE], "cold")
        rows.append(("cold (cold-items)", a, COLD_REFERENCE, b, a / max(b, 1e-12)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--model", default="longtail")
    parser.add_argument("--reference-tail", type=Path, action="append", default=[],
                        help="an evaluate output whose models count as tail baselines too (one per dir, in order)")
    args = parser.parse_args(argv)
    console = Console(width=120)
    for index, folder in enumerate(args.dirs):
        models, cold = load(folder)
        if args.model not in models:
            console.print(f"{folder}: no {args.model} in metrics.json")
            continue
        extra: dict = {}
        if index < len(args.reference_tail):
            extra = json.loads((args.reference_tail[index] / "metrics.json").read_text())["models"]
        dataset = folder.name
        table = Table(title=f"{dataset}: test ndcg@20 (cold: cold-items protocol)")
        for column in ("model", "overall", "tail", "head", "cold"):
            table.add_column(column, justify="left" if column == "model" else "right")
        for name, entry in models.items():
            values = [ndcg(entry, "overall"), ndcg(entry, "tail"), ndcg(entry, "head"), ndcg(cold.get(name), "cold")]
            table.add_row(name, *("—" if v is None else f"{v:.4f}" for v in values))
        console.print(table)
        checks = Table(title=f"{dataset}: {args.model} vs the strongest baseline of each (acceptance of issue 15)")
        for column in ("what", args.model, "best baseline", "its value", "ratio", "target", "verdict"):
            checks.add_column(column, justify="left" if column in ("what", "best baseline") else "right")
        for what, value, best, other, ratio in verdicts(models, cold, args.model, extra):
            target = TARGETS[what.split(" ")[0]]
            ok = "[green]meets[/]" if ratio >= target else "[red]misses[/]"
            checks.add_row(what, f"{value:.4f}", best, f"{other:.4f}", f"{ratio:.2f}x", f">= {target:g}x", ok)
        console.print(checks)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, entry in {**models, **{f"{k} (fixed)": v for k, v in extra.items()}}.items():
            x, y = ndcg(entry, "overall"), ndcg(entry, "tail")
            if x is None or y is None:
                continue
            ax.scatter([x], [y], marker="*" if name == args.model else "o", s=120 if name == args.model else 30)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        front = [(t["valid_ndcg@20"], t.get("valid_tail_ndcg@20") or 0.0) for t in models[args.model].get("tuning", [])]
        if front:
            ax.plot(*zip(*front), "--", color="grey", alpha=0.7, label=f"{args.model} valid front (tail_weight grid)")
            ax.legend(fontsize=8)
        ax.set_xlabel("overall ndcg@20")
        ax.set_ylabel("tail ndcg@20")
        ax.set_title(f"{dataset}: overall vs tail (test; front on valid)")
        fig.savefig(folder / "flagship_front.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
