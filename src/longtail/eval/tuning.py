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
    trials: list[dict[str, Any]] = field(default_factory=list)  # {"params", "valid_ndcg@20", "fit_seconds"}


def tune(
    name: str,
    dataset: Dataset,
    *,
    grid: dict[str, list[Any]] | None = None,
    item_embeddings: np.ndarray | None = None,
    metric: str = "ndcg@20",
    on_trial: Callable[[dict[str, Any], float], None] | None = None,
) -> TuningResult:
    """Grid search of model ``name`` on ``dataset``'s valid split."""
    grid = model_class(name).param_grid if grid is None else grid
    points = expand_grid(grid)
    evaluator = Evaluator(dataset, split="valid", ks=(20,), beyond=False)
    trials: list[dict[str, Any]] = []
    best, best_value = points[0], -np.inf
    for params in points:
        start = time.perf_counter()
        model = make_model(name, **params).fit(dataset.train, item_embeddings=item_embeddings)
        fit_seconds = time.perf_counter() - start
        value = evaluator.evaluate(model).headline(metric)
        trials.append({"params": params, f"valid_{metric}": value, "fit_seconds": fit_seconds})
        if value > best_value:  # strict: the first point wins ties
            best, best_value = params, value
        if on_trial is not None:
            on_trial(params, value)
    return TuningResult(best_params=best, trials=trials)


def fit_final(
    name: str, dataset: Dataset, params: dict[str, Any], item_embeddings: np.ndarray | None = None
) -> tuple[Recommender, float]:
    """Refit the chosen configuration on train+valid; returns the model and its fit time."""
    start = time.perf_counter()
    model = make_model(name, **params).fit(dataset.train_valid, item_embeddings=item_embeddings)
    return model, time.perf_counter() - start
