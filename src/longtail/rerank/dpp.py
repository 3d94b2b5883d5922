"""Determinantal point process, fast greedy MAP inference (Chen, Zhang & Zhou, NeurIPS 2018).

Kernel ``L = Diag(q) S Diag(q)`` with ``S_ij = cos(e_i, e_j)`` (a Gram matrix of unit vectors, so
positive semi-definite with unit diagonal) and quality ``q_i = exp(α rel_i)``. Then
``log det L_Y = 2α Σ_{i∈Y} rel_i + log det S_Y``, and Chen et al.'s trade-off
``θ Σ rel + (1 - θ) log det S_Y`` is this with ``α = θ / (2(1 - θ))``. We set ``θ = 1 - λ``, so the
greedy gain of candidate ``j`` is ``(1 - λ) rel_j + λ log d_j²``, where ``d_j²`` is the squared
residual of ``e_j`` after projecting out the chosen items (the incremental Cholesky of
Algorithm 1: one row of ``S`` and one rank-one update per step, O(N·(d + k)) per position,
never a determinant). λ = 0 is the model's ranking, λ = 1 maximises ``det S_Y`` alone.

``d²`` is floored at ``1e-12`` before the log (an item parallel to the chosen ones, e.g. a duplicate
text), so gains stay finite and relevance still orders such items.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from longtail.rerank.base import Candidates, Context, Reranker, candidate_vectors, chosen_similarity

EPS = 1e-12


class DPP(Reranker):
    """Relevance times volume: a list of items whose embeddings span many directions."""

    name = "dpp"
    needs = frozenset({"embeddings"})
    default_batch_size = 16  # (16, 200, 384) float32 vectors stay in cache: 3x faster than 128

    def _start(self, cand: Candidates, ctx: Context, k: int) -> dict[str, Any]:
        vectors = candidate_vectors(cand, ctx.embeddings)  # (n, N, d)
        return {
            "vectors": vectors,
            "c": np.zeros((len(cand), k, cand.items.shape[1])),  # (n, k, N) Cholesky rows
            "d2": np.ones(cand.items.shape),  # (n, N) = diag S: cos(e, e) = 1, exactly (ties stay ties)
        }

    def _gain(self, state: dict[str, Any], cand: Candidates, t: int) -> np.ndarray:
        lam = self._lam
        return (1.0 - lam) * cand.relevance + lam * np.log(np.maximum(state["d2"], EPS))

    def _update(self, state: dict[str, Any], cand: Candidates, t: int, rows: np.ndarray, cols: np.ndarray) -> None:
        c, d2 = state["c"], state["d2"]
        at = slice(None) if len(rows) == len(d2) else rows  # every user picked: views, no copies
        sims = chosen_similarity(state["vectors"], rows, cols)  # (r, N) = S[j, :]
        if t > 0:
            c_rows = c[at, :t, :]  # (r, t, N)
            c_j = c_rows[np.arange(len(rows)), :, cols]  # (r, t)
            sims -= np.matmul(c_j[:, None, :], c_rows)[:, 0, :]  # (r, N)
        d_j = np.sqrt(np.maximum(d2[rows, cols], 0.0))  # (r,)
        e = np.where(d_j[:, None] > np.sqrt(EPS), sims / np.maximum(d_j, np.sqrt(EPS))[:, None], 0.0)  # (r, N)
        c[at, t, :] = e
        d2[at] = np.maximum(d2[at] - e * e, 0.0)
