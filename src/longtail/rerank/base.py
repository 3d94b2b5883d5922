"""What every re-ranker shares: candidate cleaning, per-user relevance normalisation, the knob, and
one greedy loop over the K output positions (vectorised over users and candidates).

A re-ranker takes a model's candidate list per user (top-N items and their scores, N = 200 by
default) and returns a list of ``k`` items. ``diversity`` (λ in [0, 1]) means the same for every
method: 0 returns the model's own ranking (exactly), 1 optimises only the diversity / calibration
term (relevance then only breaks its ties).

Candidate rules (``prepare_candidates``):

* a candidate counts only when its item id is >= 0 and its score is finite; NaN and ±inf scores
  are dropped, as ``common.topk`` never returns them either;
* a duplicate item id keeps its best-scored occurrence (first in input order on equal scores);
* fewer usable candidates than ``k``: the list is shorter, padded with item -1 and score -inf;
* candidates are ordered by (score desc, input position), so a model's sorted list keeps its
  order, ties included.

Relevance is min-max normalised per user over the usable candidates, to [0, 1] (all equal: 1):
models score on different scales (ALS dot products, EASE weights, cosine), and without this the
same λ would mean a different trade-off for every model. Scores at or below ``UNSCORED`` (a model's
"no opinion", e.g. cold items under CF) get relevance 0 and stay out of the min / max.

Returned scores are the greedy objective of each chosen item at the step it was chosen, made
non-increasing down the list (so run files stay sorted); they are not the model's scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from longtail.data.buckets import HEAD
from longtail.errors import ConfigError
from longtail.models.base import UNSCORED

UNSCORED_FLOOR = float(UNSCORED) / 2  # at or below: "the model has no opinion"
N_GROUPS = 2  # head, long tail (tail ∪ cold)
_BIG = 1e300  # floor for NaN / -inf gains of usable candidates, so argmax stays well defined


@dataclass
class Candidates:
    """Cleaned candidate lists, best first; unusable slots (``valid`` False) come last."""

    items: np.ndarray  # (n, N) int64, -1 where not valid
    scores: np.ndarray  # (n, N) float64, the model's scores (-inf where not valid)
    relevance: np.ndarray  # (n, N) float64 in [0, 1], 0 where not valid
    valid: np.ndarray  # (n, N) bool

    def __len__(self) -> int:
        return len(self.items)


def prepare_candidates(items: np.ndarray, scores: np.ndarray) -> Candidates:
    """Drop unusable candidates and duplicates, sort by (score desc, position), normalise relevance
    per row (see the module docstring for the rules)."""
    items = np.asarray(items)
    scores = np.asarray(scores, dtype=np.float64)
    if items.ndim != 2 or items.shape != scores.shape:
        raise ConfigError(f"candidate items {items.shape} and scores {scores.shape} must be equal 2-d shapes")
    items = items.astype(np.int64)
    n, m = items.shape
    valid = (items >= 0) & np.isfinite(scores)
    position = np.broadcast_to(np.arange(m), (n, m))
    order = np.lexsort((position, -np.where(valid, scores, -np.inf), ~valid), axis=1)
    items = np.take_along_axis(items, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    valid = np.take_along_axis(valid, order, axis=1)
    if m > 1:  # later occurrences of an id lose (stable sort by id keeps the best-first order)
        by_id = np.argsort(np.where(valid, items, -1), axis=1, kind="stable")
        sorted_ids = np.take_along_axis(np.where(valid, items, -1), by_id, axis=1)
        repeat = np.zeros((n, m), dtype=bool)
        repeat[:, 1:] = (sorted_ids[:, 1:] == sorted_ids[:, :-1]) & (sorted_ids[:, 1:] >= 0)
        duplicate = np.zeros((n, m), dtype=bool)
        np.put_along_axis(duplicate, by_id, repeat, axis=1)
        if duplicate.any():
            valid &= ~duplicate
            keep = np.argsort(~valid, axis=1, kind="stable")
            items, scores, valid = (np.take_along_axis(a, keep, axis=1) for a in (items, scores, valid))
    items = np.where(valid, items, -1)
    scores = np.where(valid, scores, -np.inf)
    return Candidates(items, scores, normalise_relevance(scores, valid), valid)


def normalise_relevance(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-row min-max of the scored candidates to [0, 1]; unscored and invalid slots get 0."""
    scored = valid & (scores > UNSCORED_FLOOR)  # (n, N)
    lo = np.min(np.where(scored, scores, np.inf), axis=1, keepdims=True, initial=np.inf)
    hi = np.max(np.where(scored, scores, -np.inf), axis=1, keepdims=True, initial=-np.inf)
    span = hi - lo
    ok = np.isfinite(span) & (span > 0)
    rel = np.where(ok, (scores - np.where(ok, lo, 0.0)) / np.where(ok, span, 1.0), 1.0)
    return np.where(scored, np.clip(rel, 0.0, 1.0), 0.0)


