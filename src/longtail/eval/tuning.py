"""Hyper-parameter choice on valid, as the protocol says: fit on train, rank for valid users
(history = train), select on overall valid ndcg@20, first grid point on ties; refit on train+valid."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longtail.data.dataset import Dataset
from longtail.eval.evaluator import Evaluator
from longtail.models.base import Recommender
from longtail.models.registry import make_model, model_class


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """All combinations, in the grid's declared order (so "first on ties" is well defined)."""
    if not grid:
        return [{}]
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


@dataclass
class TuningResult:
    best_params: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    best_value: float = float("nan")  # valid metric of best_params  # {"params", "valid_ndcg@20", "fit_seconds"}


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
    """Grid search of model ``name`` on ``dataset``'s valid split.

    A model made of parts (``components``, e.g. the hybrid's CF and semantic models) has each part
    tuned first, on its own, and the chosen parameters fixed; ``cache`` reuses tunings already done
    in the same run. Selection is the protocol's (best overall valid ``metric``), except for models
    that declare ``selection = "tail-at-cf-overall"``: the best valid *tail* ``metric`` among the
    points whose overall valid ``metric`` is at least the CF part's (never worse than CF on the
    whole, then as good as possible on the tail); if none qualifies, the best overall.
    """
    cache = {} if cache is None else cache
    klass = model_class(name)
    grid = klass.param_grid if grid is None else grid
    fixed: dict[str, Any] = {}
    reference = None
    def tuned(part: str) -> TuningResult:  # each part on its own, once per run
        if part not in cache:
            cache[part] = tune(part, dataset, item_embeddings=item_embeddings, metric=metric, cache=cache)
        return cache[part]

    for params_key, name_key in getattr(klass, "components", {}).items():  # the hybrid's parts
        part = tuned(klass().get_params()[name_key])
        fixed[params_key] = part.best_params
        if name_key == "cf":
            reference = part.best_value
    for name_of_part in getattr(klass, "parts", ()):  # a fusion's parts
        fixed.setdefault("part_params", {})[name_of_part] = tuned(name_of_part).best_params
    points = [{**fixed, **point} for point in expand_grid(grid)]
    evaluator = Evaluator(dataset, split="valid", ks=(20,), beyond=False)
    trials: list[dict[str, Any]] = []
    for params in points:
        start = time.perf_counter()
        model = make_model(name, **params).fit(dataset.train, item_embeddings=item_embeddings)
        fit_seconds = time.perf_counter() - start
        result = evaluator.evaluate(model)
        value = result.headline(metric)
        trials.append({"params": params, f"valid_{metric}": value, "fit_seconds": fit_seconds,
                       f"valid_tail_{metric}": result.metrics.get("tail", {}).get(metric),
                       f"valid_cold_{metric}": result.metrics.get("cold", {}).get(metric)})
        if on_trial is not None:
            on_trial(params, value)
    best = _select(trials, metric, getattr(klass, "selection", "overall"), reference)
    return TuningResult(best_params=points[best], trials=trials,
                        best_value=trials[best][f"valid_{metric}"])


def _select(trials: list[dict[str, Any]], metric: str, rule: str, reference: float | None) -> int:
    """Index of the chosen trial; the first point wins ties."""
    overall = [t[f"valid_{metric}"] for t in trials]
    if rule == "tail-at-cf-overall" and reference is not None:
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
