"""Model names (as used by ``longtail evaluate --models``) -> estimator classes; building a model
from a name or a saved spec, and saving / loading fitted models."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from longtail.errors import ConfigError
from longtail.models.als import ALS
from longtail.models.artifact import ArtifactError, load_artifact, save_artifact
from longtail.models.base import CompositeRecommender, Recommender
from longtail.models.bpr import BPR
from longtail.models.ease import EASE
from longtail.models.flagship import LongtailRecommender
from longtail.models.fusion import FusionRecommender, fusion_class, fusion_parts
from longtail.models.graph import GraphRecommender
from longtail.models.hybrid import HybridRecommender
from longtail.models.itemknn import ItemKNN
from longtail.models.neural import NEURAL_MODELS
from longtail.models.popularity import Popularity
from longtail.models.rp3beta import RP3beta
from longtail.models.semantic import SemanticAttentionRecommender, SemanticRecommender

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (Popularity, ItemKNN, ALS, EASE, SemanticRecommender, SemanticAttentionRecommender,
                HybridRecommender, GraphRecommender, RP3beta, BPR, *NEURAL_MODELS, LongtailRecommender)
}


@functools.lru_cache(maxsize=64)
def _fusion(spec: str) -> type[FusionRecommender]:
    return fusion_class(spec, {p: model_class(p) for p in fusion_parts(spec)})


def model_class(name: str) -> type[Recommender]:
    """The class of a registry name, or of a fusion spec such as ``fusion(als+semantic-attn)``."""
    if name.replace(" ", "").startswith("fusion("):
        return _fusion(name.replace(" ", ""))
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(MODELS)}, fusion(a+b+...)")
    return MODELS[name]


def make_model(name: str, **params: Any) -> Recommender:
    """``name``'s estimator with ``params``; a composite's parts take ``part__param``."""
    return model_class(name)().set_params(**params)


def build(spec: dict[str, Any]) -> Recommender:
    """The unfitted model a ``Recommender.spec()`` describes (parts rebuilt recursively)."""
    model = model_class(spec["model"])(**spec.get("params", {}))
    for key, part in spec.get("parts", {}).items():
        if not isinstance(model, CompositeRecommender):
            raise ConfigError(f"{spec['model']} has no parts, the spec names {key!r}")
        model.set_part(key, build(part))
    return model


def from_arrays(manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> Recommender:
    """Rebuild a fitted model from what ``Recommender.to_arrays`` returned."""
    if "spec" not in manifest:
        raise ConfigError("this artifact predates ordered-history models (no 'spec'); train it again")
    return build(manifest["spec"]).restore(int(manifest["n_items"]), arrays)


def save_model(model: Recommender, path: str | Path) -> Path:
    """Atomically write the fitted model (npz + manifest with version and checksums)."""
    manifest, arrays = model.to_arrays()
    return save_artifact(path, manifest, arrays)


def load_model(path: str | Path) -> Recommender:
    """Load any model ``save_model`` wrote; arrays that do not fit the model (a missing one, a
    wrong shape) are an ``ArtifactError`` like any other damage, not a raw ``KeyError``."""
    manifest, arrays = load_artifact(path)
    try:
        return from_arrays(manifest, arrays)
    except (ConfigError, KeyError, ValueError, IndexError, TypeError) as exc:
        raise ArtifactError(f"{Path(path).name}: the model's arrays do not fit its manifest "
                            f"({type(exc).__name__}: {exc})") from exc
