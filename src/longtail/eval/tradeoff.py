"""`longtail tradeoff`: sweep the diversity knob λ of every re-ranker over one base model and
measure what each λ costs in accuracy and buys in tail exposure, diversity and coverage.

Protocol (as ``PROTOCOL.md`` for tuning): the base model's parameters are tuned on valid (or taken
as given); **valid** figures come from the model fitted on train, ranking valid users (history =
train, buckets from train counts); **test** figures from the model refitted on train+valid. λ is
chosen on valid by ``SELECTION_RULE`` and only then read on test. The model's top-N candidates are
computed once per split and replayed for every (method, λ): re-ranking never changes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from longtail.data.dataset import Dataset, load_dataset
from longtail.errors import ConfigError
from longtail.eval import plots, report
from longtail.eval.evaluator import Evaluator, split_view
from longtail.eval.tuning import fit_final, tune
from longtail.models.base import Recommender
from longtail.models.registry import make_model, model_class
from longtail.pipeline import DEFAULT_CANDIDATES, RankingPipeline
from longtail.rerank import RERANKERS, make_reranker

DEFAULT_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
METRICS = ("ndcg@20", "aplt@20", "ild@20", "coverage@20")
SPLITS = ("valid", "test")
SELECTION_RULE = "largest λ whose valid ndcg@20 >= {keep:g} x the λ=0 valid ndcg@20"
# acceptance of the issue: at least 2x the base model's aplt@20 for at most 10% less ndcg@20 (test)
TARGET_APLT_RATIO, TARGET_NDCG_RATIO = 2.0, 0.9


@dataclass
class TradeoffConfig:
    dataset: str
    model: str
    out: Path
    methods: list[str] = field(default_factory=lambda: list(RERANKERS))
    grid: list[float] = field(default_factory=lambda: list(DEFAULT_GRID))
    n_candidates: int = DEFAULT_CANDIDATES
    params: dict[str, Any] | None = None  # None: tune on valid (or defaults without tuning)
    tune: bool = True
    keep: float = 0.9
    min_rating: float = 4.0
    allow_missing_items: bool = False
    encoder: Path | None = None  # the base model's text encoder (None: the bundled MiniLM)


def check_grid(grid: Sequence[float]) -> list[float]:
    """Sorted unique λ values in [0, 1], always with 0 (the model's own ranking, the reference)."""
    values = sorted({float(x) for x in grid} | {0.0})
    if any(not 0.0 <= x <= 1.0 for x in values):
        raise ConfigError(f"diversity grid values must lie in [0, 1], got {values}")
    return values


def sweep(
    dataset: Dataset,
    split: str,
    model: Recommender,
    embeddings: np.ndarray,
    methods: Sequence[str],
    grid: Sequence[float],
    *,
    n_candidates: int = DEFAULT_CANDIDATES,
    on_step: Callable[[], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """Rows ``{method, diversity, split, ndcg@20, aplt@20, ild@20, coverage@20}`` for every method
    and λ on one split, and per method whether λ = 0 gave exactly the model's own lists."""
    view = split_view(dataset, split)
    evaluator = Evaluator(dataset, split=split, ks=(20,), item_embeddings=embeddings)
    base = RankingPipeline(model)
    own = evaluator.evaluate(base).lists
    # the candidate lists, computed once per split and re-ranked for every (method, λ)
    queries = evaluator.queries(view.users)
    pool = base.candidates(queries, max(n_candidates, 20), 20)
    rows: list[dict[str, Any]] = []
    identical: dict[str, bool] = {}
    for method in methods:
        for lam in grid:
            pipeline = RankingPipeline(model, reranker=make_reranker(method, diversity=lam),
                                       n_candidates=n_candidates, rerank_vectors=embeddings, buckets=view.buckets)
            ranked = pipeline.rerank(queries, pool, 20)
            result = evaluator.evaluate_lists(ranked.items, ranked.scores)
            figures = {**result.metrics["overall"], **result.beyond}
            rows.append({"method": method, "diversity": lam, "split": split,
                         **{key: figures[key] for key in METRICS}})
            if lam == 0.0:
                identical[method] = bool(np.array_equal(result.lists, own))
            if on_step is not None:
                on_step()
    return rows, identical


def select(rows: list[dict[str, Any]], keep: float = 0.9) -> dict[str, dict[str, Any]]:
    """Per method: λ by ``SELECTION_RULE`` on valid, its valid and test figures, and the test
    ratios to λ = 0 (the base model)."""
    frame = pd.DataFrame(rows)
    chosen: dict[str, dict[str, Any]] = {}
    for method, part in frame.groupby("method", sort=False):
        valid = part[part["split"] == "valid"].sort_values("diversity")
        test = part[part["split"] == "test"].set_index("diversity")
        floor = keep * float(valid.loc[valid["diversity"] == 0.0, "ndcg@20"].iloc[0])
        lam = float(valid.loc[valid["ndcg@20"] >= floor, "diversity"].max())
        at = {key: float(test.loc[lam, key]) for key in METRICS}
        base = {key: float(test.loc[0.0, key]) for key in METRICS}
        ndcg_ratio = at["ndcg@20"] / base["ndcg@20"] if base["ndcg@20"] > 0 else None
        aplt_ratio = at["aplt@20"] / base["aplt@20"] if base["aplt@20"] > 0 else None  # None: base 0
        chosen[str(method)] = {
            "diversity": lam,
            "valid": {key: float(valid.loc[valid["diversity"] == lam, key].iloc[0]) for key in METRICS},
            "test": at,
            "test_ndcg_ratio": ndcg_ratio,
            "test_aplt_ratio": aplt_ratio,
            "meets_target": bool((aplt_ratio is None and at["aplt@20"] > 0 or (aplt_ratio or 0) >= TARGET_APLT_RATIO)
                                 and (ndcg_ratio or 0) >= TARGET_NDCG_RATIO),
        }
    return chosen


def selection_table(payload: dict[str, Any]) -> Table:
    """Chosen λ per method and its test figures beside the base model's."""
    base = payload["baseline"]["test"]
    table = Table(title=f"{payload['dataset']}: {payload['model']} re-ranked, λ chosen on valid "
                        f"({payload['rule']}), figures on test @20")
    columns = ("method", "λ", "ndcg", "ndcg ratio", "aplt", "aplt ratio", "ild", "coverage", "2x aplt, <=10% ndcg")
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right")
    table.add_row(f"{payload['model']} (λ = 0)", "0", f"{base['ndcg@20']:.4f}", "1.000", f"{base['aplt@20']:.4f}",
                  "1.0", f"{base['ild@20']:.4f}", f"{base['coverage@20']:.4f}", "")

    def ratio(value: float | None, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    for method, entry in payload["chosen"].items():
        test = entry["test"]
        table.add_row(method, f"{entry['diversity']:g}", f"{test['ndcg@20']:.4f}", ratio(entry["test_ndcg_ratio"], 3),
                      f"{test['aplt@20']:.4f}", ratio(entry["test_aplt_ratio"], 1), f"{test['ild@20']:.4f}",
                      f"{test['coverage@20']:.4f}", "[green]yes[/]" if entry["meets_target"] else "no")
    return table


def sweep_table(rows: list[dict[str, Any]], split: str = "test") -> Table:
    """Every (method, λ) on one split."""
    table = Table(title=f"trade-off sweep, {split} @20")
    for column in ("method", "λ", *METRICS):
        table.add_column(column, justify="left" if column == "method" else "right")
    for row in rows:
        if row["split"] == split:
            table.add_row(row["method"], f"{row['diversity']:g}", *(f"{row[k]:.4f}" for k in METRICS))
    return table


def _fit_models(config: TradeoffConfig, dataset: Dataset) -> tuple[dict[str, Any], dict[str, Recommender]]:
    """Base model parameters (given, tuned on valid, or defaults) and the model of each split; text
    models read the default template's item vectors, as in ``longtail evaluate``."""
    from longtail.text import TextEncoder, embed_items

    vectors = (embed_items(dataset.items, encoder=TextEncoder(config.encoder))
               if model_class(config.model).needs_embeddings else None)
    if config.params is not None:
        params = dict(config.params)
    elif config.tune:
        params = tune(config.model, dataset, item_embeddings=vectors).best_params
    else:
        params = {}
    on_train = make_model(config.model, **params).fit(dataset.train, item_embeddings=vectors)
    on_train_valid, _ = fit_final(config.model, dataset, params, vectors)
    return params, {"valid": on_train, "test": on_train_valid}


def run_tradeoff(config: TradeoffConfig, console: Console | None = None) -> dict[str, Any]:
    """Sweep, select λ on valid, write ``tradeoff.json`` (the rows), ``selection.json``,
    ``tradeoff.tsv`` and ``tradeoff_<dataset>.png`` under ``config.out``; print both tables."""
    console = console or Console()
    model_class(config.model)  # fail fast on unknown names and bad knobs
    methods = list(dict.fromkeys(config.methods))
    for method in methods:
        make_reranker(method)
    grid = check_grid(config.grid)
    if config.n_candidates < 20:
        raise ConfigError(f"n_candidates must be >= 20 (the lists are cut at 20), got {config.n_candidates}")
    if not 0.0 < config.keep <= 1.0:
        raise ConfigError(f"keep must lie in (0, 1], got {config.keep}")
    dataset = load_dataset(config.dataset, protocol="temporal", min_rating=config.min_rating,
                           allow_missing_items=config.allow_missing_items)
    from longtail.text import embed_items

    embeddings = embed_items(dataset.items, template=None)  # items.text as is: the ild@K vectors
    start = time.perf_counter()
    with console.status(f"fitting {config.model} on train and on train+valid"):
        params, models = _fit_models(config, dataset)
    rows: list[dict[str, Any]] = []
    identical: dict[str, dict[str, bool]] = {}
    for split in SPLITS:
        with console.status(f"{split}: {len(methods)} methods x {len(grid)} values of λ"):
            split_rows, identical[split] = sweep(dataset, split, models[split], embeddings, methods, grid,
                                                 n_candidates=config.n_candidates)
        rows += split_rows
    chosen = select(rows, config.keep)
    baseline = {split: next({k: r[k] for k in METRICS} for r in rows if r["split"] == split and r["diversity"] == 0.0)
                for split in SPLITS}
    payload = {
        "dataset": dataset.name, "model": config.model, "params": params, "n_candidates": config.n_candidates,
        "grid": grid, "rule": SELECTION_RULE.format(keep=config.keep), "baseline": baseline,
        "chosen": chosen, "lambda0_identical": identical, "seconds": time.perf_counter() - start,
        "embeddings": "default encoder on items.text (the ild@K vectors)",
        "buckets": "valid: from train counts; test: from train+valid counts",
    }
    write_outputs(config.out, dataset.name, rows, payload)
    console.print(sweep_table(rows, "test"))
    console.print(selection_table(payload))
    same = all(all(v.values()) for v in identical.values())
    console.print(f"λ = 0 reproduces {config.model}'s own lists exactly (valid and test, every method): "
                  + ("[green]yes[/]" if same else f"[red]no[/] {identical}"))
    console.print(f"wrote {config.out}/tradeoff.json, selection.json, tradeoff.tsv, tradeoff_{dataset.name}.png")
    return {"rows": rows, **payload}


def write_outputs(out: Path, dataset_name: str, rows: list[dict[str, Any]], payload: dict[str, Any]) -> None:
    """The rows (the contract of ``tradeoff.json``), the selection, a TSV table and the plot."""
    import json

    report.atomic_write_text(out / "tradeoff.json", json.dumps(rows, indent=2, allow_nan=False))
    report.atomic_write_text(out / "selection.json", json.dumps(payload, indent=2, allow_nan=False))
    report.write_tsv(pd.DataFrame(rows), out / "tradeoff.tsv")
    plots.plot_tradeoff(rows, out / f"tradeoff_{dataset_name}.png",
                        title=f"{dataset_name}: {payload['model']} re-ranked (test)",
                        chosen={m: c["diversity"] for m, c in payload["chosen"].items()})
