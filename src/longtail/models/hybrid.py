"""The flagship: collaborative filtering where it is strong (the head), semantics where CF is blind
(the tail, cold items), mixed by a gate *learned* from the training data itself.

``fit(X)`` holds out the last positives of every user (the protocol's temporal rule applied inside
``X``), fits both parts on the rest, learns the gate (``models/gate.py``) on the held-out items, then
refits both parts on all of ``X``. So the gate is chosen on data the parts did not see, with no
access to the caller's valid or test split, and the same procedure runs on any dataset.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from longtail.data.buckets import HEAD, popularity_buckets
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.data.split import TEST, temporal_parts
from longtail.errors import ConfigError
from longtail.models.base import CompositeRecommender, FitCache, Recommender
from longtail.models.ease import EASE
from longtail.models.explain import Explanation
from longtail.models.occlusion import occlusion_evidence, shortlist
from longtail.models.semantic import SemanticAttentionRecommender
from longtail.models.gate import GateInputs, PopularityGate, fit_gate, standardise, tensors


OCCLUSION_CANDIDATES = 10  # history items tested by removal per explained list (one scoring each)


def holdout_split(X: Interactions) -> tuple[Interactions, Interactions]:
    """(fit, held-out): each user's last ``max(1, n // 10)`` positives (users with >= 3), by time."""
    order = np.lexsort((X.items, X.timestamps, X.users))
    ordered = X.subset(order)
    parts = temporal_parts(ordered.users)
    return ordered.subset(parts != TEST), ordered.subset(parts == TEST)


def simulate_new_items(X: Interactions, share: float, rng: np.random.Generator) -> Interactions:
    """``X`` without any interaction on a random ``share`` of its warm items: while the gate learns,
    those items are new (CF cannot score them) yet keep their held-out positives, so the cold path
    learns how far semantics alone can be trusted (item cold-start simulation, as in DropoutNet)."""
    warm = np.flatnonzero(X.item_counts() > 0)
    drawn = rng.choice(warm, int(np.floor(share * len(warm))), replace=False)
    return X.subset(~np.isin(X.items, drawn))


