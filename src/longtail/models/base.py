"""The estimator API every model shares.

Models implement ``_fit`` and ``_score`` (dense scores for a block of users given their history
rows); ``recommend``, ``score``, filtering, top-k, ``save``/``load`` are written once here. Scores are
float32 (n_users, n_items); ``UNSCORED`` marks items a model has no opinion on (cold items for CF):
they rank after every scored item, ties by item id, like Cornac's ``default_score``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from longtail.data.interactions import Interactions
from longtail.errors import ConfigError, LongtailError
from longtail.models.artifact import load_artifact, save_artifact
from longtail.models.topk import topk

UNSCORED = np.float32(-1e30)


class NotFittedError(LongtailError):
    """A model was used before ``fit``."""


class Recommender(ABC):
    """Base estimator: keyword-only hyper-parameters in ``__init__`` (no work there), fitted state
    in attributes ending with ``_``, ``param_grid`` = the documented grid searched on valid."""

    name: ClassVar[str] = "base"
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    needs_embeddings: ClassVar[bool] = False

    # -- parameters ---------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.kind == p.KEYWORD_ONLY]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(f"{self.name}: unknown parameter {key!r} (valid: {sorted(valid)})")
            setattr(self, key, value)
        return self

    def _check_params(self) -> None:
        """Override to validate hyper-parameter values at the start of ``fit``."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: Interactions, *, item_embeddings: np.ndarray | None = None) -> Self:
        """Fit on positives ``X`` (users x items). ``item_embeddings`` (n_items, d) float32,
        unit-norm, for models that read item text."""
        if not isinstance(X, Interactions):
            raise TypeError(f"fit expects longtail.data.Interactions, got {type(X).__name__}")
        if self.needs_embeddings and item_embeddings is None:
            raise ConfigError(f"{self.name} needs item_embeddings (see longtail.text)")
        if item_embeddings is not None and len(item_embeddings) != X.n_items:
            raise ConfigError(
                f"item_embeddings has {len(item_embeddings)} rows, the catalogue {X.n_items} items"
            )
        self._check_params()
        self.n_items_ = X.n_items
        self.user_items_ = X.csr
        self._fit(X, item_embeddings)
        return self

    @abstractmethod
    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None: ...

    def partial_fit(self, new_interactions: Interactions) -> Self:
        """Fold in new interactions without a full refit. Not every model can."""
        raise NotImplementedError(
            f"{self.name} cannot be updated incrementally yet; call fit() on all interactions"
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{self.name} is not fitted; call fit() first")

    # -- scoring ------------------------------------------------------------------------------
    @abstractmethod
    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Scores (len(users), n_items) float32 for ``users`` whose histories are the CSR rows
        ``history`` (same order)."""

    def _history(self, users: np.ndarray, history: sp.csr_matrix | None) -> sp.csr_matrix:
        source = self.user_items_ if history is None else history
        if source.shape[1] != self.n_items_:
            raise ConfigError(f"history has {source.shape[1]} item columns, model {self.n_items_}")
        return source[users]

    def score(
        self,
        user_ids: np.ndarray | list[int],
        item_ids: np.ndarray | list[int] | None = None,
        *,
        history: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        """Scores of ``user_ids`` (indices) for ``item_ids`` (all items if None): (n_users, n_sel)."""
        self._check_fitted()
        users = np.asarray(user_ids, dtype=np.int64)
        scores = self._score(users, self._history(users, history))
        return scores if item_ids is None else scores[:, np.asarray(item_ids)]

    def recommend(
        self,
        user_ids: np.ndarray | list[int],
        k: int = 20,
        *,
        exclude_seen: bool = True,
        history: sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per user: (items int32 (n, k), scores float32 (n, k)), best first, ties by
        item index. ``history`` rows (all users, n_items columns) replace the fitted ones; with
        ``exclude_seen`` the history items are never returned; ``candidates`` restricts the
        catalogue. Slots that cannot be filled hold -1."""
        self._check_fitted()
        users = np.asarray(user_ids, dtype=np.int64)
        rows = self._history(users, history)
        scores = np.array(self._score(users, rows), dtype=np.float32, copy=True)
        if candidates is not None:
            keep = np.zeros(self.n_items_, dtype=bool)
            keep[np.asarray(candidates)] = True
            scores[:, ~keep] = -np.inf
        if exclude_seen:
            r, c = rows.nonzero()
            scores[r, c] = -np.inf
        return topk(scores, k)

    # -- persistence --------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        """Fitted arrays to persist (besides ``user_items_``); override in subclasses."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what ``_state`` returned; override in subclasses."""

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The fitted model as (manifest, arrays): what ``save`` writes, for bundling it inside a
        larger artifact (the service's) without a second file."""
        self._check_fitted()
        ui = self.user_items_.tocsr()
        arrays = {
            "user_items.indptr": ui.indptr,
            "user_items.indices": ui.indices,
            "user_items.shape": np.asarray(ui.shape),
            **self._state(),
        }
        manifest = {"model": self.name, "params": self.get_params(), "n_items": int(self.n_items_)}
        return manifest, arrays

    def save(self, path: str | Path) -> Path:
        """Atomically write the fitted model (npz + manifest with version and checksums)."""
        manifest, arrays = self.to_arrays()
        return save_artifact(path, manifest, arrays)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load any saved model (dispatches on the manifest's model name)."""
        from longtail.models.registry import model_class

        manifest, arrays = load_artifact(path)
        klass = model_class(manifest["model"])
        if cls is not Recommender and not issubclass(klass, cls):
            raise ConfigError(f"{path} holds a {manifest['model']} model, not {cls.name}")
        return klass.from_arrays(manifest, arrays)

    @classmethod
    def from_arrays(cls, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> Recommender:
        """Rebuild a model from what ``to_arrays`` returned (dispatches on the model name)."""
        from longtail.models.registry import model_class

        model = model_class(manifest["model"])(**manifest["params"])
        shape = tuple(int(x) for x in arrays["user_items.shape"])
        indices = arrays["user_items.indices"]
        model.user_items_ = sp.csr_matrix(
            (np.ones(len(indices), np.float32), indices, arrays["user_items.indptr"]), shape=shape
        )
        model.n_items_ = int(manifest["n_items"])
        model._set_state(arrays)
        return model
