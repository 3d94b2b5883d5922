"""Recommenders sharing one estimator API (`fit`, `score`, `recommend`, `partial_fit`, `save`/`load`)."""

from longtail.models.als import ALS
from longtail.models.base import UNSCORED, NotFittedError, Recommender
from longtail.models.ease import EASE
from longtail.models.itemknn import ItemKNN
from longtail.models.popularity import Popularity
from longtail.models.registry import MODELS, make_model, model_class
from longtail.models.semantic import SemanticAttentionRecommender, SemanticRecommender

__all__ = [
    "ALS", "EASE", "ItemKNN", "MODELS", "NotFittedError", "Popularity", "Recommender",
    "SemanticAttentionRecommender", "SemanticRecommender", "UNSCORED", "make_model", "model_class",
]
