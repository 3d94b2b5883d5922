"""What a model says about one recommendation: the evidence it used, in item indices.

Models fill it (``Recommender.explain``); the ranking pipeline adds the text fallback's own and
renders them with titles (``longtail.pipeline.explain``). Kinds:

- ``history``: history items drove the score; ``evidence`` = those items and their weight (the
  model's own: attention, similarity, regression weight, walk mass), heaviest first;
- ``popular``: the item's popularity drove it (``detail["count"]``);
- ``text``: an item the model cannot score, ranked by the text fallback (new or without
  interactions); ``evidence`` = the history items whose text is closest;
- ``parts``: a composite model; ``detail`` = each part's share; ``evidence`` = the history items
  whose removal lowers the model's own score the most (occlusion, ``occlusion_evidence``): the
  parts' evidence proposes the candidates, the whole model's score decides;
- ``model``: the model can say no more than its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from longtail.data.history import HistoryBatch

KINDS = ("history", "popular", "text", "parts", "model")


@dataclass(frozen=True)
class Evidence:
    """One history item behind a recommendation and its weight in the model's own terms."""

    item: int
    weight: float


@dataclass(frozen=True)
class Explanation:
    """Why ``item`` was recommended (see the module docstring for ``kind``)."""

    item: int
    kind: str
    model: str
    evidence: tuple[Evidence, ...] = ()
    detail: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"explanation kind must be one of {KINDS}, got {self.kind!r}")


def top_evidence(items: np.ndarray, weights: np.ndarray, top: int = 3) -> tuple[Evidence, ...]:
    """The ``top`` (item, weight) pairs with the largest positive weight, heaviest first, ties by
    item index."""
    items = np.asarray(items, np.int64)
    weights = np.asarray(weights, np.float64)
    keep = weights > 0
    items, weights = items[keep], weights[keep]
    order = np.lexsort((items, -weights))[:top]
    return tuple(Evidence(int(items[j]), float(weights[j])) for j in order)


def occlusion_evidence(score: Callable[[HistoryBatch], np.ndarray], query: HistoryBatch, items: Sequence[int],
                       candidates: Sequence[int], top: int = 3) -> list[tuple[Evidence, ...]]:
    """For each of ``items``, the ``top`` history items of ``query`` (one row) among ``candidates``
    whose removal lowers ``score`` the most; the weight is that drop. Faithful by construction:
    an item is evidence only if taking it out of the history lowers the recommendation's score.

    Why occlusion for composite models: their score is a nonlinear mix (standardised parts, a
    learned gate), so a part's own weights need not say what moves the whole; the candidates
    (the parts' evidence) keep the cost at one scoring per candidate, whatever the history length."""
    candidates = np.unique(np.asarray(candidates, np.int64))
    columns = np.asarray(items, np.int64)
    if len(candidates) == 0 or len(columns) == 0:
        return [() for _ in columns]
    base = score(query)[0, columns].astype(np.float64)
    drops = base[None, :] - score(query.without(0, candidates))[:, columns].astype(np.float64)
    return [top_evidence(candidates, drops[:, j], top) for j in range(len(columns))]
