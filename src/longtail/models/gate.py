"""The popularity gate of the hybrid: how much each candidate's score should come from semantics.

For user ``u`` and item ``i`` with per-user standardised scores ``c`` (CF) and ``s`` (semantics):

    warm item:  g = sigmoid(θ · [1, p_i, t_u, p_i t_u, l_u]);  score = (1 - g) c + g s + β0 p_i + β1 p_i t_u
    cold item (CF cannot score it):                         score = γ1 s + γ0

``p_i`` = log(1 + count_i) / log(1 + max count) (item popularity in [0, 1]); ``t_u`` = share of
the user's history outside the head (appetite for the tail); ``l_u`` = log history length. The
cold flag switches to a semantics-only path whose offset γ0 says how a new item compares with warm
ones. Nothing is hand-set: ``fit_gate`` minimises a sampled softmax cross-entropy of the user's
held-out items over candidate lists (the top of each part, the positives, random items), with tail
and cold positives weighted by ``tail_weight`` (1 = plain likelihood).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from longtail.common.scores import scored_mask

N_THETA, N_BETA, N_GAMMA = 5, 2, 2


@dataclass
class GateInputs:
    """Everything the gate reads for a block of users (dense over the catalogue or a candidate set)."""

    cf: np.ndarray  # (n, m) standardised CF scores (0 where unscored)
    cf_scored: np.ndarray  # (n, m) bool: CF has an opinion
    semantic: np.ndarray  # (n, m) standardised semantic scores
    popularity: np.ndarray  # (m,) or (n, m) p_i in [0, 1]
    cold: np.ndarray  # (m,) or (n, m) float 0/1
    tail_share: np.ndarray  # (n,)
    log_length: np.ndarray  # (n,)

    def at(self, columns: np.ndarray) -> GateInputs:
        """The same inputs for the items ``columns`` only (the gate is elementwise per item)."""
        pick = lambda a: a[..., columns]  # noqa: E731
        return GateInputs(pick(self.cf), pick(self.cf_scored), pick(self.semantic), pick(self.popularity),
                          pick(self.cold), self.tail_share, self.log_length)


def standardise(scores: np.ndarray, scored: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-user z-scores over the items a model scored (``UNSCORED`` excluded): the two parts live
    on different scales (EASE regression weights vs cosines) and only their shape per user is
    comparable. Returns (z with 0 where unscored, scored mask)."""
    scores = np.asarray(scores, dtype=np.float32)
    if scored is None:
        scored = scored_mask(scores)
    count = np.maximum(scored.sum(axis=1, keepdims=True), 1)
    masked = np.where(scored, scores, 0.0)
    mean = masked.sum(axis=1, keepdims=True) / count
    var = (np.where(scored, scores - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count
    z = (scores - mean) / np.sqrt(var + 1e-12)
    return np.where(scored, z, 0.0).astype(np.float32), scored


class PopularityGate(torch.nn.Module):
    """The gated blend above; it starts as an even blend with no popularity term."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.zeros(N_THETA))
        self.beta = torch.nn.Parameter(torch.zeros(N_BETA))
        self.gamma = torch.nn.Parameter(torch.tensor([0.0, 1.0]))  # cold path: offset, semantic scale
        self.log_scale = torch.nn.Parameter(torch.tensor(1.0))  # softmax temperature (training only)

    def gate(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        p = x["popularity"]
        t, length = x["tail_share"][:, None], x["log_length"][:, None]
        th = self.theta
        return torch.sigmoid(th[0] + th[1] * p + th[2] * t + th[3] * p * t + th[4] * length)

    def parts(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The score's additive parts and the gate (1 on the cold path), for explanations."""
        g = self.gate(x)
        scored = x["cf_scored"]
        p, t = x["popularity"], x["tail_share"][:, None]
        zero = torch.zeros_like(x["semantic"])
        return {
            "gate": torch.where(scored, g, torch.ones_like(g)),
            "cf": torch.where(scored, (1 - g) * x["cf"], zero),
            "semantic": torch.where(scored, g * x["semantic"], self.gamma[1] * x["semantic"]),
            "popularity": torch.where(scored, self.beta[0] * p + self.beta[1] * p * t, zero + self.gamma[0]),
        }

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = self.parts(x)
        return parts["cf"] + parts["semantic"] + parts["popularity"]

    def to_array(self) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([self.theta, self.beta, self.gamma, self.log_scale[None]]).numpy().copy()

    @classmethod
    def from_array(cls, values: np.ndarray) -> PopularityGate:
        gate = cls()
        torch.nn.utils.vector_to_parameters(torch.as_tensor(np.asarray(values, dtype=np.float32)),
                                            list(gate.parameters()))
        return gate


def tensors(inputs: GateInputs) -> dict[str, torch.Tensor]:
    return {
        "cf": torch.as_tensor(inputs.cf, dtype=torch.float32),
        "cf_scored": torch.as_tensor(inputs.cf_scored, dtype=torch.bool),
        "semantic": torch.as_tensor(inputs.semantic, dtype=torch.float32),
        "popularity": torch.as_tensor(inputs.popularity, dtype=torch.float32),
        "cold": torch.as_tensor(inputs.cold, dtype=torch.float32),
        "tail_share": torch.as_tensor(inputs.tail_share, dtype=torch.float32),
        "log_length": torch.as_tensor(inputs.log_length, dtype=torch.float32),
    }


def fit_gate(
    inputs: GateInputs,
    targets: np.ndarray,
    long_tail: np.ndarray,
    offset: np.ndarray,
    *,
    tail_weight: float = 1.0,
    max_iter: int = 200,
    l2: float = 0.01,
) -> PopularityGate:
    """Fit the gate on candidate lists: ``inputs`` arrays are (n_users, n_candidates) (item features
    gathered per row), ``targets`` (n, c) bool marks held-out positives, ``long_tail`` (n, c) bool
    marks tail/cold candidates, ``offset`` (n, c) is added to the training logits (sampling
    correction; ``-inf`` pads). Ten smooth parameters: full-batch L-BFGS (scipy) with torch
    gradients converges in a few dozen steps, deterministically (no random init). ``l2`` shrinks the gate
    towards the even blend: without it a saturated gate (|θ| in the hundreds) fits the sampled
    candidates and generalises worse."""
    from scipy.optimize import minimize

    gate = PopularityGate()
    x = tensors(inputs)
    weights = torch.as_tensor(np.where(long_tail, float(tail_weight), 1.0) * targets, dtype=torch.float32)
    total = weights.sum().clamp_min(1e-9)
    shift = torch.as_tensor(offset, dtype=torch.float32)
    params = list(gate.parameters())

    def loss_and_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
        torch.nn.utils.vector_to_parameters(torch.as_tensor(flat, dtype=torch.float32), params)
        for p in params:
            p.grad = None
        logits = gate(x) * torch.exp(gate.log_scale) + shift
        log_p = torch.log_softmax(logits, dim=1)
        loss = -(torch.where(weights > 0, log_p, torch.zeros_like(log_p)) * weights).sum() / total
        loss = loss + l2 * (gate.theta.square().sum() + gate.beta.square().sum())
        loss.backward()
        grad = torch.cat([p.grad.reshape(-1) for p in params])
        return float(loss.detach()), grad.numpy().astype(np.float64)

    start = torch.nn.utils.parameters_to_vector(params).detach().numpy().astype(np.float64)
    found = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    torch.nn.utils.vector_to_parameters(torch.as_tensor(found.x, dtype=torch.float32), params)
    return gate
