"""Writing evaluation outputs exactly as ``PROTOCOL.md`` specifies: metrics.json, runs/<model>.tsv,
qrels.tsv, PNG plots, and a rich table on screen. Files are written to a temp name, then renamed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from longtail.common import files
from longtail.data.buckets import BUCKET_NAMES
from longtail.data.dataset import Dataset
from longtail.eval.evaluator import EvalResult


def atomic_write_text(path: Path, text: str) -> None:
    """Write an output file atomically (``common.files.atomic_write_text``), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write_text(path, text)


def run_frame(dataset: Dataset, result: EvalResult, k: int = 20) -> pd.DataFrame:
    """Top-k of every evaluated user: user_id, item_id, rank (1-based), score."""
    lists, scores = result.lists[:, :k], result.scores[:, :k]
    rows, ranks = np.nonzero(lists >= 0)
    return pd.DataFrame(
        {
            "user_id": dataset.users.ids[result.users[rows]],
            "item_id": dataset.item_vocab.ids[lists[rows, ranks]],
            "rank": ranks + 1,
            "score": scores[rows, ranks],
        }
    )


def qrels_frame(dataset: Dataset) -> pd.DataFrame:
    """The test relevant set with each item's bucket."""
    test = dataset.test
    order = np.lexsort((test.items, test.users))
    users, items = test.users[order], test.items[order]
    names = np.asarray([BUCKET_NAMES[b] for b in range(3)], dtype=object)
    return pd.DataFrame(
        {
            "user_id": dataset.users.ids[users],
            "item_id": dataset.item_vocab.ids[items],
            "bucket": names[dataset.buckets[items]],
        }
    )


def write_tsv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, frame.to_csv(sep="\t", index=False, float_format="%.7g"))


def model_entry(
    result: EvalResult, params: dict[str, Any], fit_seconds: float, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One model's block of metrics.json; under cold-items only the cold bucket is present."""
    entry: dict[str, Any] = {group: values for group, values in result.metrics.items()}
    entry["beyond"] = result.beyond
    entry["params"] = params
    entry["fit_seconds"] = fit_seconds
    entry["n_users"] = result.n_users
    if extra:
        entry.update(extra)
    return entry


def write_metrics(path: Path, dataset: Dataset, models: dict[str, dict[str, Any]],
                  ks: tuple[int, ...] = (10, 20)) -> dict[str, Any]:
    """metrics.json; its protocol block says how the figures were made (split, cut-offs, exclusion)."""
    ranking = ("full catalogue, history items included (keep-seen)" if dataset.keep_seen
               else "full catalogue minus the user's train+valid items")
    payload = {
        "dataset": dataset.name,
        "protocol": {
            "name": dataset.protocol,
            "keep_seen": dataset.keep_seen,
            "min_rating": dataset.min_rating,
            "ks": list(ks),
            "ranking": ranking,
            "head_share": 0.2,
            "tuning": "grid on valid, overall valid ndcg@20, refit on train+valid",
            **dataset.summary(),
        },
        "models": models,
    }
    atomic_write_text(path, json.dumps(payload, indent=2, allow_nan=False))
    return payload


def cutoffs_table(payload: dict[str, Any], ks: tuple[int, ...]) -> Table:
    """Models x overall recall and ndcg at every cut-off (the leave-one-out comparison figures)."""
    protocol = payload["protocol"]
    mode = ", keep-seen" if protocol.get("keep_seen") else ""
    table = Table(title=f"{payload['dataset']} — protocol {protocol['name']}{mode} — test, overall")
    table.add_column("model", style="bold")
    for k in ks:
        table.add_column(f"recall@{k}", justify="right")
        table.add_column(f"ndcg@{k}", justify="right")
    for name, entry in payload["models"].items():
        overall = entry.get("overall", {})
        cells = [overall.get(f"{m}@{k}") for k in ks for m in ("recall", "ndcg")]
        table.add_row(name, *("—" if v is None else f"{v:.4f}" for v in cells))
    return table


def metrics_table(payload: dict[str, Any], k: int = 20) -> Table:
    """Models x (accuracy per bucket, beyond-accuracy) at cut-off k."""
    table = Table(title=f"{payload['dataset']} — protocol {payload['protocol']['name']} — test @{k}")
    table.add_column("model", style="bold")
    models = payload["models"]
    groups = [g for g in ("overall", "head", "tail", "cold") if any(g in m for m in models.values())]
    for group in groups:
        table.add_column(f"ndcg {group}", justify="right")
    table.add_column("recall", justify="right")
    for key in ("coverage", "aplt", "gini", "novelty", "ild"):
        table.add_column(key, justify="right")
    table.add_column("fit s", justify="right")
    best = {g: max((m[g][f"ndcg@{k}"] or 0.0) for m in models.values() if g in m) for g in groups}

    def fmt(value: float | None, bold: bool = False) -> str:
        if value is None:
            return "—"
        text = f"{value:.4f}"
        return f"[green]{text}[/]" if bold else text

    for name, entry in models.items():
        cells = [fmt(entry[g][f"ndcg@{k}"], (entry[g][f"ndcg@{k}"] or 0) == best[g] > 0) for g in groups]
        first = groups[0]
        cells.append(fmt(entry[first][f"recall@{k}"]))
        beyond = entry.get("beyond", {})
        cells += [fmt(beyond.get(f"{key}@{k}")) for key in ("coverage", "aplt", "gini", "novelty", "ild")]
        cells.append(f"{entry.get('fit_seconds', 0.0):.1f}")
        table.add_row(name, *cells)
    return table