def item_groups(buckets: np.ndarray) -> np.ndarray:
    """Popularity group per item for calibration and xQuAD: 0 = head, 1 = long tail (tail ∪ cold).

    Cold items join the tail because a history never holds cold items (they have no positive by
    definition): a three-way target would always ask for zero cold items."""
    return (np.asarray(buckets) != HEAD).astype(np.int64)


def group_profile(history: sp.csr_matrix, groups: np.ndarray, n_groups: int = N_GROUPS) -> np.ndarray:
    """Share of each user's history per group, (n_users, n_groups) float64; rows of users without a
    history are uniform."""
    rows = sp.csr_matrix(history)
    if rows.shape[1] != len(groups):
        raise ConfigError(f"history has {rows.shape[1]} item columns, groups {len(groups)} items")
    binary = sp.csr_matrix((np.ones(rows.nnz), rows.indices, rows.indptr), shape=rows.shape)
    onehot = sp.csr_matrix(
        (np.ones(len(groups)), (np.arange(len(groups)), np.asarray(groups))), shape=(len(groups), n_groups)
    )
    counts = np.asarray((binary @ onehot).todense(), dtype=np.float64)  # (n, G)
    total = counts.sum(axis=1, keepdims=True)
    return np.where(total > 0, counts / np.maximum(total, 1.0), 1.0 / n_groups)


@dataclass
class Context:
    """Side information a re-ranker may read, already sliced to the batch of users."""

    embeddings: np.ndarray | None = None  # (n_items, d) float32 unit rows
    groups: np.ndarray | None = None  # (n_items,) int, see ``item_groups``
    profile: np.ndarray | None = None  # (n, n_groups) float64, see ``group_profile``


