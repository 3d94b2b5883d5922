"""The popularity-gated hybrid on real data: the ``movies`` slice of ml-latest-small (150 users, 3,000
films, a third of them cold) with the real encoder's vectors of the films' texts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import MovieSlice

from longtail.common.scores import scored_mask
from longtail.data.buckets import HEAD, popularity_buckets
from longtail.data.history import HistoryBatch
from longtail.eval.tuning import _select
from longtail.models import make_model
from longtail.models.gate import tensors
from longtail.models.hybrid import HybridRecommender, holdout_split, simulate_new_items

PARAMS = {"cf__l2": 50.0, "semantic__temperature": 0.2}


def gates(model: HybridRecommender, queries: HistoryBatch) -> np.ndarray:
    """(n, n_items) weight of semantics in each score (1 on the cold path)."""
    inputs = model._inputs(model.cf_, model.semantic_, model.item_counts_, queries)
    with torch.no_grad():
        return model.gate_.parts(tensors(inputs))["gate"].numpy()


@pytest.fixture(scope="module")
def plain(movies: MovieSlice) -> HybridRecommender:
    return movies.fit("hybrid", tail_weight=1.0, **PARAMS)


@pytest.fixture(scope="module")
def heavy(movies: MovieSlice) -> HybridRecommender:
    return movies.fit("hybrid", tail_weight=100.0, **PARAMS)


def test_holdout_and_simulated_new_items(movies: MovieSlice) -> None:
    inner, held = holdout_split(movies.X)
    assert len(inner) + len(held) == len(movies.X)
    last_inner = np.zeros(movies.X.n_users, np.int64)
    np.maximum.at(last_inner, inner.users, inner.timestamps)
    assert np.all(held.timestamps >= last_inner[held.users])  # held-out events are the latest
    rng = np.random.default_rng(0)
    fewer = simulate_new_items(inner, 0.1, rng)
    warm_before, warm_after = (inner.item_counts() > 0).sum(), (fewer.item_counts() > 0).sum()
    assert warm_before - warm_after == int(np.floor(0.1 * warm_before))


def test_cold_items_are_scored_through_semantics(movies: MovieSlice, plain: HybridRecommender) -> None:
    user = movies.queries([3])
    cf_only = make_model("ease", l2=PARAMS["cf__l2"]).fit(movies.X)
    assert not scored_mask(cf_only.score(user)[0, movies.cold]).any()  # CF is blind to them
    scores = plain.score(movies.queries(movies.users[:50]))
    assert scored_mask(scores[:, movies.cold]).all() and np.isfinite(scores[:, movies.cold]).all()
    # a cold item ranks by its semantic match: per user, cold scores are increasing in semantic score
    sem = plain.semantic_.score(user)[0, movies.cold]
    assert np.corrcoef(sem, plain.score(user)[0, movies.cold])[0, 1] > 0.99
    best = int(movies.cold[np.argmax(sem)])
    why = plain.explain(user, np.array([[best]]))[0][0]
    assert why.kind == "parts" and why.detail["cold"] == 1.0
    assert why.detail["gate"] == 1.0 and why.detail["cf"] == 0.0  # semantics alone
    assert why.evidence and {e.item for e in why.evidence} <= set(user.row(0).tolist())
    without = plain.score(user.without(0, [why.evidence[0].item]))[0, best]
    assert without < plain.score(user)[0, best]  # the top evidence is what the score leans on


def test_explained_parts_add_up_to_the_score(movies: MovieSlice, plain: HybridRecommender) -> None:
    batch = movies.queries(movies.users[:6])
    scores = plain.score(batch)
    items, _ = plain.recommend(batch, k=8)
    tail = np.flatnonzero(popularity_buckets(movies.counts) != HEAD)
    items = np.concatenate([items, np.tile(tail[:4], (6, 1)), np.tile(movies.cold[:4], (6, 1))], axis=1)
    for r, row in enumerate(plain.explain(batch, items)):
        for why in row:  # head, tail and cold items: score = cf + semantic + popularity parts
            parts = why.detail["cf"] + why.detail["semantic"] + why.detail["popularity"]
            assert parts == pytest.approx(float(scores[r, why.item]), rel=1e-4, abs=1e-5)
            assert 0.0 < why.detail["gate"] <= 1.0


def test_a_higher_tail_weight_buys_tail_exposure_through_the_gate(
        movies: MovieSlice, plain: HybridRecommender, heavy: HybridRecommender) -> None:
    """tail_weight weighs tail and cold held-out positives in the gate's loss: the gate it learns
    gives warm tail items more semantics and the lists more tail items; cold items are always
    scored by semantics alone, head items by a blend."""
    buckets = popularity_buckets(movies.counts)
    head, warm_tail = buckets == HEAD, (buckets != HEAD) & (movies.counts > 0)
    batch = movies.queries()

    def tail_share(model: HybridRecommender) -> float:
        items, _ = model.recommend(batch, k=20)
        return float((buckets[items[items >= 0]] != HEAD).mean())

    assert tail_share(heavy) > tail_share(plain) + 0.1
    plain_gate, heavy_gate = gates(plain, batch), gates(heavy, batch)
    assert heavy_gate[:, warm_tail].mean() > plain_gate[:, warm_tail].mean() + 0.01
    for gate in (plain_gate, heavy_gate):
        assert np.all(gate[:, movies.cold] == 1.0) and gate[:, head].mean() < 0.9


def test_selection_rule_keeps_overall_then_maximises_tail() -> None:
    trials = [
        {"valid_ndcg@20": 0.110, "valid_tail_ndcg@20": 0.004},
        {"valid_ndcg@20": 0.105, "valid_tail_ndcg@20": 0.012},
        {"valid_ndcg@20": 0.097, "valid_tail_ndcg@20": 0.020},  # below the CF part: excluded
    ]
    assert _select(trials, "ndcg@20", "tail-at-reference", reference=0.100) == 1
    assert _select(trials, "ndcg@20", "overall", reference=0.100) == 0
    assert _select(trials, "ndcg@20", "tail-at-reference", reference=0.2) == 0  # none qualifies
    assert HybridRecommender.selection == "tail-at-reference" and HybridRecommender.reference_part == "cf"
