"""``longtail evaluate --backend ray``: test users ranked and scored in shards, averaged once.

Tuning and the final fit stay in this process; only "rank the test users, compute their metric
values" is sharded. A shard is a run of whole ranking batches of the evaluator (``shards_of`` with
``align=batch_size``), so its users are ranked in exactly the batches of a local run; it returns its
lists and its per-user metric rows (``Evaluator.user_rows``), and ``Evaluator.merge`` takes every
mean once over all users, in user order — the very arrays and reductions of a local run, so the
merged metrics are bitwise the local ones (``tests/scale``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from longtail.eval.evaluator import EvalResult, Evaluator, UserRows
from longtail.pipeline import RankingPipeline
from longtail.scale.backend import Backend, Shard, shards_of


def score_shard(shard: Shard, evaluator: Evaluator, pipeline: RankingPipeline
                ) -> tuple[np.ndarray, np.ndarray, UserRows]:
    """One shard's (lists (n, K_max), scores (n, K_max), per-user metric rows)."""
    lists, scores = evaluator.rank(pipeline, shard.start, shard.stop)
    return lists, scores, evaluator.user_rows(lists, shard.start)


class ShardedEvaluate:
    """A ``runner.RankTest`` over ``backend``: ``shards_per_worker`` shards per worker (more
    shards even out uneven users; each costs a task). The evaluator is put once, each model's
    pipeline once per model."""

    def __init__(self, backend: Backend, *, shards_per_worker: int = 2) -> None:
        self.backend = backend
        self.shards_per_worker = max(1, int(shards_per_worker))
        self._evaluator: tuple[Evaluator, Any] | None = None

    def _handle(self, evaluator: Evaluator) -> Any:
        if self._evaluator is None or self._evaluator[0] is not evaluator:
            self._evaluator = (evaluator, self.backend.put(evaluator))
        return self._evaluator[1]

    def __call__(self, evaluator: Evaluator, pipeline: RankingPipeline,
                 on_batch: Callable[[int], None] | None = None) -> EvalResult:
        n_users = len(evaluator.view.users)
        n_shards = self.backend.workers * self.shards_per_worker
        shards = shards_of(n_users, max(1, -(-n_users // n_shards)), align=evaluator.batch_size)
        done = (lambda shard, _: on_batch(len(shard))) if on_batch is not None else None
        parts = self.backend.map(score_shard, shards, self._handle(evaluator), self.backend.put(pipeline),
                                 on_result=done)
        k_max = max(evaluator.ks)
        lists = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, k_max), np.int32)
        scores = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, k_max), np.float32)
        return evaluator.merge([p[2] for p in parts], lists, scores)
