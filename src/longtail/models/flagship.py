"""The flagship, ``longtail``: the strongest CF model for the head, two text models for the tail
and cold items, mixed by the hybrid's learned popularity gate.

Design (one procedure, the same on every dataset; nothing is chosen per dataset by hand):

- ``cf``: EASE (the best overall CF baseline on valid on the shared datasets where it fits);
- ``semantic``: a weighted fusion of ``semantic-attn`` (frozen-encoder attention over the history:
  strong where item text carries the signal) and ``neural-ips`` (text-initialised two-tower with
  an inverse-propensity loss: strong where behaviour does); the fusion's weights and method are
  chosen on valid (overall ndcg@20), so a dataset's valid split decides how much of each it gets;
- the gate (``models/gate.py``) is learned inside ``fit`` on held-out training positives, with tail
  and cold positives weighted by ``tail_weight``; ``tail_weight`` is chosen on valid by the rule
  ``tail-at-reference``: the best valid *tail* ndcg@20 among the points whose valid overall
  ndcg@20 is at least the CF part's alone (else the best overall).

Parts are tuned on valid on their own first (``evaluate`` does it), then the gate's grid reuses
their fits (``FitCache``), the inner split's included.
"""

from __future__ import annotations

from typing import Any, ClassVar

from longtail.models.base import Recommender
from longtail.models.ease import EASE
from longtail.models.fusion import fusion_class
from longtail.models.hybrid import HybridRecommender
from longtail.models.neural import NeuralIPS
from longtail.models.semantic import SemanticAttentionRecommender

TEXT_PARTS = {"semantic-attn": SemanticAttentionRecommender, "neural-ips": NeuralIPS}
TextFusion = fusion_class(f"fusion({'+'.join(TEXT_PARTS)})", TEXT_PARTS)


class LongtailRecommender(HybridRecommender):
    """``longtail``: EASE + fusion(semantic-attn + neural-ips) through the popularity gate (see the
    module docstring). Parameters as ``HybridRecommender``; the parts take ``cf__*`` and
    ``semantic__*`` (e.g. ``semantic__neural-ips__ips_power``)."""

    name = "longtail"
    param_grid: ClassVar[dict[str, list[Any]]] = {"tail_weight": [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0]}

    def __init__(self, *, cf: Recommender | None = None, semantic: Recommender | None = None,
                 tail_weight: float = 1.0, cold_share: float = 0.1, n_candidates: int = 2_000,
                 gate_users: int = 300, seed: int = 0) -> None:
        # neural-ips on one torch thread: multi-threaded CPU backward sums in a varying order, and the
        # gate fitted on top amplifies 1e-6 differences, so two fits (evaluate, train) would disagree
        text = TextFusion(members={"neural-ips": NeuralIPS(num_threads=1)}) if semantic is None else semantic
        super().__init__(cf=EASE() if cf is None else cf, semantic=text,
                         tail_weight=tail_weight, cold_share=cold_share, n_candidates=n_candidates,
                         gate_users=gate_users, seed=seed)
