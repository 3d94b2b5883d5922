"""Model names (as used by ``longtail evaluate --models``) -> estimator classes."""

from __future__ import annotations

from typing import Any

from longtail.errors import ConfigError
from longtail.models.als import ALS
from longtail.models.base import Recommender
from longtail.models.ease import EASE
from longtail.models.graph import GraphRecommender
from longtail.models.hybrid import HybridRecommender
from longtail.models.itemknn import ItemKNN
from longtail.models.neural import NEURAL_MODELS
from longtail.models.popularity import Popularity
from longtail.models.semantic import SemanticAttentionRecommender, SemanticRecommender

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (Popularity, ItemKNN, ALS, EASE, SemanticRecommender, SemanticAttentionRecommender,
                HybridRecommender, GraphRecommender, *NEURAL_MODELS)
}


def model_class(name: str) -> type[Recommender]:
    """The class of a registry name, or of a fusion spec such as ``fusion(als+semantic-attn)``."""
    if name.startswith("fusion("):
        from longtail.models.fusion import fusion_class

        return fusion_class(name)
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    return MODELS[name]


def make_model(name: str, **params: Any) -> Recommender:
    return model_class(name)(**params)
