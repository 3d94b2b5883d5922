"""Maximal Marginal Relevance (Carbonell & Goldstein, SIGIR 1998).

Greedy: at each position take ``argmax_j (1 - λ) rel_j - λ max_{s ∈ S} cos(e_j, e_s)`` over the
candidates not yet chosen, where ``rel`` is the per-user normalised relevance and ``e`` the unit
item embeddings. The max over the empty set is -1 (the lowest cosine), which shifts every gain
equally, so the first pick is always the most relevant item.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from longtail.rerank.base import Candidates, Context, Reranker, candidate_vectors, chosen_similarity


class MMR(Reranker):
    """Relevance against redundancy with what is already in the list.

    >>> MMR(diversity=0.3).rerank(items, scores, 20, embeddings=vectors)  # doctest: +SKIP
    """

    name = "mmr"
    needs = frozenset({"embeddings"})
    default_batch_size = 16  # (16, 200, 384) float32 vectors stay in cache: 3x faster than 128

    def _start(self, cand: Candidates, ctx: Context, k: int) -> dict[str, Any]:
        return {
            "vectors": candidate_vectors(cand, ctx.embeddings),  # (n, N, d)
            "max_sim": np.full(cand.items.shape, -1.0),  # (n, N)
        }

    def _gain(self, state: dict[str, Any], cand: Candidates, t: int) -> np.ndarray:
        lam = self._lam
        return (1.0 - lam) * cand.relevance - lam * state["max_sim"]

    def _update(self, state: dict[str, Any], cand: Candidates, t: int, rows: np.ndarray, cols: np.ndarray) -> None:
        sims = chosen_similarity(state["vectors"], rows, cols)  # (r, N)
        state["max_sim"][rows] = np.maximum(state["max_sim"][rows], sims)
