"""Recommenders sharing one estimator API (`fit`, `score`, `recommend`, `explain`, `save`/`load`)
over ordered histories (`longtail.data.HistoryBatch`)."""

from longtail.models.als import ALS
from longtail.models.base import UNSCORED, CompositeRecommender, FitCache, NotFittedError, Recommender
from longtail.models.bpr import BPR
from longtail.models.ease import EASE
from longtail.models.explain import Evidence, Explanation
from longtail.models.itemknn import ItemKNN
from longtail.models.popularity import Popularity
from longtail.models.registry import MODELS, build, load_model, make_model, model_class, save_model
from longtail.models.rp3beta import RP3beta
from longtail.models.semantic import SemanticAttentionRecommender, SemanticRecommender

__all__ = [
    "ALS", "BPR", "EASE", "CompositeRecommender", "Evidence", "Explanation", "FitCache", "ItemKNN", "MODELS",
    "NotFittedError", "Popularity", "RP3beta", "Recommender", "SemanticAttentionRecommender", "SemanticRecommender",
    "UNSCORED", "build", "load_model", "make_model", "model_class", "save_model",
]
