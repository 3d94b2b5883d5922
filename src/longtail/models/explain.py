"""What a model says about one recommendation: the evidence it used, in item indices.

Models fill it (``Recommender.explain``); the ranking pipeline adds the text fallback's own and
renders them with titles (``longtail.pipeline.explain``). Kinds:

- ``history``: history items drove the score; ``evidence`` = those items and their weight (the
  model's own: attention, similarity, regression weight, walk mass), heaviest first;
- ``popular``: the item's popularity drove it (``detail["count"]``);
- ``text``: an item the model cannot score, ranked by the text fallback (new or without
  interactions); ``evidence`` = the history items whose text is closest;
- ``parts``: a composite model; ``detail`` = each part's share; ``evidence`` = the history items
  whose removal lowers the model's own score the most (``models.occlusion``): the
  parts' evidence proposes the candidates, the whole model's score decides;
- ``model``: the model can say no more than its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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

