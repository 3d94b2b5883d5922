"""`longtail evaluate` as a library call: tune each model on valid, refit on train+valid, evaluate on
test, write the protocol's outputs. Progress is shown with rich progress bars."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from longtail.data.dataset import Dataset, load_dataset
from longtail.eval import plots, report
from longtail.eval.evaluator import EvalResult, Evaluator
from longtail.eval.tuning import expand_grid, fit_final, pipeline_for, tune
from longtail.models.hybrid import HybridRecommender
from longtail.models.registry import model_class
from longtail.pipeline import RankingPipeline
from longtail.rerank import make_reranker
from longtail.text import DEFAULT_TEMPLATE, TextEncoder, embed_items
from longtail.text.sentiment import apply_sentiment, dataset_sentiment

# How the test users are ranked and scored: (evaluator, pipeline, on_batch) -> result. The default is
# ``Evaluator.evaluate`` in this process; ``longtail.scale`` passes a sharded one (same numbers).
RankTest = Callable[[Evaluator, RankingPipeline, Callable[[int], None]], EvalResult]


@dataclass
class EvaluationConfig:
    dataset: str
    models: list[str]
    out: Path
    protocol: str = "temporal"
    keep_seen: bool = False  # leave-one-out only: repeats kept, history items ranked (paper comparison)
    min_rating: float = 4.0
    allow_missing_items: bool = False
    tune: bool = True
    ild: bool = True
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # fixed params skip tuning
    fallback: dict[str, dict[str, Any]] = field(default_factory=dict)  # fixed fallback per model
    rerank: str | None = None  # re-rank every model's top-`candidates` (longtail.rerank), or not
    diversity: float = 0.0  # the re-ranker's knob λ: 0 = the model's own ranking
    candidates: int = 200
    template: str | None = None  # the item text models read (None: text.DEFAULT_TEMPLATE)
    # weight of each train/valid positive = max(0.05, 1 + sentiment_weight * sentiment of its review)
    # (text.sentiment; 0 = off, every positive weighs 1)
    sentiment_weight: float = 0.0
    sentiment_method: str = "vader"  # or "textblob" (dev extra)
    # the models' text encoder (a `longtail finetune` output or a sentence-transformers folder;
    # None: the bundled MiniLM). ild@K and the re-rankers keep the bundled one: the protocol's
    # diversity stays comparable across encoders.
    encoder: Path | None = None


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    )


def _embeddings(dataset: Dataset, needed: bool, *, template: str | None,
                encoder: Path | None = None) -> np.ndarray | None:
    """Item vectors (cached on disk). Models read the template's item text (the default one
    unless told, as ``longtail train`` does); ``ild@K`` reads ``items.text`` exactly
    (``template=None``), as the protocol fixes (the two are often the same texts)."""
    if not needed:
        return None
    return embed_items(dataset.items, template=template, encoder=TextEncoder(encoder) if encoder else None)


def _plot_gate(model: HybridRecommender, dataset: Dataset, path: Path) -> dict[str, Any]:
    """The learned gate as a plot (weight of semantics vs item popularity) and as numbers."""
    counts = np.unique(np.geomspace(1, max(int(dataset.item_counts.max()), 2), 40).astype(int))
    normalised = np.log1p(counts) / np.log1p(max(int(model.item_counts_.max()), 1))
    curves = {f"user history {share:.0%} off-head": model.gate_curve(normalised, tail_share=share)
              for share in (0.0, 0.25, 0.5)}
    plots.plot_gate_curve(counts, curves, path, title=f"{dataset.name}: learned gate")
    return {"item_counts": counts.tolist(),
            **{label: np.round(values, 4).tolist() for label, values in curves.items()},
            "parameters": np.round(model.gate_.to_array(), 4).tolist()}


def _weighted(dataset: Dataset, config: EvaluationConfig) -> tuple[Dataset, dict[str, Any]]:
    """``dataset`` with sentiment-weighted train and valid positives, and what metrics.json says
    of it (weight, method, source, share of positives with a sentiment)."""
    sentiment = dataset_sentiment(dataset, config.sentiment_method)
    info = {"weight": config.sentiment_weight, "method": config.sentiment_method,
            "source": sentiment.source, "coverage": round(sentiment.coverage(), 4)}
    return apply_sentiment(dataset, config.sentiment_weight, sentiment), {"sentiment": info}


def _in_process(evaluator: Evaluator, pipeline: RankingPipeline, on_batch: Callable[[int], None]) -> EvalResult:
    return evaluator.evaluate(pipeline, on_batch=on_batch)


def run_evaluation(config: EvaluationConfig, console: Console | None = None, *,
                   rank_test: RankTest | None = None) -> dict[str, Any]:
    """Evaluate every model of ``config`` and write ``metrics.json``, ``runs/``, ``qrels.tsv``, plots.
    ``rank_test`` ranks and scores the test users (None: here, in batches); tuning and fitting
    always run in this process."""
    console = console or Console()
    rank_test = rank_test or _in_process
    for name in config.models:
        model_class(name)  # fail fast on an unknown name
    dataset = load_dataset(config.dataset, protocol=config.protocol, min_rating=config.min_rating,
                           allow_missing_items=config.allow_missing_items, keep_seen=config.keep_seen)
    # Under cold-items the configuration is the one chosen under the default protocol; the other
    # protocols tune on their own valid part.
    tuning_data = dataset if config.protocol != "cold-items" else load_dataset(
        config.dataset, protocol="temporal", min_rating=config.min_rating,
        allow_missing_items=config.allow_missing_items)
    sentiment: dict[str, Any] = {}
    if config.sentiment_weight:
        dataset, sentiment = _weighted(dataset, config)
        tuning_data = dataset if config.protocol != "cold-items" else _weighted(tuning_data, config)[0]
    # every model needs the item texts: text models score with them, the others' fallback does
    text_vectors = _embeddings(dataset, True, template=config.template or DEFAULT_TEMPLATE, encoder=config.encoder)
    encoder_info = {} if config.encoder is None else {"encoder": {
        "folder": Path(config.encoder).name, "fingerprint": TextEncoder(config.encoder).fingerprint}}
    reranker = None
    if config.rerank is not None:
        reranker = make_reranker(config.rerank, diversity=config.diversity)
    # re-rankers measure similarity with the ild@K vectors (items.text), so they need them too
    ild_vectors = _embeddings(dataset, config.ild or reranker is not None, template=None)
    evaluator = Evaluator(dataset, split="test", item_embeddings=ild_vectors if config.ild else None)
    entries: dict[str, dict[str, Any]] = {}
    lists: dict[str, np.ndarray] = {}
    tunings: dict[str, Any] = {}  # model name -> TuningResult, shared with models made of parts
    with _progress(console) as progress:
        overall = progress.add_task("models", total=len(config.models))
        for name in config.models:
            fallback = config.fallback.get(name, {})
            if name in config.params or not config.tune:
                params, trials = config.params.get(name, {}), []
            else:
                grid_size = len(expand_grid(model_class(name).param_grid))
                task = progress.add_task(f"{name}: tuning on valid", total=grid_size)
                tuned = tunings.get(name) or tune(name, tuning_data, item_embeddings=text_vectors,
                                                  on_trial=lambda p, v, t=task: progress.advance(t),
                                                  cache=tunings)
                tunings[name] = tuned
                params, trials, fallback = tuned.best_params, tuned.trials, tuned.fallback
            model, fit_seconds = fit_final(name, dataset, params, text_vectors)
            extra: dict[str, Any] = {"tuning": trials, "fallback": fallback, **sentiment, **encoder_info}
            if isinstance(model, HybridRecommender):
                extra["gate"] = _plot_gate(model, dataset, config.out / f"gate_{name}.png")
            rerank: dict[str, Any] = {}
            if reranker is not None:
                rerank = {"reranker": reranker, "n_candidates": config.candidates,
                          "rerank_vectors": ild_vectors, "buckets": dataset.buckets}
                extra["rerank"] = {"method": reranker.name, **reranker.get_params(),
                                   "candidates": config.candidates}
                name = f"{name}+{reranker.name}"
            pipeline = pipeline_for(model, evaluator.view.item_counts, text_vectors, fallback, **rerank)
            task = progress.add_task(f"{name}: ranking test users", total=len(evaluator.view.users))
            result = rank_test(evaluator, pipeline, lambda n, t=task: progress.advance(t, n))
            entries[name] = report.model_entry(result, params, fit_seconds, extra)
            lists[name] = result.lists[:, :20]
            report.write_tsv(report.run_frame(dataset, result, max(evaluator.ks)),
                             config.out / "runs" / f"{name}.tsv")
            progress.advance(overall)
    report.write_tsv(report.qrels_frame(dataset), config.out / "qrels.tsv")
    payload = report.write_metrics(config.out / "metrics.json", dataset, entries, evaluator.ks)
    plots.plot_metrics_by_bucket(payload, config.out / "metrics_by_bucket.png")
    plots.plot_recommendation_long_tail(dataset.item_counts, lists, config.out / "long_tail_recommendations.png",
                                        title=f"{dataset.name}: where recommendations go")
    console.print(report.metrics_table(payload))
    if config.protocol == "leave-one-out":  # the cut-offs published tables report
        console.print(report.cutoffs_table(payload, evaluator.ks))
    console.print(f"wrote {config.out}/metrics.json, runs/, qrels.tsv and plots")
    return payload
