"""Popularity calibration (Steck, RecSys 2018; Abdollahpouri et al., UMAP 2021 "calibrated
popularity"): each list's head / long-tail mix should match the user's own history mix.

Greedy maximisation of ``(1 - λ) Σ_{i∈S} rel_i - λ KL(p ‖ q̃(S))``: ``p`` is the share of the
user's history in each popularity group (``group_profile``), ``q(S)`` the share of the list so far,
``q̃ = (1 - α) q + α p`` with ``α = 0.01`` (Steck's smoothing, so the divergence stays finite). The
KL after adding an item depends only on the item's group, so each step computes one divergence per
group and broadcasts it over the candidates. The returned score of a pick is its marginal
objective, ``(1 - λ) rel_j - λ (KL(S ∪ {j}) - KL(S))``, with the best one-item divergence standing in
for ``KL(∅)`` (same argmax; it keeps the scores informative rather than flat).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from longtail.rerank.base import Candidates, Context, Reranker

ALPHA = 0.01


def kl_if_added(counts: np.ndarray, profile: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """``KL(p ‖ q̃)`` of the list after adding one item of group h, for every h: (n, G).

    ``counts`` (n, G) chosen items per group so far, ``profile`` (n, G) the target ``p``."""
    n_groups = counts.shape[1]
    after = counts[:, None, :] + np.eye(n_groups)[None, :, :]  # (n, h, g)
    q = after / after.sum(axis=2, keepdims=True)
    q_tilde = (1.0 - alpha) * q + alpha * profile[:, None, :]  # (n, h, g)
    p = np.broadcast_to(profile[:, None, :], q_tilde.shape)
    present = p > 0  # terms with p = 0 are 0; elsewhere q̃ >= α p > 0
    terms = np.where(present, p * (np.log(np.where(present, p, 1.0)) - np.log(np.where(present, q_tilde, 1.0))), 0.0)
    return terms.sum(axis=2)


class Calibrated(Reranker):
    """Lists whose popularity mix follows the user's history (head vs tail ∪ cold)."""

    name = "calibrated"
    needs = frozenset({"groups", "profile"})

    def __init__(self, *, diversity: float = 0.0, alpha: float = ALPHA, batch_size: int | None = None) -> None:
        super().__init__(diversity=diversity, batch_size=batch_size)
        self.alpha = alpha

    def get_params(self) -> dict[str, Any]:
        return {"diversity": self.diversity, "alpha": self.alpha}

    def _start(self, cand: Candidates, ctx: Context, k: int) -> dict[str, Any]:
        profile = np.asarray(ctx.profile, dtype=np.float64)  # (n, G)
        groups = np.asarray(ctx.groups)[np.maximum(cand.items, 0)]  # (n, N)
        return {"profile": profile, "groups": groups, "counts": np.zeros_like(profile), "kl_now": None}

    def _gain(self, state: dict[str, Any], cand: Candidates, t: int) -> np.ndarray:
        lam = self._lam
        kl = kl_if_added(state["counts"], state["profile"], float(self.alpha))  # (n, G)
        if state["kl_now"] is None:
            state["kl_now"] = kl.min(axis=1)  # (n,) stands in for KL(∅)
        state["kl_next"] = kl
        delta = np.take_along_axis(kl, state["groups"], axis=1) - state["kl_now"][:, None]  # (n, N)
        return (1.0 - lam) * cand.relevance - lam * delta

    def _update(self, state: dict[str, Any], cand: Candidates, t: int, rows: np.ndarray, cols: np.ndarray) -> None:
        picked = state["groups"][rows, cols]  # (r,)
        state["kl_now"][rows] = state["kl_next"][rows, picked]
        state["counts"][rows, picked] += 1.0
