"""Fusion of any fitted models: a normalised weighted sum or reciprocal-rank fusion (RRF).

``fusion(als+semantic-attn+graph)`` (a model name ``longtail evaluate --models`` accepts) fits each
named part with its own hyper-parameters (each tuned on valid on its own, like the hybrid's parts),
then combines their scores per user:

- ``weighted``: per-user z-scores of each part (``gate.standardise``: parts live on different
  scales, only their shape per user compares), items a part cannot score at that user's lowest z,
  summed with ``weights``;
- ``rrf``: ``sum_m w_m / (rrf_k + rank_m(i))`` over each part's full-catalogue ranking (Cormack et
  al., SIGIR 2009; ``rrf_k = 60`` as there); unscored items rank last.

``method`` and ``weights`` are grid-searched on valid (``param_grid``: both methods x the simplex
in steps of 1/4, single parts included, so valid may say a part alone is best). The weight grid
refits nothing: fitted parts are memoised per (part, params, training set) for the run
(``_PART_MEMO``), so a grid of 30 points costs the parts' fits once plus 30 cheap scorings.
An item no part can score stays ``UNSCORED``.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import UNSCORED, Recommender
from longtail.models.gate import standardise

METHODS = ("weighted", "rrf")
SPEC = re.compile(r"^fusion\((?P<parts>[^()]+)\)$")
WEIGHT_STEPS = 4  # the weight grid: the simplex in steps of 1/4
_PART_MEMO: OrderedDict[tuple[Any, ...], tuple[Interactions, np.ndarray | None, Recommender]] = OrderedDict()
_MEMO_SIZE = 8


def simplex(n_parts: int, steps: int = WEIGHT_STEPS) -> list[tuple[float, ...]]:
    """Every weight vector with entries in {0, 1/steps, ..., 1} summing to 1, in a fixed order."""
    points = [c for c in itertools.product(range(steps + 1), repeat=n_parts) if sum(c) == steps]
    return [tuple(v / steps for v in c) for c in sorted(points, reverse=True)]


def _fitted_part(name: str, params: dict[str, Any], X: Interactions,
                 embeddings: np.ndarray | None) -> Recommender:
    """``make_model(name, **params).fit(X)``, memoised for the same training set (held by
    reference in the memo, so its ``id`` cannot be reused while the entry lives)."""
    from longtail.models.registry import make_model, model_class

    key = (name, json.dumps(params, sort_keys=True, default=str), id(X), id(embeddings))
    if key in _PART_MEMO:
        _PART_MEMO.move_to_end(key)
        return _PART_MEMO[key][2]
    needs = model_class(name).needs_embeddings
    model = make_model(name, **params).fit(X, item_embeddings=embeddings if needs else None)
    _PART_MEMO[key] = (X, embeddings, model)
    while len(_PART_MEMO) > _MEMO_SIZE:
        _PART_MEMO.popitem(last=False)
    return model


def _ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of every item per row (best first, ties by smaller index)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :].repeat(len(scores), 0), axis=1)
    return ranks


class FusionRecommender(Recommender):
    """Weighted-sum or RRF fusion of ``parts`` (see module docstring). Build one through its name,
    ``make_model("fusion(ease+semantic-attn)")``; ``part_params`` maps a part's name to its
    hyper-parameters (filled by tuning), ``weights`` one per part (None: equal)."""

    name: ClassVar[str] = "fusion"
    parts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, part_params: dict[str, dict[str, Any]] | None = None, method: str = "weighted",
                 weights: Sequence[float] | None = None, rrf_k: float = 60.0) -> None:
        self.part_params = part_params
        self.method = method
        self.weights = weights
        self.rrf_k = rrf_k

    def _weights(self) -> np.ndarray:
        w = np.ones(len(self.parts)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        return w / w.sum()

    def _check_params(self) -> None:
        if len(self.parts) < 2:
            raise ConfigError("fusion needs at least two parts: fusion(a+b[+c...])")
        if self.method not in METHODS:
            raise ConfigError(f"fusion method must be one of {METHODS}, got {self.method!r}")
        w = None if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        if w is not None and (w.shape != (len(self.parts),) or np.any(w < 0) or w.sum() <= 0):
            raise ConfigError(f"{self.name}: weights must be {len(self.parts)} non-negative numbers, not all 0")
        if float(self.rrf_k) <= 0:
            raise ConfigError("rrf_k must be > 0")

    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        params = self.part_params or {}
        self.parts_ = [_fitted_part(p, params.get(p, {}), X, item_embeddings) for p in self.parts]

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        total = np.zeros((len(users), self.n_items_), dtype=np.float32)
        anyone = np.zeros_like(total, dtype=bool)
        for weight, part in zip(self._weights(), self.parts_, strict=True):
            if weight == 0:
                continue
            scores = np.asarray(part._score(users, history), dtype=np.float32)
            scored = scores > UNSCORED / 2
            anyone |= scored
            if self.method == "weighted":
                z, _ = standardise(scores, scored)
                lowest = np.where(scored, z, np.inf).min(axis=1, keepdims=True)
                total += weight * np.where(scored, z, np.where(np.isfinite(lowest), lowest, 0.0))
            else:
                ranks = _ranks(np.where(scored, scores, -np.inf))
                total += weight / (float(self.rrf_k) + 1.0 + ranks)
        return np.where(anyone, total, UNSCORED).astype(np.float32)

    # -- persistence --------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        for i, part in enumerate(self.parts_):
            state.update({f"part{i}/{k}": v for k, v in part.to_arrays()[1].items()})
        return state

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        params = self.part_params or {}
        self.parts_ = []
        for i, name in enumerate(self.parts):
            prefix = f"part{i}/"
            sub = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            manifest = {"model": name, "params": params.get(name, {}), "n_items": self.n_items_}
            self.parts_.append(Recommender.from_arrays(manifest, sub))


@functools.lru_cache(maxsize=64)
def fusion_class(spec: str) -> type[FusionRecommender]:
    """The estimator class for ``fusion(a+b+...)`` (one class per spec, so ``load`` and
    ``issubclass`` see the same one)."""
    from longtail.models.registry import model_class

    match = SPEC.match(spec.replace(" ", ""))
    if match is None:
        raise ConfigError(f"bad fusion spec {spec!r}; write fusion(a+b[+c...]) with model names")
    parts = tuple(match.group("parts").split("+"))
    if len(parts) < 2 or len(set(parts)) != len(parts):
        raise ConfigError(f"{spec}: fusion needs two or more distinct models")
    classes = [model_class(p) for p in parts]  # unknown names raise here
    return type(f"Fusion[{'+'.join(parts)}]", (FusionRecommender,), {
        "name": spec.replace(" ", ""),
        "parts": parts,
        "needs_embeddings": any(c.needs_embeddings for c in classes),
        "param_grid": {"method": list(METHODS), "weights": [list(w) for w in simplex(len(parts))]},
    })
