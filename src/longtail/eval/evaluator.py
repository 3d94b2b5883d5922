"""Full-catalogue evaluation under ``PROTOCOL.md``: every item is a candidate, minus the user's own
history (nothing excluded under ``keep_seen``); accuracy per bucket (overall/head/tail/cold) and
beyond-accuracy metrics.

Users are processed in batches (memory bounded by ``batch_size x n_items``); no Python loop over items.
"""

from __future__ import annotations

from collections.abc import Callable
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
        k_max = max(self.ks)
        lists, scores = [], []
        for start in range(0, len(self.view.users), self.batch_size):
            users = self.view.users[start : start + self.batch_size]
            ranked = pipeline.recommend(self.queries(users), k_max, exclude_seen=self.exclude_seen)
            lists.append(ranked.items)
            scores.append(ranked.scores)
            if on_batch is not None:
                on_batch(len(users))
        return self.evaluate_lists(
            np.concatenate(lists) if lists else np.zeros((0, k_max), np.int32),
            np.concatenate(scores) if scores else np.zeros((0, k_max), np.float32))

    def evaluate_lists(self, lists: np.ndarray, scores: np.ndarray) -> EvalResult:
        """Metrics of ranked lists (n_users, >= K_max) aligned with this split's users."""
        view, k_max = self.view, max(self.ks)
        if len(lists) != len(view.users) or lists.shape[1] < k_max:
            raise ValueError(f"need ({len(view.users)}, >= {k_max}) lists, got {lists.shape}")
        lists, scores = lists[:, :k_max], scores[:, :k_max]
        n_items = self.dataset.n_items
        onehot = sp.csr_matrix(
            (np.ones(n_items), (np.arange(n_items), view.buckets)), shape=(n_items, 3)
        )
        per_user = {g: [] for g in view.groups}
        counts_by_group = {g: [] for g in view.groups}
        code_of = {v: k for k, v in BUCKET_NAMES.items()}
        for start in range(0, len(view.users), self.batch_size):
            users = view.users[start : start + self.batch_size]
            items = lists[start : start + self.batch_size]
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
                per_user[group].append(M.accuracy_metrics(g_hits[keep], g_rel[keep], self.ks))
                counts_by_group[group].append(int(keep.sum()))
        result = EvalResult(split=self.split, users=view.users, lists=lists, scores=scores)
        for group in view.groups:
            n = sum(counts_by_group[group])
            result.n_users[group] = n
            keys = [f"{m}@{k}" for k in self.ks for m in ("recall", "ndcg", "mrr", "hit", "precision")]
            result.metrics[group] = {
                key: (float(np.concatenate([b[key] for b in per_user[group]]).mean()) if n else None)
                for key in keys
            }
        if self.beyond:
            result.beyond = self._beyond(result.lists)
        return result

    def _beyond(self, lists: np.ndarray) -> dict[str, float | None]:
        view, n_items = self.view, self.dataset.n_items
        long_tail = view.buckets != HEAD
        out: dict[str, float | None] = {}
        for k in self.ks:
            top = lists[:, :k]
            empty = len(top) == 0
            out[f"coverage@{k}"] = None if empty else M.coverage(top, n_items)
            out[f"gini@{k}"] = None if empty else M.gini_index(top, n_items)
            out[f"aplt@{k}"] = None if empty else float(M.aplt(top, long_tail).mean())
            out[f"novelty@{k}"] = None if empty else float(M.novelty(top, view.item_counts).mean())
            out[f"ild@{k}"] = (
                None
                if empty or self.item_embeddings is None
                else float(M.intra_list_diversity(top, self.item_embeddings).mean())
            )
        return out


__all__ = ["COLD", "EvalResult", "Evaluator", "GROUPS", "KS", "LEAVE_ONE_OUT_KS", "protocol_ks", "split_view"]
