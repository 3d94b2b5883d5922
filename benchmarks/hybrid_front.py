"""The hybrid's trade-off front, read from an ``evaluate`` output (no refitting).

    .venv/bin/python benchmarks/hybrid_front.py benchmarks/results/ml-latest-small [...more dirs]

For every ``tail_weight`` the hybrid tried while tuning, its *valid* overall and tail ndcg@20 (the
front the selection rule walks along), the CF part's valid overall (the floor the rule keeps), the
chosen point, and its test figures. Writes ``hybrid_front.png`` in each directory and prints a table.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    console = Console()
    for folder in args.dirs:
        payload = json.loads((folder / "metrics.json").read_text())
        entry = payload["models"].get("hybrid")
        if entry is None or not entry.get("tuning"):
            console.print(f"{folder}: no tuned hybrid in metrics.json")
            continue
        cf_name = entry["params"].get("cf", "ease")
        cf_trials = payload["models"].get(cf_name, {}).get("tuning") or []
        cf_valid = max((t["valid_ndcg@20"] for t in cf_trials), default=None)
        table = Table(title=f"{payload['dataset']}: hybrid front on valid (chosen: "
                            f"tail_weight={entry['params']['tail_weight']})")
        for column in ("tail_weight", "valid overall", "valid tail", "valid cold", "x CF overall"):
            table.add_column(column, justify="right")
        xs, ys, labels = [], [], []
        for trial in entry["tuning"]:
            w = trial["params"]["tail_weight"]
            overall, tail = trial["valid_ndcg@20"], trial.get("valid_tail_ndcg@20") or 0.0
            cold = trial.get("valid_cold_ndcg@20")
            ratio = f"{overall / cf_valid:.3f}" if cf_valid else "—"
            table.add_row(f"{w:g}", f"{overall:.4f}", f"{tail:.4f}", "—" if cold is None else f"{cold:.4f}", ratio)
            xs.append(overall), ys.append(tail), labels.append(f"{w:g}")
        console.print(table)
        console.print(f"test (chosen point): overall {entry['overall']['ndcg@20']:.4f}, "
                      f"tail {entry['tail']['ndcg@20']:.4f}, cold {entry['cold']['ndcg@20'] or 0:.4f}")
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(xs, ys, "o-", label="hybrid, valid (tail_weight labels)")
        for x, y, label in zip(xs, ys, labels):
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4))
        if cf_valid:
            ax.axvline(cf_valid, color="grey", linestyle="--", label=f"{cf_name} valid overall (floor)")
        ax.set_xlabel("valid overall ndcg@20")
        ax.set_ylabel("valid tail ndcg@20")
        ax.set_title(f"{payload['dataset']}: overall vs tail")
        ax.legend()
        fig.savefig(folder / "hybrid_front.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
