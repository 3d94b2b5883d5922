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
refits nothing: tuning passes one ``FitCache`` for the whole grid, so a grid of 30 points costs the
parts' fits once plus 30 cheap scorings. An item no part can score stays ``UNSCORED``.
Parts' own parameters use the nested form ``<part>__<param>``, e.g. ``ease__l2``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from longtail.common.scores import UNSCORED, scored_mask
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import CompositeRecommender, FitCache, Recommender
from longtail.models.explain import Explanation
from longtail.models.gate import standardise

METHODS = ("weighted", "rrf")
SPEC = re.compile(r"^fusion\((?P<parts>[^()]+)\)$")
WEIGHT_STEPS = 4  # the weight grid: the simplex in steps of 1/4


def simplex(n_parts: int, steps: int = WEIGHT_STEPS) -> list[tuple[float, ...]]:
    """Every weight vector with entries in {0, 1/steps, ..., 1} summing to 1, in a fixed order."""
    points = [c for c in itertools.product(range(steps + 1), repeat=n_parts) if sum(c) == steps]
    return [tuple(v / steps for v in c) for c in sorted(points, reverse=True)]


def _ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of every item per row (best first, ties by smaller index)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :].repeat(len(scores), 0), axis=1)
    return ranks


class FusionRecommender(CompositeRecommender):
    """Weighted-sum or RRF fusion of its parts (see module docstring). Build one through its name,
    ``make_model("fusion(ease+semantic-attn)")``: the registry makes one class per spec, whose
    ``part_classes`` give the default parts; ``members`` maps a part's name to an estimator,
    ``weights`` one per part (None: equal)."""

    name: ClassVar[str] = "fusion"
    part_classes: ClassVar[dict[str, type[Recommender]]] = {}

    def __init__(self, *, members: dict[str, Recommender] | None = None, method: str = "weighted",
                 weights: Sequence[float] | None = None, rrf_k: float = 60.0) -> None:
        given = members or {}
        self.members = {key: given[key] if key in given else cls() for key, cls in self.part_classes.items()}
        self.method = method
        self.weights = weights
        self.rrf_k = rrf_k

    def parts(self) -> dict[str, Recommender]:
        return dict(self.members)

    def fitted_parts(self) -> dict[str, Recommender]:
        return dict(zip(self.members, self.parts_, strict=True))

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        params = super().get_params(deep)
        if not deep:
            params["members"] = {k: v.clone() for k, v in self.members.items()}
        else:
            params.pop("members")
        return params

    def spec(self) -> dict[str, Any]:
        spec = super().spec()
        spec["params"].pop("members", None)
        return spec

    def _weights(self) -> np.ndarray:
        w = np.ones(len(self.members)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        return w / w.sum()

    def _check_params(self) -> None:
        if len(self.members) < 2:
            raise ConfigError("fusion needs at least two parts: fusion(a+b[+c...])")
        if self.method not in METHODS:
            raise ConfigError(f"fusion method must be one of {METHODS}, got {self.method!r}")
        w = None if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        if w is not None and (w.shape != (len(self.members),) or np.any(w < 0) or w.sum() <= 0):
            raise ConfigError(f"{self.name}: weights must be {len(self.members)} non-negative numbers, not all 0")
        if float(self.rrf_k) <= 0:
            raise ConfigError("rrf_k must be > 0")

    def _fit_with(self, X: Interactions, item_embeddings: np.ndarray | None, cache: FitCache | None) -> None:
        self.parts_ = [self._fit_part(part, X, item_embeddings, cache) for part in self.members.values()]

    def _score(self, queries: HistoryBatch) -> np.ndarray:
        return self._combine([part.score(queries) if w > 0 else None
                              for w, part in zip(self._weights(), self.parts_, strict=True)])

    def _scores_without(self, query: HistoryBatch, items: np.ndarray) -> np.ndarray:
        return self._combine([part._scores_without(query, items) if w > 0 else None
                              for w, part in zip(self._weights(), self.parts_, strict=True)])

    def _combine(self, part_scores: list[np.ndarray | None]) -> np.ndarray:
        """The fused scores from each part's (None: a part of weight 0, not scored)."""
        shape = next(s for s in part_scores if s is not None).shape
        total = np.zeros(shape, dtype=np.float32)
        anyone = np.zeros_like(total, dtype=bool)
        for weight, scores in zip(self._weights(), part_scores, strict=True):
            if weight == 0 or scores is None:
                continue
            scores = np.asarray(scores, dtype=np.float32)
            scored = scored_mask(scores)
            anyone |= scored
            if self.method == "weighted":
                z, _ = standardise(scores, scored)
                lowest = np.where(scored, z, np.inf).min(axis=1, keepdims=True)
                total += weight * np.where(scored, z, np.where(np.isfinite(lowest), lowest, 0.0))
            else:
                ranks = _ranks(np.where(scored, scores, -np.inf))
                total += weight / (float(self.rrf_k) + 1.0 + ranks)
        return np.where(anyone, total, UNSCORED).astype(np.float32)

    def _explain_items(self, query: HistoryBatch, items: list[int]) -> list[Explanation]:
        """Each part's weighted contribution to the fused score (``detail``), with the evidence
        of the part that contributed most. The parts score the history once."""
        shares = self._contributions(query)
        out = []
        for item in items:
            fused = {key: float(values[item]) for key, values in shares.items()}
            driver = max(fused, key=lambda k: fused[k])
            part = self.parts_[list(self.members).index(driver)]
            evidence = part.explain(query, np.asarray([[item]]))[0][0].evidence
            out.append(Explanation(item, "parts", self.name, evidence, fused))
        return out

    def _contributions(self, query: HistoryBatch) -> dict[str, np.ndarray]:
        """Each part's weighted term of the fused score over the catalogue, (n_items,) per part."""
        out = {}
        for key, weight, part in zip(self.members, self._weights(), self.parts_, strict=True):
            scores = np.asarray(part.score(query), dtype=np.float32)
            scored = scored_mask(scores)
            if self.method == "weighted":
                z, _ = standardise(scores, scored)
                term = weight * z
            else:
                term = weight / (float(self.rrf_k) + 1.0 + _ranks(np.where(scored, scores, -np.inf)))
            out[key] = np.where(scored, term, 0.0)[0]
        return out

    def _set_own_state(self, fitted: dict[str, Recommender], arrays: dict[str, np.ndarray]) -> None:
        self._use_parts(fitted)

    def _use_parts(self, fitted: dict[str, Recommender]) -> None:
        self.parts_ = [fitted[key] for key in self.members]

    def set_part(self, key: str, part: Recommender) -> None:
        self.members[key] = part


def fusion_class(spec: str, classes: dict[str, type[Recommender]]) -> type[FusionRecommender]:
    """The estimator class for ``fusion(a+b+...)`` given each part name's class (the registry
    passes them; one class per spec, so ``load`` and ``issubclass`` see the same one)."""
    parts = fusion_parts(spec)
    return type(f"Fusion[{'+'.join(parts)}]", (FusionRecommender,), {
        "name": spec.replace(" ", ""),
        "part_classes": {p: classes[p] for p in parts},
        "needs_embeddings": any(classes[p].needs_embeddings for p in parts),
        "param_grid": {"method": list(METHODS), "weights": [list(w) for w in simplex(len(parts))]},
    })


def fusion_parts(spec: str) -> tuple[str, ...]:
    """The part names of ``fusion(a+b+...)``; a clear error for anything else."""
    match = SPEC.match(spec.replace(" ", ""))
    if match is None:
        raise ConfigError(f"bad fusion spec {spec!r}; write fusion(a+b[+c...]) with model names")
    parts = tuple(match.group("parts").split("+"))
    if len(parts) < 2 or len(set(parts)) != len(parts):
        raise ConfigError(f"{spec}: fusion needs two or more distinct models")
    return parts
