"""The estimator API every model shares.

Models implement ``_fit`` and ``_score`` (dense scores for a batch of ordered user histories,
``data.history.HistoryBatch``); ``score``, ``recommend``, ``explain``, parameters and persistence are
written once here. A model never looks a user up in the matrix it was fitted on: it scores the
history it is given, so a live user, a test user and a library user's list of items are one case.
Scores are float32 (n_users, n_items); ``UNSCORED`` marks items a model has no opinion on (cold
items for CF): they rank after every scored item, ties by item id, like Cornac's ``default_score``.

Composite models (``CompositeRecommender``: the hybrid, fusions) hold their parts as estimators in
their parameters; nested parameters are written ``part__param`` as in scikit-learn.
"""

from __future__ import annotations

import copy
import inspect
import json
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar, Self

import numpy as np

from longtail.common.arrays import pack, unpack
from longtail.common.scores import UNSCORED, scored_mask
from longtail.common.topk import topk
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError, LongtailError
from longtail.models.explain import Explanation
from longtail.models.incremental import check_update

__all__ = ["UNSCORED", "CompositeRecommender", "FitCache", "NotFittedError", "Recommender", "scored_mask"]


class NotFittedError(LongtailError):
    """A model was used before ``fit``."""


class Recommender(ABC):
    """Base estimator: keyword-only hyper-parameters in ``__init__`` (no work there), fitted state
    in attributes ending with ``_``, ``param_grid`` = the documented grid searched on valid.

    ``selection`` names the rule tuning uses to pick a grid point (``"overall"``: best overall
    valid ndcg; ``"tail-at-reference"``: the best tail among the points whose overall is at least
    the part ``reference_part``'s, tuned alone). ``cosine_scores``: the model scores by cosine
    similarity of item texts, so a text fallback's cosine is on its scale.
    """

    name: ClassVar[str] = "base"
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    needs_embeddings: ClassVar[bool] = False
    cosine_scores: ClassVar[bool] = False
    batch_invariant: ClassVar[bool] = True  # False: scored one history at a time (``_rows_alone``)
    selection: ClassVar[str] = "overall"
    reference_part: ClassVar[str | None] = None

    # -- parameters ---------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.kind == p.KEYWORD_ONLY]

    def parts(self) -> dict[str, Recommender]:
        """The estimators this model is made of, by key (none for a plain model)."""
        return {}

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Hyper-parameters; ``deep`` adds each part's as ``key__param``."""
        params = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for key, part in self.parts().items():
                params |= {f"{key}__{k}": v for k, v in part.get_params(deep=True).items()}
        return params

    def set_params(self, **params: Any) -> Self:
        valid = set(self._param_names())
        parts = self.parts()
        for key, value in params.items():
            head, sep, rest = key.partition("__")
            if sep and head in parts:
                parts[head].set_params(**{rest: value})
            elif key in valid:
                setattr(self, key, value)
            else:
                raise ConfigError(f"{self.name}: unknown parameter {key!r} (valid: {sorted(valid)}"
                                  + (f", or <part>__<param> for parts {sorted(parts)})" if parts else ")"))
        return self

    def clone(self) -> Self:
        """An unfitted copy with the same parameters (parts cloned too)."""
        params = {k: (v.clone() if isinstance(v, Recommender) else v) for k, v in self.get_params().items()}
        clone = type(self)(**params)
        return clone

    def spec(self) -> dict[str, Any]:
        """JSON-able description that rebuilds this (unfitted) model: name, own parameters, parts."""
        params = {k: v for k, v in self.get_params().items() if not isinstance(v, Recommender)}
        return {"model": self.name, "params": params,
                "parts": {key: part.spec() for key, part in self.parts().items()}}

    def _check_params(self) -> None:
        """Override to validate hyper-parameter values at the start of ``fit``."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: Interactions, *, item_embeddings: np.ndarray | None = None,
            cache: FitCache | None = None) -> Self:
        """Fit on positives ``X`` (users x items). ``item_embeddings`` (n_items, d) float32,
        unit-norm, for models that read item text. ``cache`` lets composite models reuse parts
        fitted earlier in the same run (a grid search over the composite's own parameters)."""
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
        self._fit_with(X, item_embeddings, cache)
        return self

    def _fit_with(self, X: Interactions, item_embeddings: np.ndarray | None, cache: FitCache | None) -> None:
        self._fit(X, item_embeddings)

    @abstractmethod
    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None: ...

    def partial_fit(self, new_interactions: Interactions, new_items: np.ndarray | None = None) -> Self:
        """Fold in ``new_interactions`` (the new positives only, in the fit's index space: new
        users appended, item columns = the model's items then the new ones) and ``new_items``
        ((m, d) unit text vectors of the m new items, in column order) without a full refit.
        The whole update is checked first (``models.incremental.check_update``): a bad one
        raises and changes nothing. What each model updates is in its ``_partial_fit``."""
        self._check_fitted()
        vectors = check_update(self.name, self.n_items_, new_interactions, new_items, self._text_dim())
        self._partial_fit(new_interactions, vectors)
        self.n_items_ = new_interactions.n_items
        return self

    def updated(self, new_interactions: Interactions, new_items: np.ndarray | None = None) -> Self:
        """``partial_fit`` on a copy, this model untouched: what a service swaps in, so a request
        scoring with this model never sees a half-applied update. The copy shares the fitted
        arrays the update leaves alone (every ``_partial_fit`` replaces arrays, never writes into
        them), so it costs what the update costs."""
        self._check_fitted()
        return self._detached().partial_fit(new_interactions, new_items)

    def _detached(self) -> Self:
        """A shallow copy whose attributes can be reassigned without touching this model."""
        return copy.copy(self)

    def _text_dim(self) -> int | None:
        """The dimension of the item text vectors this model reads (None: it reads none)."""
        return None

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """Apply a checked update (``new`` already spans the new items' columns)."""
        raise NotImplementedError(f"{self.name} cannot be updated incrementally; call fit() on all interactions")

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{self.name} is not fitted; call fit() first")

    # -- scoring ------------------------------------------------------------------------------
    @abstractmethod
    def _score(self, queries: HistoryBatch) -> np.ndarray:
        """Scores (len(queries), n_items) float32 of the ordered histories ``queries``."""

    def _check_queries(self, queries: HistoryBatch) -> None:
        self._check_fitted()
        if not isinstance(queries, HistoryBatch):
            raise TypeError(f"{self.name}: expected a longtail.data.HistoryBatch, got {type(queries).__name__}")
        if queries.n_items != self.n_items_:
            raise ConfigError(f"{self.name}: the histories index {queries.n_items} items, the model "
                              f"{self.n_items_}; use HistoryBatch.with_catalogue")

    def score(self, queries: HistoryBatch, item_ids: np.ndarray | list[int] | None = None) -> np.ndarray:
        """Scores of each history for ``item_ids`` (all items if None): (len(queries), n_sel)."""
        self._check_queries(queries)
        scores = self._rows_alone(queries)
        return scores if item_ids is None else scores[:, np.asarray(item_ids)]

    def _rows_alone(self, queries: HistoryBatch) -> np.ndarray:
        """``_score``, one history at a time for models whose dense float kernels (BLAS, torch) sum
        in an order that depends on the batch's shape: a user's scores then move in the 7th digit
        with the batch, enough to swap two near-tied items between evaluation (batches of 512) and
        the service (one user). Row by row, the evaluated computation is the served one."""
        if self.batch_invariant or len(queries) <= 1:
            return self._score(queries)
        return np.concatenate([self._score(queries[r : r + 1]) for r in range(len(queries))])

    def _scores_without(self, query: HistoryBatch, items: np.ndarray) -> np.ndarray:
        """Scores (len(items), n_items) of the one history ``query`` with each of ``items`` taken
        out (``HistoryBatch.without``): what occlusion explanations (``models.occlusion``) measure.
        One batched ``_score``; models override it where the removals share work."""
        return self._score(query.without(0, items))

    def _proposals(self, query: HistoryBatch, items: list[int]) -> np.ndarray:
        """History items of the one history ``query`` worth testing by occlusion for ``items``:
        this model's own evidence; cheaper rules where explaining costs a scoring."""
        return np.asarray([e.item for why in self.explain(query, np.asarray([items]))[0] for e in why.evidence],
                          np.int64)

    def recommend(self, queries: HistoryBatch, k: int = 20, *, exclude_seen: bool = True,
                  candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per history: (items int32 (n, k), scores float32 (n, k)), best first,
        ties by item index; with ``exclude_seen`` the history's items are never returned;
        ``candidates`` restricts the catalogue. Slots that cannot be filled hold -1. (The ranking
        pipeline, ``longtail.pipeline``, adds the text fallback, re-ranking and explanations.)"""
        self._check_queries(queries)
        scores = np.array(self._rows_alone(queries), dtype=np.float32, copy=True)
        if candidates is not None:
            keep = np.zeros(self.n_items_, dtype=bool)
            keep[np.asarray(candidates)] = True
            scores[:, ~keep] = -np.inf
        if exclude_seen:
            scores[queries.rows, queries.items] = -np.inf
        return topk(scores, k)

    def explain(self, queries: HistoryBatch, items: np.ndarray) -> list[list[Explanation]]:
        """Why each of ``items`` (n, k; -1 = empty slot) was scored as it was for each history:
        the evidence the model itself used (history items and their weight, parts). The default
        names the model only; models override ``_explain_row``."""
        self._check_queries(queries)
        items = np.asarray(items)
        out = []
        for r in range(len(items)):
            query = queries[[r]]
            if len(query.items) == 0:  # nothing in the history to point at
                out.append([Explanation(item=int(i), kind="model", model=self.name) for i in items[r] if i >= 0])
            else:
                out.append(self._explain_items(query, [int(i) for i in items[r] if i >= 0]))
        return out

    def _explain_items(self, query: HistoryBatch, items: list[int]) -> list[Explanation]:
        """Explanations of ``items`` for one history; override when the items share work."""
        return [self._explain_row(query, item) for item in items]

    def _explain_row(self, query: HistoryBatch, item: int) -> Explanation:
        return Explanation(item=item, kind="model", model=self.name)

    # -- persistence --------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        """Fitted arrays to persist; override in subclasses."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what ``_state`` returned; override in subclasses."""

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The fitted model as (manifest, arrays): what ``registry.save_model`` writes, for bundling
        it inside a larger artifact (the service's) without a second file."""
        self._check_fitted()
        manifest = {"model": self.name, "spec": self.spec(), "n_items": int(self.n_items_)}
        return manifest, self._state()

    def restore(self, n_items: int, arrays: dict[str, np.ndarray]) -> Self:
        """Set the fitted state of this (freshly built) model from ``to_arrays``' arrays."""
        self.n_items_ = int(n_items)
        self._set_state(arrays)
        return self


class CompositeRecommender(Recommender):
    """A model made of other models (``parts``). Parts are fitted through ``_fit_part`` (which
    reuses a ``FitCache``) and persisted under the prefix ``<key>/``."""

    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        self._fit_with(X, item_embeddings, None)

    @abstractmethod
    def _fit_with(self, X: Interactions, item_embeddings: np.ndarray | None, cache: FitCache | None) -> None: ...

    @staticmethod
    def _fit_part(part: Recommender, X: Interactions, item_embeddings: np.ndarray | None,
                  cache: FitCache | None) -> Recommender:
        """A fitted copy of ``part`` on ``X`` (from ``cache`` when it holds one)."""
        embeddings = item_embeddings if part.needs_embeddings else None
        if cache is None:
            return part.clone().fit(X, item_embeddings=embeddings)
        return cache.fit(part, X, embeddings)

    def set_part(self, key: str, part: Recommender) -> None:
        """Replace the (unfitted) part ``key``: how a saved spec is rebuilt."""
        if key not in self.parts():
            raise ConfigError(f"{self.name}: no part {key!r} (parts: {sorted(self.parts())})")
        setattr(self, key, part)

    @abstractmethod
    def fitted_parts(self) -> dict[str, Recommender]:
        """The fitted parts, by the same keys as ``parts``."""

    def _state(self) -> dict[str, np.ndarray]:
        state: dict[str, np.ndarray] = {}
        for key, part in self.fitted_parts().items():
            state |= pack(f"{key}/", part.to_arrays()[1])
        return state | self._own_state()

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        fitted = {key: part.clone().restore(self.n_items_, unpack(f"{key}/", arrays))
                  for key, part in self.parts().items()}
        self._set_own_state(fitted, arrays)

    def _own_state(self) -> dict[str, np.ndarray]:
        return {}

    def _detached(self) -> Self:
        out = copy.copy(self)
        out._use_parts({key: part._detached() for key, part in self.fitted_parts().items()})
        return out

    @abstractmethod
    def _use_parts(self, fitted: dict[str, Recommender]) -> None:
        """Make ``fitted`` (by the keys of ``parts``) this model's fitted parts."""

    def _text_dim(self) -> int | None:
        """The text dimension of the first part that reads text: the whole update is checked
        against it before any part changes."""
        return next((d for part in self.fitted_parts().values() if (d := part._text_dim()) is not None), None)

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """Every fitted part takes the update (parts that read no text only count the new items);
        the composite's own learned state (a gate, fusion weights) is kept until the next refit."""
        for part in self.fitted_parts().values():
            part.partial_fit(new, new_items)

    def _proposals(self, query: HistoryBatch, items: list[int]) -> np.ndarray:
        """Every part's proposals."""
        return np.concatenate([part._proposals(query, items) for part in self.fitted_parts().values()])

    @abstractmethod
    def _set_own_state(self, fitted: dict[str, Recommender], arrays: dict[str, np.ndarray]) -> None: ...


class FitCache:
    """Fitted parts of composite models, reused within one run (a grid search refits the composite
    for each of its own parameter values, never its parts). Explicit and bounded: the caller owns
    it and drops it with the run; entries hold their training data, so ``id``s stay unique."""

    def __init__(self, max_size: int = 16) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[tuple[Any, ...], tuple[Any, Any, Recommender]] = OrderedDict()
        self._derived: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()
        self.hits = 0

    def derived(self, key: tuple[Any, ...], X: Interactions, make: Callable[[], Any]) -> Any:
        """``make()`` once per (``key``, ``X``): data a composite derives from its training data
        (the hybrid's inner split), shared by a grid's points so that the parts fitted on it are
        found in the cache too (their keys hold the derived data's ``id``)."""
        full = (*key, id(X))
        if full not in self._derived:
            self._derived[full] = (X, make())
            while len(self._derived) > self.max_size:
                self._derived.popitem(last=False)
        return self._derived[full][1]

    def fit(self, part: Recommender, X: Interactions, item_embeddings: np.ndarray | None) -> Recommender:
        key = (json.dumps(part.spec(), sort_keys=True, default=str), id(X), id(item_embeddings))
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key][2]
        fitted = part.clone().fit(X, item_embeddings=item_embeddings, cache=self)
        self._entries[key] = (X, item_embeddings, fitted)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
        return fitted