class Reranker(ABC):
    """Greedy post-processor of candidate lists; subclasses give the start state, the gain of every
    candidate at step ``t`` and the state update after a pick.

    ``needs``: which of ``embeddings`` / ``groups`` / ``profile`` the method reads."""

    name: ClassVar[str] = "base"
    needs: ClassVar[frozenset[str]] = frozenset()
    # users per greedy block; methods that gather (block, N, d) vectors want it to stay in cache
    default_batch_size: ClassVar[int] = 256

    def __init__(self, *, diversity: float = 0.0, batch_size: int | None = None) -> None:
        self.diversity = diversity
        self.batch_size = batch_size

    def get_params(self) -> dict[str, Any]:
        return {"diversity": self.diversity}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(diversity={self.diversity!r})"

    def check_params(self) -> None:
        """Raise ``ConfigError`` unless ``diversity`` is a number in [0, 1]."""
        lam = self.diversity
        number = isinstance(lam, (int, float, np.integer, np.floating)) and not isinstance(lam, bool)
        if not number or not 0.0 <= lam <= 1.0:
            raise ConfigError(f"{self.name}: diversity must be a number in [0, 1], got {lam!r}")

    def rerank(
        self,
        items: np.ndarray,
        scores: np.ndarray,
        k: int,
        *,
        embeddings: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        profile: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Re-rank candidate lists (n, N) to (items int32 (n, k), scores float32 (n, k)), padded
        with -1 / -inf. ``embeddings`` (n_items, d), ``groups`` (n_items,) and ``profile``
        (n, n_groups) as the method ``needs``."""
        self.check_params()
        if k < 0:
            raise ConfigError(f"k must be >= 0, got {k}")
        context = {"embeddings": embeddings, "groups": groups, "profile": profile}
        missing = sorted(key for key in self.needs if context[key] is None)
        if missing:
            raise ConfigError(f"re-ranker {self.name} needs {', '.join(missing)}")
        cand = prepare_candidates(items, scores)
        n_items = len(embeddings) if embeddings is not None else len(groups) if groups is not None else None
        if n_items is not None and cand.valid.any() and cand.items.max() >= n_items:
            raise ConfigError(f"candidate item {int(cand.items.max())} is outside the catalogue ({n_items} items)")
        if profile is not None and len(profile) != len(cand):
            raise ConfigError(f"profile has {len(profile)} rows for {len(cand)} users")
        out_items = np.full((len(cand), k), -1, dtype=np.int32)
        out_scores = np.full((len(cand), k), -np.inf, dtype=np.float32)
        block = max(int(self.batch_size or self.default_batch_size), 1)
        for start in range(0, len(cand), block):
            rows = slice(start, start + block)
            chunk = Candidates(cand.items[rows], cand.scores[rows], cand.relevance[rows], cand.valid[rows])
            ctx = Context(embeddings, groups, None if profile is None else np.asarray(profile)[rows])
            out_items[rows], out_scores[rows] = self._greedy(chunk, k, ctx)
        return out_items, out_scores

    def _greedy(self, cand: Candidates, k: int, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        """Pick ``k`` items one position at a time: argmax of the gain over still-available
        candidates (ties: the earlier = more relevant candidate)."""
        n, m = cand.items.shape
        picks = np.full((n, k), -1, dtype=np.int64)
        gains = np.full((n, k), -np.inf)
        if m == 0 or k == 0:
            return picks.astype(np.int32), gains.astype(np.float32)
        available = cand.valid.copy()
        state = self._start(cand, ctx, min(k, m))
        all_rows = np.arange(n)
        for t in range(min(k, m)):
            gain = self._gain(state, cand, t)  # (n, N)
            gain = np.where(available, np.fmax(gain, -_BIG), -np.inf)  # NaN / -inf of a usable item: -BIG
            best = np.argmax(gain, axis=1)  # (n,)
            ok = available[all_rows, best]
            if not ok.any():
                break
            rows, cols = all_rows[ok], best[ok]
            picks[rows, t] = cols
            gains[rows, t] = gain[rows, cols]
            available[rows, cols] = False
            self._update(state, cand, t, rows, cols)
        chosen = np.where(picks >= 0, np.take_along_axis(cand.items, np.maximum(picks, 0), axis=1), -1)
        return chosen.astype(np.int32), np.minimum.accumulate(gains, axis=1).astype(np.float32)

    @property
    def _lam(self) -> float:
        return float(self.diversity)

    @abstractmethod
    def _start(self, cand: Candidates, ctx: Context, k: int) -> dict[str, Any]:
        """Initial per-batch state (arrays over users x candidates)."""

    @abstractmethod
    def _gain(self, state: dict[str, Any], cand: Candidates, t: int) -> np.ndarray:
        """Objective gain (n, N) of adding each candidate at output position ``t``."""

    @abstractmethod
    def _update(self, state: dict[str, Any], cand: Candidates, t: int, rows: np.ndarray, cols: np.ndarray) -> None:
        """Record that user ``rows[i]`` took candidate ``cols[i]`` at position ``t``."""


def candidate_vectors(cand: Candidates, embeddings: np.ndarray) -> np.ndarray:
    """(n, N, d) float32 embeddings of the candidates (row 0 stands in for empty slots)."""
    return np.asarray(embeddings, dtype=np.float32)[np.maximum(cand.items, 0)]


def chosen_similarity(vectors: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cosine of every candidate of user ``rows[i]`` with its candidate ``cols[i]``: (len(rows), N)."""
    block = vectors if len(rows) == len(vectors) else vectors[rows]  # (r, N, d)
    picked = vectors[rows, cols]  # (r, d)
    return np.matmul(block, picked[:, :, None])[:, :, 0].astype(np.float64)  # (r, N)
