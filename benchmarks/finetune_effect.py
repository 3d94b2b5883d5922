"""Frozen vs adapted encoder on TEST, choices on valid only (issue 14, acceptance 2 and 3).

For each dataset x protocol x mode: ``longtail finetune`` (pairs from that protocol's train,
early stopping on its valid), then ``longtail evaluate --encoder`` of the text models with the
parameters the frozen encoder's ``evaluate`` chose on valid (``--params-from``; tuning neural-ips
again costs ~20 min a run on 2 cores); when valid kept step 0 (no adapted weights beat the frozen
ones) the saved encoder is the frozen one and its test figures are the frozen ones. The frozen figures are the committed ``metrics.json`` the
params come from (``--rerun-frozen`` evaluates them again). Every step is skipped when its output exists, so the script resumes where it stopped.
Prints and writes ``summary.json``: overall / tail / cold test ndcg@20 of each model, frozen vs
adapted, and the relative change.

    python benchmarks/finetune_effect.py --datasets ml-latest-small --modes lora --protocols temporal
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GROUPS = ("overall", "tail", "cold")


def longtail(*args: str) -> None:
    command = [sys.executable, "-m", "longtail.cli", *args]
    print("$ longtail " + " ".join(args), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def reference(dataset: str, protocol: str) -> Path:
    """The committed metrics.json whose valid-chosen params the runs reuse."""
    return RESULTS / dataset / ("metrics.json" if protocol == "temporal" else "cold-items/metrics.json")


def ndcg(metrics: Path, model: str) -> dict[str, float | None]:
    entry = json.loads(metrics.read_text())["models"][model]
    return {g: (entry.get(g) or {}).get("ndcg@20") for g in GROUPS}


def change(new: float | None, old: float | None) -> float | None:
    return None if new is None or not old else round(new / old - 1.0, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="ml-latest-small,amazon-scientific-seqorder")
    parser.add_argument("--protocols", default="temporal,cold-items")
    parser.add_argument("--modes", default="lora,full")
    parser.add_argument("--models", default="semantic-attn,neural-ips")
    parser.add_argument("--max-minutes", default="12")
    parser.add_argument("--finetune-args", default="", help="extra arguments of `longtail finetune`")
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "finetune")
    parser.add_argument("--out", type=Path, default=RESULTS / "finetune")
    parser.add_argument("--summary-only", action="store_true", help="run nothing: tabulate the finished combinations")
    parser.add_argument("--rerun-frozen", action="store_true",
                        help="evaluate the frozen encoder again (default: the committed metrics.json, same params)")
    args = parser.parse_args()
    models = args.models.split(",")
    rows: list[dict[str, Any]] = []
    for dataset in args.datasets.split(","):
        for protocol in args.protocols.split(","):
            base = args.out / dataset / protocol
            frozen = base / "frozen" / "metrics.json" if args.rerun_frozen else reference(dataset, protocol)
            if not frozen.is_file():
                longtail("evaluate", "--dataset", dataset, "--protocol", protocol, "--models", ",".join(models),
                         "--params-from", str(reference(dataset, protocol)), "--no-ild", "--out", str(frozen.parent))
            for mode in args.modes.split(","):
                encoder = args.work / f"{dataset}-{protocol}-{mode}"
                adapted = base / mode / "metrics.json"
                if args.summary_only and not (encoder / "training" / "report.json").is_file():
                    continue
                if not (encoder / "training" / "report.json").is_file():  # finished runs are not reloaded
                    longtail("finetune", "--dataset", dataset, "--protocol", protocol, "--mode", mode, "--out",
                             str(encoder), "--max-minutes", args.max_minutes, "--params-from",
                             str(reference(dataset, protocol)), *args.finetune_args.split())
                report = json.loads((encoder / "training" / "report.json").read_text())
                kept = max(report["validations"], key=lambda v: v["ndcg@20"])["step"]
                if kept == 0:  # valid kept the frozen weights: the adapted encoder *is* the frozen one
                    adapted = frozen
                elif args.summary_only and not adapted.is_file():
                    continue
                elif not adapted.is_file():
                    longtail("evaluate", "--dataset", dataset, "--protocol", protocol, "--models", ",".join(models),
                             "--params-from", str(reference(dataset, protocol)), "--no-ild", "--encoder",
                             str(encoder), "--out", str(adapted.parent))
                curves = base / mode
                curves.mkdir(parents=True, exist_ok=True)
                for name in ("report.json", "loss.png"):  # the run's curves beside its test metrics
                    if (encoder / "training" / name).is_file():
                        shutil.copyfile(encoder / "training" / name, curves / f"finetune_{name}")
                for model in models:
                    old, new = ndcg(frozen, model), ndcg(adapted, model)
                    rows.append({"dataset": dataset, "protocol": protocol, "mode": mode, "model": model,
                                 "frozen": old, "adapted": new,
                                 "change": {g: change(new[g], old[g]) for g in GROUPS},
                                 "finetune": {k: report[k] for k in ("steps", "seconds", "stopped",
                                                                    "trainable_share", "peak_rss_mb")},
                                 "kept_step": kept})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2))
    table = Table(title="test ndcg@20, frozen -> adapted encoder (params chosen on valid)")
    for column in ("dataset", "protocol", "mode", "model", "kept step", *GROUPS):
        table.add_column(column)
    for row in rows:
        cells = []
        for g in GROUPS:
            old, new, rel = row["frozen"][g], row["adapted"][g], row["change"][g]
            cells.append("—" if new is None else f"{old:.4f} -> {new:.4f} ({rel:+.1%})" if rel is not None
                         else f"{new:.4f}")
        table.add_row(row["dataset"], row["protocol"], row["mode"], row["model"], str(row["kept_step"]), *cells)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
