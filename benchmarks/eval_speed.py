"""Evaluator speed vs `ranx` on the same run.

    .venv/bin/python benchmarks/eval_speed.py [--dataset ml-latest-small] [--model ease] [--rounds 5]

(a) ``Evaluator.evaluate``: one fitted model's full test evaluation — scores the *whole catalogue*
    for every test user, takes the top-K, and computes every accuracy metric for overall and each
    bucket plus the beyond-accuracy metrics;
(b) ``ranx``: reads the ``runs/<model>.tsv`` and ``qrels.tsv`` that (a) wrote and computes the same
    accuracy metrics (recall, ndcg, mrr, hit, precision @ each K) for overall and each bucket.
Both are timed in interleaved rounds after a warm-up (ranx's numba JIT and our imports); the
verdict uses the median of per-round ratios. Target (issue): (a) <= 3x (b). Model fitting is not
timed. The two results are also compared (max absolute difference).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from longtail.data import load_dataset  # noqa: E402
from longtail.eval import report  # noqa: E402
from longtail.eval.evaluator import KS, EvalResult, Evaluator  # noqa: E402
from longtail.models.registry import make_model  # noqa: E402

TARGET = 3.0
RANX_NAMES = {"recall": "recall", "ndcg": "ndcg", "mrr": "mrr", "hit": "hit_rate", "precision": "precision"}


def ranx_metrics(run_path: Path, qrels_path: Path) -> dict[str, dict[str, float]]:
    """Accuracy metrics per group, computed by ranx from the written files."""
    from ranx import Qrels, Run, evaluate

    run = pd.read_csv(run_path, sep="\t", dtype={"user_id": object, "item_id": object})
    run["score"] = -run["rank"].astype(float)  # the rank column is authoritative
    qrels = pd.read_csv(qrels_path, sep="\t", dtype=object)
    qrels["relevance"] = 1
    names = [f"{RANX_NAMES[m]}@{k}" for k in KS for m in RANX_NAMES]
    out: dict[str, dict[str, float]] = {}
    for group in ("overall", "head", "tail", "cold"):
        q = qrels if group == "overall" else qrels[qrels["bucket"] == group]
        if q.empty:
            continue
        r = run[run["user_id"].isin(set(q["user_id"]))]
        got = evaluate(
            Qrels.from_df(q.astype({"user_id": object, "item_id": object}), q_id_col="user_id", doc_id_col="item_id", score_col="relevance"),
            Run.from_df(r.astype({"user_id": object, "item_id": object}), q_id_col="user_id",
                        doc_id_col="item_id", score_col="score"),
            names, make_comparable=True,
        )
        out[group] = {f"{m}@{k}": float(got[f"{RANX_NAMES[m]}@{k}"]) for k in KS for m in RANX_NAMES}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--model", default="ease", help="registry name, default parameters")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    console = Console()

    dataset = load_dataset(args.dataset)
    model = make_model(args.model).fit(dataset.train_valid)
    evaluator = Evaluator(dataset, split="test")
    with tempfile.TemporaryDirectory() as tmp:
        run_path, qrels_path = Path(tmp) / "run.tsv", Path(tmp) / "qrels.tsv"

        def ours() -> EvalResult:
            return evaluator.evaluate(model)

        result = ours()  # warm-up, and the run file ranx reads
        report.write_tsv(report.run_frame(dataset, result, k=max(KS)), run_path)
        report.write_tsv(report.qrels_frame(dataset), qrels_path)
        theirs = ranx_metrics(run_path, qrels_path)  # warm-up: numba JIT

        times: dict[str, list[float]] = {"evaluator": [], "ranx": []}
        for _ in range(args.rounds):
            for name, func in (("evaluator", ours), ("ranx", lambda: ranx_metrics(run_path, qrels_path))):
                gc.collect()
                start = time.perf_counter()
                func()
                times[name].append(time.perf_counter() - start)

    diff = max(abs(result.metrics[g][key] - value) for g, vals in theirs.items() for key, value in vals.items())
    ratio = statistics.median(a / b for a, b in zip(times["evaluator"], times["ranx"]))
    table = Table(title=f"evaluation speed: {dataset.name}, model {args.model}, {len(evaluator.view.users)} "
                        f"test users x {dataset.n_items} items, {args.rounds} interleaved rounds")
    for column in ("step", "median s", "min s", "max s", "does"):
        table.add_column(column, justify="left" if column in ("step", "does") else "right")
    table.add_row("(a) longtail Evaluator", *(f"{f(times['evaluator']):.3f}" for f in (statistics.median, min, max)),
                  "score full catalogue + top-K + accuracy per bucket + beyond-accuracy")
    table.add_row("(b) ranx from run file", *(f"{f(times['ranx']):.3f}" for f in (statistics.median, min, max)),
                  "read run + qrels, accuracy per bucket")
    console.print(table)
    console.print(f"groups checked: {', '.join(theirs)}; max |ours - ranx| = {diff:.2e}")
    verdict = "[green]meets[/]" if ratio <= TARGET else "[red]misses[/]"
    console.print(f"(a)/(b) median of per-round ratios: {ratio:.2f}x -> {verdict} the target (<= {TARGET:g}x)")
    return 0 if np.isfinite(ratio) else 1


if __name__ == "__main__":
    raise SystemExit(main())
