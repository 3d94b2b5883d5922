"""The popularity-gated hybrid on real data: 120 ml-latest-small users, the films they liked plus 300
films nobody in the slice touched (cold), encoded once by the real encoder (private cache)."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.data import load_dataset
from longtail.data.buckets import HEAD, popularity_buckets
from longtail.data.interactions import Interactions
from longtail.eval.tuning import _select
from longtail.models import make_model
from longtail.models.base import UNSCORED, Recommender
from longtail.models.hybrid import HybridRecommender, holdout_split, simulate_new_items
from longtail.text import embed_items

PARTS = {"cf_params": {"l2": 50.0}, "semantic_params": {"temperature": 0.2}}


class Slice:
    def __init__(self, X: Interactions, vectors: np.ndarray) -> None:
        self.X, self.vectors = X, vectors
        self.counts = X.item_counts()
        self.cold = np.flatnonzero(self.counts == 0)

    def fit(self, **params: object) -> HybridRecommender:
        model = make_model("hybrid", **{**PARTS, **params})
        return model.fit(self.X, item_embeddings=self.vectors)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Slice:
    ds = load_dataset("ml-latest-small")
    tv = ds.train_valid
    keep = tv.users < 120
    liked = np.unique(tv.items[keep])
    untouched = np.setdiff1d(np.arange(ds.n_items), liked)
    cold = np.random.default_rng(0).choice(untouched, 300, replace=False)
    items = np.sort(np.concatenate([liked, cold]))
    new_index = np.full(ds.n_items, -1)
    new_index[items] = np.arange(len(items))
    X = Interactions(tv.users[keep], new_index[tv.items[keep]].astype(np.int32), tv.timestamps[keep],
                     120, len(items))
    with pytest.MonkeyPatch.context() as patch:  # never write to the user's ~/.cache
        patch.setenv("LONGTAIL_CACHE", str(tmp_path_factory.mktemp("longtail-cache")))
        vectors = embed_items(ds.items.iloc[items].reset_index(drop=True))
    return Slice(X, vectors)


@pytest.fixture(scope="module")
def plain(data: Slice) -> HybridRecommender:
    return data.fit(tail_weight=1.0)


def test_holdout_and_simulated_new_items(data: Slice) -> None:
    inner, held = holdout_split(data.X)
    assert len(inner) + len(held) == len(data.X)
    last_inner = np.zeros(data.X.n_users, np.int64)
    np.maximum.at(last_inner, inner.users, inner.timestamps)
    assert np.all(held.timestamps >= last_inner[held.users])  # held-out events are the latest
    rng = np.random.default_rng(0)
    fewer = simulate_new_items(inner, 0.1, rng)
    warm_before, warm_after = (inner.item_counts() > 0).sum(), (fewer.item_counts() > 0).sum()
    assert warm_before - warm_after == int(np.floor(0.1 * warm_before))


def test_cold_items_are_scored_through_semantics(data: Slice, plain: HybridRecommender) -> None:
    cf_only = make_model("ease", **PARTS["cf_params"]).fit(data.X)
    assert np.all(cf_only.score([0])[0, data.cold] <= UNSCORED)  # CF is blind to them
    scores = plain.score(np.arange(50))
    assert np.all(np.isfinite(scores[:, data.cold])) and np.all(scores[:, data.cold] > UNSCORED / 2)
    # a cold item ranks by its semantic match: per user, cold scores are increasing in semantic score
    sem = plain.semantic_.score([3])[0, data.cold]
    assert np.corrcoef(sem, scores[3, data.cold])[0, 1] > 0.99
    why = plain.explain(3, int(data.cold[np.argmax(sem)]))
    assert why["cold"] and why["gate"] == 1.0 and why["cf"] == 0.0 and why["driver"] in {"semantic", "popularity"}
    assert why["because"] and abs(sum(a["weight"] for a in why["because"])) <= 1.0 + 1e-6


def test_gate_learns_more_tail_with_a_higher_tail_weight(data: Slice, plain: HybridRecommender) -> None:
    heavy = data.fit(tail_weight=100.0)
    long_tail = popularity_buckets(data.counts) != HEAD
    users = np.arange(120)

    def tail_share(model: Recommender) -> float:
        items, _ = model.recommend(users, k=20)
        return float(long_tail[items[items >= 0]].mean())

    assert tail_share(heavy) > tail_share(plain) + 0.05
    curve = heavy.gate_curve(np.linspace(0, 1, 5))
    assert curve.shape == (5,) and np.all((curve >= 0) & (curve <= 1))


def test_partial_fit_and_round_trip(data: Slice, plain: HybridRecommender, tmp_path) -> None:
    before, _ = plain.recommend([5], k=10)
    loaded = Recommender.load(plain.save(tmp_path / "hybrid"))
    again, _ = loaded.recommend([5], k=10)
    np.testing.assert_array_equal(before, again)
    item = int(before[0, 0])
    event = Interactions(np.asarray([5], np.int32), np.asarray([item], np.int32),
                         np.asarray([2_000_000_000], np.int64), data.X.n_users, data.X.n_items)
    loaded.partial_fit(event)
    after, _ = loaded.recommend([5], k=10)
    assert item not in after[0] and not np.array_equal(before, after)


def test_selection_rule_keeps_overall_then_maximises_tail() -> None:
    trials = [
        {"valid_ndcg@20": 0.110, "valid_tail_ndcg@20": 0.004},
        {"valid_ndcg@20": 0.105, "valid_tail_ndcg@20": 0.012},
        {"valid_ndcg@20": 0.097, "valid_tail_ndcg@20": 0.020},  # below the CF part: excluded
    ]
    assert _select(trials, "ndcg@20", "tail-at-cf-overall", reference=0.100) == 1
    assert _select(trials, "ndcg@20", "overall", reference=0.100) == 0
    assert _select(trials, "ndcg@20", "tail-at-cf-overall", reference=0.2) == 0  # none qualifies
