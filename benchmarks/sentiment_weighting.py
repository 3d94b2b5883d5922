"""Does weighting positives by their review's sentiment help? ndcg@20 overall and on the tail, test
split, for semantic-attn, neural-ips (the flagship's neural part) and the flagship (``longtail``),
without (weight 0) and with sentiment weighting, on amazon-digital-music-sample.

Every point is the full ``longtail evaluate`` protocol (``eval.runner.run_evaluation``: each
model's grid searched on valid, refit on train+valid, scored once on test) at one
``sentiment_weight`` of the grid; the weight itself is chosen per model on valid (best overall
valid ndcg@20 of the model's chosen configuration, the first — i.e. the smallest — weight on ties),
never on test. A paired bootstrap over test users (2,000 resamples, seed 0) gives the 95% interval
of each with - without difference. The weight of a train/valid positive with sentiment ``s`` is ``max(0.05, 1 + a s)``
(``text.sentiment``; VADER over the review's summary and text); test reviews are never read.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/sentiment_weighting.py \
        [--dataset amazon-digital-music-sample] [--weights 0,0.5,1,2] \
        [--out benchmarks/results/amazon-digital-music-sample/sentiment_weighting.json]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from longtail.eval.runner import EvaluationConfig, run_evaluation

MODELS = ("semantic-attn", "neural-ips", "longtail")


def valid_ndcg(entry: dict[str, Any]) -> float:
    """Overall valid ndcg@20 of the configuration the tuning chose (its trial in ``tuning``)."""
    for trial in entry["tuning"]:
        if trial["params"] == entry["params"]:
            return float(trial["valid_ndcg@20"])
    raise ValueError("the chosen parameters are not among the trials")


def per_user_ndcg(run: pd.DataFrame, qrels: pd.DataFrame, bucket: str | None, k: int = 20) -> pd.Series:
    """ndcg@k of each test user (binary gains) from a run and the qrels (``bucket``: only those
    relevant items count; users without one are left out), as the protocol defines it."""
    relevant = qrels if bucket is None else qrels[qrels["bucket"] == bucket]
    n_relevant = relevant.groupby("user_id").size()
    hits = run[run["rank"] <= k].merge(relevant[["user_id", "item_id"]], on=["user_id", "item_id"])
    dcg = (1.0 / np.log2(hits["rank"] + 1.0)).groupby(hits["user_id"]).sum()
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    ideal = pd.Series(discounts[np.minimum(n_relevant.to_numpy(), k) - 1], index=n_relevant.index)
    return (dcg.reindex(ideal.index, fill_value=0.0) / ideal).sort_index()


def paired_interval(with_: pd.Series, without: pd.Series, resamples: int = 2000) -> list[float]:
    """95% bootstrap interval of the mean per-user difference (paired: the same users)."""
    diff = (with_ - without.reindex(with_.index)).to_numpy()
    draws = np.random.default_rng(0).integers(0, len(diff), (resamples, len(diff)))
    means = diff[draws].mean(axis=1)
    return [round(float(np.quantile(means, 0.025)), 4), round(float(np.quantile(means, 0.975)), 4)]


def run_point(dataset: str, weight: float, models: list[str]
              ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, pd.Series]]]:
    """One ``longtail evaluate`` at ``sentiment_weight = weight``: per model its valid and test
    figures, and its per-user test ndcg@20 (overall, tail) for the paired comparison."""
    with tempfile.TemporaryDirectory() as out:
        config = EvaluationConfig(dataset=dataset, models=models, out=Path(out), ild=False,
                                  sentiment_weight=weight)
        started = time.perf_counter()
        payload = run_evaluation(config, console=Console(file=io.StringIO()))
        seconds = time.perf_counter() - started
        qrels = pd.read_csv(Path(out) / "qrels.tsv", sep="\t", dtype={"user_id": str, "item_id": str})
        users = {}
        for name in payload["models"]:
            run = pd.read_csv(Path(out) / "runs" / f"{name}.tsv", sep="\t", dtype={"user_id": str, "item_id": str})
            users[name] = {"overall": per_user_ndcg(run, qrels, None), "tail": per_user_ndcg(run, qrels, "tail")}
    rows = {}
    for name, entry in payload["models"].items():
        rows[name] = {"valid_ndcg@20": round(valid_ndcg(entry), 4),
                      "test_ndcg@20": round(entry["overall"]["ndcg@20"], 4),
                      "test_tail_ndcg@20": round(entry["tail"]["ndcg@20"], 4),
                      "test_head_ndcg@20": round(entry["head"]["ndcg@20"], 4),
                      "params": entry["params"], "sentiment": entry.get("sentiment"),
                      "run_seconds": round(seconds, 1)}
        check = users[name]["overall"].mean()  # the per-user figures reproduce metrics.json
        assert abs(check - entry["overall"]["ndcg@20"]) < 1e-6, (name, check)
    return rows, users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="amazon-digital-music-sample")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--weights", default="0,0.5,1,2")
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/results/amazon-digital-music-sample/sentiment_weighting.json"))
    args = parser.parse_args()
    models, weights = args.models.split(","), [float(w) for w in args.weights.split(",")]
    console = Console(width=120)
    grid: dict[str, dict[str, Any]] = {}
    per_user: dict[str, dict[str, dict[str, pd.Series]]] = {}
    for weight in weights:
        console.print(f"sentiment_weight={weight:g}: tuning on valid, refitting, testing ...")
        grid[f"{weight:g}"], per_user[f"{weight:g}"] = run_point(args.dataset, weight, models)
    results = {}
    for name in models:
        points = [(w, grid[f"{w:g}"][name]) for w in weights]
        chosen_weight, chosen = max(points, key=lambda p: (p[1]["valid_ndcg@20"], -p[0]))  # ties: smallest
        off = grid[f"{weights[0]:g}"][name]
        results[name] = {"chosen_weight": chosen_weight, "without": off, "with": chosen,
                         "delta_test_ndcg@20": round(chosen["test_ndcg@20"] - off["test_ndcg@20"], 4),
                         "delta_test_tail_ndcg@20": round(chosen["test_tail_ndcg@20"] - off["test_tail_ndcg@20"], 4),
                         **{f"delta_{group}_95ci": paired_interval(per_user[f"{chosen_weight:g}"][name][group],
                                                                   per_user[f"{weights[0]:g}"][name][group])
                            for group in ("overall", "tail")}}
    payload = {"dataset": args.dataset, "weights": weights, "models": models,
               "selection": "per model, best overall valid ndcg@20 (smallest weight on ties); test never used",
               "weight_of_a_positive": "max(0.05, 1 + sentiment_weight * s), s = VADER(summary, text) in [-1, 1]",
               "machine": platform.machine(), "results": results, "grid": grid}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")

    table = Table(title=f"{args.dataset}: every sentiment_weight (test figures shown for reference)")
    for column in ("model", "weight", "valid ndcg@20", "test ndcg@20", "test tail ndcg@20"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for name in models:
        for w in weights:
            row = grid[f"{w:g}"][name]
            mark = " *" if w == results[name]["chosen_weight"] else ""
            table.add_row(name, f"{w:g}{mark}", f"{row['valid_ndcg@20']:.4f}", f"{row['test_ndcg@20']:.4f}",
                          f"{row['test_tail_ndcg@20']:.4f}")
    console.print(table)
    summary = Table(title="without vs with sentiment weighting (weight chosen on valid, *)")
    for column in ("model", "a", "ndcg w/o", "ndcg with", "95% CI", "tail w/o", "tail with", "95% CI "):
        summary.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for name, r in results.items():
        lo, hi = r["delta_overall_95ci"]
        tlo, thi = r["delta_tail_95ci"]
        summary.add_row(name, f"{r['chosen_weight']:g}", f"{r['without']['test_ndcg@20']:.4f}",
                        f"{r['with']['test_ndcg@20']:.4f}", f"[{lo:+.4f}, {hi:+.4f}]",
                        f"{r['without']['test_tail_ndcg@20']:.4f}", f"{r['with']['test_tail_ndcg@20']:.4f}",
                        f"[{tlo:+.4f}, {thi:+.4f}]")
    console.print(summary)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
