"""Long-tail-aware softmax losses for next-item training (used by ``models/neural.py``).

Every loss is a cross-entropy over a set of candidate items (the whole catalogue, or the target
plus sampled negatives) and differs from plain softmax in how head and tail targets are weighed:

- ``softmax``: plain cross-entropy; a model fitted with it learns ``log p(item)``, popularity
  included, so head items win most rankings.
- ``logit-adjustment`` (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021): train
  on ``logit + tau * log prior(item)``, predict with ``logit``. The prior explains away popularity
  during training, so the learned logits are raised for tail items by ``-tau * log prior``.
- ``ips`` (inverse propensity scoring, Schnabel et al. 2016; popularity propensities as in Steck,
  "Item popularity and recommendation accuracy", 2011): each example is weighted by
  ``min(1 / propensity(target), clip)`` with ``propensity = (count / max count) ** power``
  (self-normalised per batch), so tail targets count more.
- ``focal`` (Lin et al., "Focal loss for dense object detection", ICCV 2017):
  ``-(1 - p_t) ** gamma * log p_t`` down-weights examples the model already gets right, which are
  mostly popular targets. It acts only where ``p_t`` is large: over a catalogue of thousands of
  items most next-item probabilities are small and focal is close to plain softmax (its
  ``log p_t`` term even sharpens moderately confident predictions; see ``tests/models/test_losses.py``).

The pure functions below take logits; ``LongTailLoss`` only holds the per-item statistics;
``sampled_softmax_loss`` applies it to a target plus shared sampled negatives (large catalogues).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from longtail.errors import ConfigError

LOSSES = ("softmax", "logit-adjustment", "ips", "focal")


@dataclass(frozen=True)
class LossConfig:
    """Which loss and its knobs. ``tau``: logit-adjustment strength; ``gamma``: focal exponent;
    ``ips_power`` / ``ips_clip``: propensity exponent and the cap of the inverse weights."""

    name: str = "softmax"
    tau: float = 1.0
    gamma: float = 2.0
    ips_power: float = 0.5
    ips_clip: float = 100.0

    def __post_init__(self) -> None:
        if self.name not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.name!r}")
        if self.tau < 0 or self.gamma < 0 or self.ips_power < 0 or self.ips_clip < 1:
            raise ConfigError(
                f"need tau, gamma, ips_power >= 0 and ips_clip >= 1; got tau={self.tau}, "
                f"gamma={self.gamma}, ips_power={self.ips_power}, ips_clip={self.ips_clip}"
            )


def log_prior(counts: np.ndarray) -> np.ndarray:
    """``log((c_i + 1) / sum_j (c_j + 1))``, add-one smoothed so unseen items stay finite. (n,) float32."""
    smoothed = np.asarray(counts, np.float64) + 1.0
    return np.log(smoothed / smoothed.sum()).astype(np.float32)


def ips_weights(counts: np.ndarray, power: float, clip: float) -> np.ndarray:
    """``min((max c / c_i) ** power, clip)`` per item (items never seen get the cap). (n,) float32."""
    c = np.asarray(counts, np.float64)
    with np.errstate(divide="ignore"):
        inverse = np.where(c > 0, (c.max(initial=1.0) / np.maximum(c, 1e-12)) ** power, np.inf)
    return np.minimum(inverse, clip).astype(np.float32)


def logit_adjusted(logits: Tensor, log_prior_of: Tensor, tau: float) -> Tensor:
    """``logits + tau * log prior``; ``log_prior_of`` broadcasts against ``logits`` (B, C)."""
    return logits + tau * log_prior_of


def focal_cross_entropy(logits: Tensor, target: Tensor, gamma: float = 0.0) -> Tensor:
    """Per-example ``-(1 - p_t) ** gamma * log p_t`` with ``p = softmax(logits)``; ``gamma = 0`` is
    plain cross-entropy. ``logits`` (B, C) may hold ``-inf`` (masked candidates); ``target`` (B,)
    column of the positive. Returns (B,)."""
    log_p = torch.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)  # (B,)
    if gamma == 0.0:
        return -log_p
    return -((1.0 - log_p.exp()).clamp_min(0.0) ** gamma) * log_p


def weighted_mean(values: Tensor, weights: Tensor | None) -> Tensor:
    """``sum w v / sum w`` (self-normalised, so the loss scale does not depend on the clip)."""
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


class LongTailLoss(nn.Module):
    """The configured loss over candidate logits, given training item counts.

    ``forward(logits, target, items, sample_weight)``: ``logits`` (B, C) scores of candidate
    ``items`` (C,) for a shared candidate set or (B, C) per row; ``target`` (B,) the positive's
    column; the positive's item index is ``items[target]`` (or ``items[b, target[b]]``);
    ``sample_weight`` (B,) an optional weight per example (a positive's sentiment weight),
    multiplied into the IPS weights; the mean stays self-normalised.
    """

    def __init__(self, config: LossConfig, item_counts: np.ndarray) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("log_prior", torch.from_numpy(log_prior(item_counts)))  # (n_items,)
        weights = ips_weights(item_counts, config.ips_power, config.ips_clip)
        self.register_buffer("ips_weight", torch.from_numpy(weights))  # (n_items,)

    def forward(self, logits: Tensor, target: Tensor, items: Tensor, sample_weight: Tensor | None = None) -> Tensor:
        cfg = self.config
        if cfg.name == "logit-adjustment":
            logits = logit_adjusted(logits, self.log_prior[items], cfg.tau)  # (B, C)
        positives = items[target] if items.dim() == 1 else items.gather(1, target[:, None]).squeeze(1)
        weights = self.ips_weight[positives] if cfg.name == "ips" else None  # (B,)
        if sample_weight is not None:
            weights = sample_weight if weights is None else weights * sample_weight
        gamma = cfg.gamma if cfg.name == "focal" else 0.0
        return weighted_mean(focal_cross_entropy(logits, target, gamma), weights)


def sampled_softmax_loss(criterion: LongTailLoss, user: torch.Tensor, vectors: torch.Tensor,
                         target: torch.Tensor, negatives: torch.Tensor, log_q: torch.Tensor,
                         global_ids: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``criterion`` over [target, shared negatives], logits corrected by ``-log_q`` so that the
    sampled softmax estimates the full one; a negative equal to the row's target (an accidental
    hit) is masked.

    ``user`` (B, d); ``vectors`` (m, d) item vectors by local id; ``target`` (B,) and ``negatives``
    (S,) local ids; ``log_q`` (m,) ``log(S * Q(item))`` for the sampling distribution ``Q``;
    ``global_ids`` (m,) catalogue id of each local id (for the per-item statistics of the loss)."""
    positive = (user * vectors[target]).sum(1, keepdim=True)  # (B, 1)
    logits = torch.cat([positive, user @ vectors[negatives].T], dim=1)  # (B, 1 + S)
    candidates = torch.cat([target[:, None], negatives.expand(len(target), -1)], dim=1)  # (B, 1 + S)
    logits = logits - log_q[candidates]
    hits = torch.cat([torch.zeros_like(target[:, None], dtype=torch.bool),
                      candidates[:, 1:] == target[:, None]], dim=1)  # (B, 1 + S)
    logits = logits.masked_fill(hits, float("-inf"))
    zero = torch.zeros(len(target), dtype=torch.long, device=user.device)
    return criterion(logits, zero, global_ids[candidates], sample_weight)
