"""xQuAD with head and long tail as the two aspects (Santos et al., WWW 2010; personalised for
popularity by Abdollahpouri, Burke & Mobasher, FLAIRS 2019).

Gain of candidate ``j`` at a step: ``(1 - λ) rel_j + λ Σ_c P(c|u) · 1[j ∈ c] · (1 - share_c(S))``,
with ``P(c|u)`` the share of the user's history in aspect ``c`` (head, or tail ∪ cold) and
``share_c(S)`` the share of the list so far in ``c`` (0 for an empty list). This is the paper's
"smooth" variant: an aspect keeps earning as long as it is under-represented, where the binary one
(``Π_{i∈S} (1 - 1[i ∈ c])``) stops rewarding an aspect after its first item. At λ = 1 the list's
mix settles where ``P(head|u)(1 - h) = P(tail|u) h``, i.e. ``h = P(head|u)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from longtail.rerank.base import Candidates, Context, Reranker


class XQuAD(Reranker):
    """Relevance plus a bonus for the popularity aspect the list still lacks."""

    name = "xquad"
    needs = frozenset({"groups", "profile"})

    def _start(self, cand: Candidates, ctx: Context, k: int) -> dict[str, Any]:
        profile = np.asarray(ctx.profile, dtype=np.float64)  # (n, G)
        groups = np.asarray(ctx.groups)[np.maximum(cand.items, 0)]  # (n, N)
        return {"profile": profile, "groups": groups, "counts": np.zeros_like(profile)}

    def _gain(self, state: dict[str, Any], cand: Candidates, t: int) -> np.ndarray:
        lam = self._lam
        share = state["counts"] / t if t > 0 else state["counts"]  # (n, G)
        bonus = state["profile"] * (1.0 - share)  # (n, G)
        return (1.0 - lam) * cand.relevance + lam * np.take_along_axis(bonus, state["groups"], axis=1)

    def _update(self, state: dict[str, Any], cand: Candidates, t: int, rows: np.ndarray, cols: np.ndarray) -> None:
        state["counts"][rows, state["groups"][rows, cols]] += 1.0
