"""Hyper-parameter choice on valid, as the protocol says: fit on train, rank for valid users
(history = train), select on overall valid ndcg@20, first grid point on ties; refit on train+valid."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longtail.common.scores import scored_mask
from longtail.data.dataset import Dataset
from longtail.data.history import HistoryBatch
from longtail.eval.evaluator import Evaluator
from longtail.models.base import FitCache, Recommender
from longtail.models.registry import make_model, model_class
from longtail.pipeline import FALLBACK_GRID, RankingPipeline, TextFallback


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """All combinations, in the grid's declared order (so "first on ties" is well defined)."""
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


@dataclass
class TuningResult:
    """What the grid search chose: the model's parameters (parts' in the ``part__param`` form), the
    text fallback's threshold, and every trial."""

    best_params: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)  # {"params", "valid_ndcg@20", ...}
    best_value: float = float("nan")  # valid metric of best_params
    fallback: dict[str, Any] = field(default_factory=dict)  # {"threshold": t} chosen on valid


OFF = {"threshold": None}  # the text fallback switched off


def pipeline_for(model: Recommender, popularity: np.ndarray, item_embeddings: np.ndarray | None,
                 fallback: dict[str, Any] | None = None, **rerank: Any) -> RankingPipeline:
    """The ranking pipeline ``evaluate`` and the service both use, around a fitted ``model``;
    ``popularity``: interactions per item in the histories being ranked (users without any)."""
    settings = TextFallback(**(fallback or {}))
    return RankingPipeline(model, item_vectors=item_embeddings, fallback=settings,
                           popularity=np.asarray(popularity, np.float32), **rerank)


def scores_every_item(model: Recommender, dataset: Dataset) -> bool:
    """True when ``model`` leaves no item ``UNSCORED`` for a few valid users: then the text
    fallback never acts and its threshold needs no search."""
    queries = HistoryBatch.from_interactions(dataset.train, dataset.valid_users[:8])
    return bool(scored_mask(model.score(queries)).all())


def tune(
    name: str,
    dataset: Dataset,
    *,
    grid: dict[str, list[Any]] | None = None,
    item_embeddings: np.ndarray | None = None,
    metric: str = "ndcg@20",
    on_trial: Callable[[dict[str, Any], float], None] | None = None,
    cache: dict[str, TuningResult] | None = None,
) -> TuningResult:
    """Grid search of model ``name`` on ``dataset``'s valid split, through the ranking pipeline.

    A composite model (``Recommender.parts``, e.g. the hybrid's CF and semantic models) has each
    part tuned first, on its own, and the chosen parameters fixed as ``part__param``; ``cache``
    reuses tunings already done in the same run, and one ``FitCache`` lets the composite's own grid
    reuse its fitted parts. Selection is the model's ``selection`` rule (``"overall"``: best
    overall valid ``metric``; ``"tail-at-reference"``: the best valid *tail* ``metric`` among the
    points whose overall is at least the ``reference_part``'s alone, else the best overall), with
    the text fallback off. Then the fallback's threshold (``FALLBACK_GRID``, None = off) is chosen
    for the chosen point, same metric, first on ties.
    """
    cache = {} if cache is None else cache
    klass = model_class(name)
    grid = klass.param_grid if grid is None else grid
    fixed: dict[str, Any] = {}
    reference = None
    for key, part in klass().parts().items():  # each part on its own, once per run
        if part.name not in cache:
            cache[part.name] = tune(part.name, dataset, item_embeddings=item_embeddings, metric=metric, cache=cache)
        fixed |= {f"{key}__{k}": v for k, v in cache[part.name].best_params.items()}
        if key == klass.reference_part:
            reference = cache[part.name].best_value
    points = [{**fixed, **point} for point in expand_grid(grid)]
    evaluator = Evaluator(dataset, split="valid", ks=(20,), beyond=False)
    fits = FitCache()
    trials: list[dict[str, Any]] = []
    models: list[Recommender] = []
    for params in points:
        start = time.perf_counter()
        model = make_model(name, **params).fit(dataset.train, item_embeddings=item_embeddings, cache=fits)
        fit_seconds = time.perf_counter() - start
        # the model's own grid is searched with the fallback off (the model alone, as before the
        # pipeline existed); the fallback is then tuned for the chosen model
        result = evaluator.evaluate(pipeline_for(model, evaluator.view.item_counts, item_embeddings, OFF))
        value = result.headline(metric)
        trials.append({"params": params, f"valid_{metric}": value, "fit_seconds": fit_seconds,
                       f"valid_tail_{metric}": result.metrics.get("tail", {}).get(metric),
                       f"valid_cold_{metric}": result.metrics.get("cold", {}).get(metric)})
        models.append(model)
        if on_trial is not None:
            on_trial(params, value)
    best = _select(trials, metric, klass.selection, reference)
    fallback = _tune_fallback(models[best], dataset, evaluator, item_embeddings, metric, trials[best])
    return TuningResult(best_params=points[best], trials=trials,
                        best_value=trials[best][f"valid_{metric}"], fallback=fallback)


def _tune_fallback(model: Recommender, dataset: Dataset, evaluator: Evaluator, item_embeddings: np.ndarray | None,
                   metric: str, chosen: dict[str, Any]) -> dict[str, Any]:
    """The fallback threshold with the best overall valid ``metric`` (first on ties) for ``model``;
    each point is recorded in ``chosen["fallback"]``."""
    default = {"threshold": FALLBACK_GRID[0]}
    if item_embeddings is None or scores_every_item(model, dataset):
        return default
    values = []
    for threshold in FALLBACK_GRID:
        result = evaluator.evaluate(pipeline_for(model, evaluator.view.item_counts, item_embeddings,
                                                 {"threshold": threshold}))
        values.append(result.headline(metric))
    chosen["fallback"] = [{"threshold": t, f"valid_{metric}": v} for t, v in zip(FALLBACK_GRID, values, strict=True)]
    return {"threshold": FALLBACK_GRID[int(np.argmax(values))]}


def _select(trials: list[dict[str, Any]], metric: str, rule: str, reference: float | None) -> int:
    """Index of the chosen trial; the first point wins ties."""
    overall = [t[f"valid_{metric}"] for t in trials]
    if rule == "tail-at-reference" and reference is not None:
        ok = [i for i, v in enumerate(overall) if v >= reference]
        if ok:
            tail = [trials[i][f"valid_tail_{metric}"] or 0.0 for i in ok]
            return ok[int(np.argmax(tail))]
    return int(np.argmax(overall))


def fit_final(
    name: str, dataset: Dataset, params: dict[str, Any], item_embeddings: np.ndarray | None = None
) -> tuple[Recommender, float]:
    """Refit the chosen configuration on train+valid; returns the model and its fit time."""
    start = time.perf_counter()
    model = make_model(name, **params).fit(dataset.train_valid, item_embeddings=item_embeddings)
    return model, time.perf_counter() - start