class HybridRecommender(CompositeRecommender):
    """Popularity-gated blend of a CF model and a semantic model (see module docstring).

    Parameters
    ----------
    cf : the CF part, an estimator (default ``EASE()``); tuned on valid on its own first
        (``cf__l2`` etc. in the nested form).
    semantic : the text part (default ``SemanticAttentionRecommender()``), likewise.
    tail_weight : weight of tail and cold held-out positives in the gate's loss (1 = likelihood).
        Chosen on valid: the largest value whose valid overall ndcg@20 stays >= the CF part's.
    cold_share : share of warm items made new while the gate learns (see ``simulate_new_items``).
    n_candidates : items per user in the gate's softmax (all unseen items up to this many, else a
        uniform sample with the sampled-softmax correction).
    gate_users : at most this many users (seeded sample) teach the gate.
    """

    name = "hybrid"
    needs_embeddings = True
    batch_invariant = False  # torch's vectorised exp/sigmoid round a row's tail differently by shape
    param_grid: ClassVar[dict[str, list[Any]]] = {"tail_weight": [1.0, 3.0, 10.0, 30.0, 100.0]}
    selection: ClassVar[str] = "tail-at-reference"
    reference_part: ClassVar[str | None] = "cf"

    def __init__(
        self,
        *,
        cf: Recommender | None = None,
        semantic: Recommender | None = None,
        tail_weight: float = 1.0,
        cold_share: float = 0.1,
        n_candidates: int = 2_000,
        gate_users: int = 300,
        seed: int = 0,
    ) -> None:
        self.cf = EASE() if cf is None else cf
        self.semantic = SemanticAttentionRecommender() if semantic is None else semantic
        self.tail_weight = tail_weight
        self.cold_share = cold_share
        self.n_candidates = n_candidates
        self.gate_users = gate_users
        self.seed = seed

    def parts(self) -> dict[str, Recommender]:
        return {"cf": self.cf, "semantic": self.semantic}

    def fitted_parts(self) -> dict[str, Recommender]:
        return {"cf": self.cf_, "semantic": self.semantic_}

    def _use_parts(self, fitted: dict[str, Recommender]) -> None:
        self.cf_, self.semantic_ = fitted["cf"], fitted["semantic"]

    def _check_params(self) -> None:
        if self.cf.needs_embeddings or not self.semantic.needs_embeddings:
            raise ConfigError(f"hybrid: cf={self.cf.name!r} must be a CF model, semantic={self.semantic.name!r} a text one")
        if float(self.tail_weight) <= 0 or int(self.n_candidates) < 10 or not 0 <= float(self.cold_share) < 1:
            raise ConfigError("hybrid: tail_weight must be > 0, n_candidates >= 10, 0 <= cold_share < 1")

    # -- features -----------------------------------------------------------------------------
    @staticmethod
    def _inputs(cf: Recommender, semantic: Recommender, counts: np.ndarray, queries: HistoryBatch) -> GateInputs:
        """Gate inputs over the whole catalogue for the histories ``queries``."""
        return HybridRecommender._inputs_of(cf.score(queries), semantic.score(queries), counts, queries)

    @staticmethod
    def _inputs_of(cf_scores: np.ndarray, semantic_scores: np.ndarray, counts: np.ndarray,
                   queries: HistoryBatch) -> GateInputs:
        """Gate inputs from the parts' scores of the histories ``queries``."""
        z_cf, scored = standardise(cf_scores)
        z_sem, _ = standardise(semantic_scores, np.ones((len(queries), len(counts)), bool))
        head = popularity_buckets(counts) == HEAD
        length = queries.lengths.astype(np.float64)
        off_head = np.bincount(queries.rows, weights=(~head[queries.items]).astype(np.float64), minlength=len(queries))
        return GateInputs(
            cf=z_cf, cf_scored=scored, semantic=z_sem,
            popularity=(np.log1p(counts) / np.log1p(max(counts.max(initial=0), 1))).astype(np.float32),
            cold=(counts == 0).astype(np.float32),
            tail_share=(off_head / np.maximum(length, 1)).astype(np.float32),
            log_length=(np.log1p(length) / np.log(1000.0)).astype(np.float32),
        )
    def _candidates(self, seen: np.ndarray, targets: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(n, C) candidate columns and their log-sampling correction: every held-out positive plus
        a *uniform* sample of the unseen items (all of them when there are at most C). Uniform
        sampling keeps the softmax unbiased up to the ``log(pool / sampled)`` offset; a sample of
        the parts' own top items would not (held-out positives mostly lie below those tops, and
        the gate would learn that a high score means "not chosen")."""
        n, m = seen.shape
        c = min(int(self.n_candidates), m)
        cols = np.zeros((n, c), dtype=np.int64)
        offset = np.full((n, c), -np.inf, dtype=np.float32)  # padding never counts
        for row in range(n):  # over users (<= gate_users); each step vectorised over items
            positives = np.flatnonzero(targets[row])
            pool = np.flatnonzero(~seen[row] & ~targets[row])
            size = max(0, min(c - len(positives), len(pool)))
            sample = rng.choice(pool, size=size, replace=False) if size < len(pool) else pool
            chosen = np.concatenate([positives, sample])[:c]
            cols[row, : len(chosen)] = chosen
            offset[row, : len(positives)] = 0.0
            offset[row, len(positives) : len(chosen)] = np.log(len(pool) / max(size, 1))
        return cols, offset

    # -- fitting ------------------------------------------------------------------------------
    def _fit_with(self, X: Interactions, item_embeddings: np.ndarray | None, cache: FitCache | None) -> None:
        def split() -> tuple[Interactions, Interactions, dict[str, Any]]:
            rng = np.random.default_rng(int(self.seed))
            inner, held = holdout_split(X)
            inner = simulate_new_items(inner, float(self.cold_share), rng)
            return inner, held, rng.bit_generator.state  # the stream goes on after the split

        key = ("hybrid-inner", int(self.seed), float(self.cold_share))
        inner, held, state = split() if cache is None else cache.derived(key, X, split)
        rng = np.random.default_rng()
        rng.bit_generator.state = state  # the same draws with or without a cache
        cf = self._fit_part(self.cf, inner, item_embeddings, cache)
        semantic = self._fit_part(self.semantic, inner, item_embeddings, cache)
        users = np.intersect1d(held.active_users(), inner.active_users())
        if len(users) > int(self.gate_users):
            users = np.sort(rng.choice(users, int(self.gate_users), replace=False))
        if len(users) == 0:
            raise ConfigError("hybrid: no user has both a history and held-out positives to learn the gate")
        queries = HistoryBatch.from_interactions(inner, users)
        counts = inner.item_counts()
        dense = self._inputs(cf, semantic, counts, queries)
        seen, targets = queries.csr().toarray() > 0, held.csr[users].toarray() > 0
        cols, offset = self._candidates(seen, targets, rng)
        take = lambda a: np.take_along_axis(a, cols, axis=1)  # noqa: E731
        picked = GateInputs(
            cf=take(dense.cf), cf_scored=take(dense.cf_scored), semantic=take(dense.semantic),
            popularity=dense.popularity[cols], cold=dense.cold[cols],
            tail_share=dense.tail_share, log_length=dense.log_length,
        )
        long_tail = popularity_buckets(counts)[cols] != HEAD
        self.gate_ = fit_gate(picked, take(targets) & np.isfinite(offset), long_tail, offset,
                              tail_weight=float(self.tail_weight))
        self.cf_ = self._fit_part(self.cf, X, item_embeddings, cache)
        self.semantic_ = self._fit_part(self.semantic, X, item_embeddings, cache)
        self.item_counts_ = X.item_counts()

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """Both parts take the update; the gate is kept and reads the new popularity (a new item
        is cold to it, and leaves the cold bucket with its first events)."""
        super()._partial_fit(new, new_items)
        counts = np.zeros(new.n_items, np.int64)
        counts[: len(self.item_counts_)] = self.item_counts_
        self.item_counts_ = counts + new.item_counts()

    def _score(self, queries: HistoryBatch) -> np.ndarray:
        inputs = self._inputs(self.cf_, self.semantic_, self.item_counts_, queries)
        with torch.no_grad():
            return self.gate_(tensors(inputs)).numpy()

    def gate_curve(self, popularity: np.ndarray, tail_share: float = 0.0) -> np.ndarray:
        """Weight of semantics for warm items of the given normalised popularity (for plots)."""
        p = torch.as_tensor(np.asarray(popularity, np.float32))[None, :]
        x = {"popularity": p, "cold": torch.zeros_like(p), "tail_share": torch.tensor([tail_share]),
             "log_length": torch.tensor([np.log1p(50) / np.log(1000.0)], dtype=torch.float32)}
        with torch.no_grad():
            return self.gate_.gate(x).numpy()[0]

    def _scores_without(self, query: HistoryBatch, items: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """The gate over both parts' removals; ``columns``: score only those items (the parts'
        standardisation still reads the whole catalogue)."""
        inputs = self._inputs_of(self.cf_._scores_without(query, items), self.semantic_._scores_without(query, items),
                                 self.item_counts_, query.without(0, items))
        with torch.no_grad():
            return self.gate_(tensors(inputs if columns is None else inputs.at(columns))).numpy()

    def _explain_items(self, query: HistoryBatch, items: list[int]) -> list[Explanation]:
        """Each part's share of the score (``detail``: cf, semantic, popularity, gate) and the
        history items whose removal lowers the hybrid's own score most (``models.occlusion``;
        candidates: the parts' proposals). Without a candidate that lowers it, no evidence."""
        columns = np.asarray(items, np.int64)
        inputs = self._inputs(self.cf_, self.semantic_, self.item_counts_, query).at(columns)
        with torch.no_grad():
            parts = {k: v[0].numpy() for k, v in self.gate_.parts(tensors(inputs)).items()}
        base = parts["cf"] + parts["semantic"] + parts["popularity"]  # the gate's forward, from its parts
        candidates = shortlist(self._proposals(query, items), OCCLUSION_CANDIDATES)
        without = (self._scores_without(query, candidates, columns) if len(candidates)
                   else np.zeros((0, len(columns)), np.float32))
        evidence = occlusion_evidence(base, without, range(len(columns)), candidates)
        return [Explanation(item, "parts", self.name, found,
                            {**{k: float(v[j]) for k, v in parts.items()}, "cold": float(self.item_counts_[item] == 0)})
                for j, (item, found) in enumerate(zip(items, evidence, strict=True))]

    # -- persistence --------------------------------------------------------------------------
    def _own_state(self) -> dict[str, np.ndarray]:
        return {"gate": self.gate_.to_array(), "item_counts": self.item_counts_}

    def _set_own_state(self, fitted: dict[str, Recommender], arrays: dict[str, np.ndarray]) -> None:
        self.gate_ = PopularityGate.from_array(arrays["gate"])
        self.item_counts_ = arrays["item_counts"]
        self._use_parts(fitted)
