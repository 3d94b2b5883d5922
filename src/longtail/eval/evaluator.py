"""Full-catalogue evaluation under ``PROTOCOL.md``: every item is a candidate, minus the user's own
history (nothing excluded under ``keep_seen``); accuracy per bucket (overall/head/tail/cold) and
beyond-accuracy metrics.

Users are processed in batches (memory bounded by ``batch_size x n_items``); no Python loop over items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from longtail.data.buckets import BUCKET_NAMES, COLD, HEAD, popularity_buckets
from longtail.data.dataset import Dataset
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.eval import metrics as M
from longtail.models.base import Recommender
from longtail.pipeline import RankingPipeline

KS = (10, 20)
LEAVE_ONE_OUT_KS = (10, 20, 50)  # published leave-one-out tables report @10 and @50
GROUPS = ("overall", "head", "tail", "cold")


def protocol_ks(dataset: Dataset) -> tuple[int, ...]:
    """The cut-offs a protocol reports (the headline stays @20 in every protocol)."""
    return LEAVE_ONE_OUT_KS if dataset.protocol == "leave-one-out" else KS


@dataclass
class EvalResult:
    """What one model scored on one split: means per group, beyond-accuracy, and the lists."""

    split: str
    users: np.ndarray  # (n,) user indices evaluated
    lists: np.ndarray  # (n, K_max) item indices, -1 = empty slot
    scores: np.ndarray  # (n, K_max)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    beyond: dict[str, float | None] = field(default_factory=dict)
    n_users: dict[str, int] = field(default_factory=dict)

    def headline(self, key: str = "ndcg@20", group: str = "overall") -> float:
        value = self.metrics[group][key]
        return float("nan") if value is None else float(value)


@dataclass
class SplitView:
    """History, relevance, popularity and buckets of one split, as the protocol defines them."""

    history: Interactions  # the events a model sees (ordered histories are built from them)
    relevant: sp.csr_matrix
    users: np.ndarray
    item_counts: np.ndarray
    buckets: np.ndarray
    groups: tuple[str, ...]


def split_view(dataset: Dataset, split: str) -> SplitView:
    """``test``: history train+valid, buckets from train+valid. ``valid``: history train, buckets
    from train counts (what a model fitted on train knows)."""
    if split == "test":
        counts = dataset.item_counts
        groups = ("cold",) if dataset.protocol == "cold-items" else GROUPS
        return SplitView(dataset.train_valid, dataset.test.csr, dataset.test_users, counts,
                         dataset.buckets, groups)
    if split == "valid":
        counts = dataset.train.item_counts()
        return SplitView(dataset.train, dataset.valid.csr, dataset.valid_users, counts,
                         popularity_buckets(counts), GROUPS)
    raise ValueError(f"split must be 'test' or 'valid', got {split!r}")


class Evaluator:
    """Evaluate fitted models on one split of a dataset.

    Parameters
    ----------
    dataset : the split dataset.
    split : ``"test"`` (history train+valid) or ``"valid"`` (history train).
    ks : cut-offs (None: the protocol's, ``protocol_ks``); the headline is ndcg@20.
    item_embeddings : unit-norm (n_items, d) vectors of ``items.text`` for ``ild@K`` (None: ild null).
    beyond : compute beyond-accuracy metrics (tuning turns them off).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        split: str = "test",
        ks: tuple[int, ...] | None = None,
        batch_size: int = 512,
        item_embeddings: np.ndarray | None = None,
        beyond: bool = True,
    ) -> None:
        self.dataset = dataset
        self.split = split
        self.ks = tuple(sorted(protocol_ks(dataset) if ks is None else ks))
        self.exclude_seen = not dataset.keep_seen  # keep-seen: history items are candidates too
        self.batch_size = batch_size
        self.item_embeddings = item_embeddings
        self.beyond = beyond
        self.view = split_view(dataset, split)

    def queries(self, users: np.ndarray) -> HistoryBatch:
        """The ordered histories of ``users`` on this split (what a model is asked to rank from);
        under keep-seen they keep repeated items (the split's ``Interactions.repeats``)."""
        return HistoryBatch.from_interactions(self.view.history, users)

    def evaluate(
        self, ranker: RankingPipeline | Recommender, *, on_batch: Callable[[int], None] | None = None
    ) -> EvalResult:
        """Rank the full catalogue for every evaluated user through the ranking pipeline (a bare
        model: no fallback, no re-ranking) and compute all metrics."""
        pipeline = ranker if isinstance(ranker, RankingPipeline) else RankingPipeline(ranker)
        return self.evaluate_lists(*self.rank(pipeline, on_batch=on_batch))

    def rank(self, pipeline: RankingPipeline, start: int = 0, stop: int | None = None, *,
             on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-K_max (lists int32, scores float32), each (n, K_max), of the split's users
        ``[start:stop]``, in batches of ``batch_size`` counted from ``start``: a shard that starts
        on a batch boundary is ranked in exactly the batches of a whole run."""
        k_max = max(self.ks)
        stop = len(self.view.users) if stop is None else min(stop, len(self.view.users))
        lists, scores = [], []
        for first in range(start, stop, self.batch_size):
            users = self.view.users[first : min(first + self.batch_size, stop)]
            ranked = pipeline.recommend(self.queries(users), k_max, exclude_seen=self.exclude_seen)
            lists.append(ranked.items)
            scores.append(ranked.scores)
            if on_batch is not None:
                on_batch(len(users))
        return (np.concatenate(lists) if lists else np.zeros((0, k_max), np.int32),
                np.concatenate(scores) if scores else np.zeros((0, k_max), np.float32))

    def evaluate_lists(self, lists: np.ndarray, scores: np.ndarray) -> EvalResult:
        """Metrics of ranked lists (n_users, >= K_max) aligned with this split's users."""
        view, k_max = self.view, max(self.ks)
        if len(lists) != len(view.users) or lists.shape[1] < k_max:
            raise ValueError(f"need ({len(view.users)}, >= {k_max}) lists, got {lists.shape}")
        lists, scores = lists[:, :k_max], scores[:, :k_max]
        return self.merge([self.user_rows(lists)], lists, scores)

    def user_rows(self, lists: np.ndarray, start: int = 0) -> UserRows:
        """Per-user metric values of the split's users ``[start:start + len(lists)]`` from their
        top-K_max ``lists``: what a shard of users computes; ``merge`` averages once."""
        view = self.view
        users_all = view.users[start : start + len(lists)]
        if len(users_all) != len(lists):
            raise ValueError(f"{len(lists)} lists from user {start}, the split has {len(view.users)} users")
        n_items = self.dataset.n_items
        onehot = sp.csr_matrix(
            (np.ones(n_items), (np.arange(n_items), view.buckets)), shape=(n_items, 3)
        )
        accuracy: dict[str, list[dict[str, np.ndarray]]] = {g: [] for g in view.groups}
        beyond: list[dict[str, np.ndarray]] = []
        code_of = {v: k for k, v in BUCKET_NAMES.items()}
        for first in range(0, len(lists), self.batch_size):
            users = users_all[first : first + self.batch_size]
            items = lists[first : first + self.batch_size, : max(self.ks)]
            relevant = view.relevant[users]
            dense = relevant.toarray().astype(bool)
            valid = items >= 0
            hits = dense[np.arange(len(users))[:, None], np.where(valid, items, 0)] & valid
            n_rel_bucket = np.asarray((relevant @ onehot).todense()).astype(np.int64)
            item_bucket = view.buckets[np.where(valid, items, 0)]
            for group in view.groups:
                if group == "overall":
                    g_hits, g_rel = hits, np.asarray(relevant.sum(axis=1)).ravel().astype(np.int64)
                else:
                    code = code_of[group]
                    g_hits, g_rel = hits & (item_bucket == code), n_rel_bucket[:, code]
                keep = g_rel > 0
                accuracy[group].append(M.accuracy_metrics(g_hits[keep], g_rel[keep], self.ks))
            if self.beyond:
                beyond.append(self._beyond_rows(items))
        return UserRows({g: _joined(parts) for g, parts in accuracy.items()}, _joined(beyond))

    def merge(self, rows: Sequence[UserRows], lists: np.ndarray, scores: np.ndarray) -> EvalResult:
        """One ``EvalResult`` from the ``user_rows`` of consecutive runs of users (in user order)
        and their lists: every mean is taken once, over all users, as a whole run takes it."""
        view = self.view
        result = EvalResult(split=self.split, users=view.users, lists=lists, scores=scores)
        keys = [f"{m}@{k}" for k in self.ks for m in ("recall", "ndcg", "mrr", "hit", "precision")]
        for group in view.groups:
            values = _joined([r.accuracy[group] for r in rows])
            n = len(values[keys[0]]) if values else 0
            result.n_users[group] = n
            result.metrics[group] = {key: (float(values[key].mean()) if n else None) for key in keys}
        if self.beyond:
            result.beyond = self._beyond(lists, _joined([r.beyond for r in rows]))
        return result

    def _beyond_rows(self, lists: np.ndarray) -> dict[str, np.ndarray]:
        """Per-user aplt, novelty and ild (when vectors are given) at every K."""
        view = self.view
        long_tail = view.buckets != HEAD
        out: dict[str, np.ndarray] = {}
        for k in self.ks:
            top = lists[:, :k]
            out[f"aplt@{k}"] = M.aplt(top, long_tail)
            out[f"novelty@{k}"] = M.novelty(top, view.item_counts)
            if self.item_embeddings is not None:
                out[f"ild@{k}"] = M.intra_list_diversity(top, self.item_embeddings)
        return out

    def _beyond(self, lists: np.ndarray, per_user: dict[str, np.ndarray]) -> dict[str, float | None]:
        """Coverage and Gini from all lists, the rest as means of the per-user values."""
        n_items = self.dataset.n_items
        out: dict[str, float | None] = {}
        for k in self.ks:
            top = lists[:, :k]
            empty = len(top) == 0
            out[f"coverage@{k}"] = None if empty else M.coverage(top, n_items)
            out[f"gini@{k}"] = None if empty else M.gini_index(top, n_items)
            for name in ("aplt", "novelty", "ild"):
                key = f"{name}@{k}"
                out[key] = None if empty or key not in per_user else float(per_user[key].mean())
        return out


@dataclass
class UserRows:
    """Per-user metric values of a run of users: ``accuracy[group][metric]`` holds the users with a
    relevant item in ``group`` (in user order), ``beyond[metric]`` every user."""

    accuracy: dict[str, dict[str, np.ndarray]]
    beyond: dict[str, np.ndarray]


def _joined(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-key concatenation of per-user arrays, in order (empty dict when there are no parts)."""
    if not parts:
        return {}
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


__all__ = ["COLD", "EvalResult", "Evaluator", "GROUPS", "KS", "LEAVE_ONE_OUT_KS", "UserRows", "protocol_ks",
           "split_view"]
