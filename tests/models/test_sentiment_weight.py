"""Per-positive weights (from review sentiment) in the models: all-ones weights score exactly as no
weights; a history item with a cold review counts less in ``semantic(-attn)`` and in the neural
user tower; the loss reads per-target weights; the flagship sees them through its parts; the
service's histories carry the artifact's weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import FAST_PARAMS, MovieSlice

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.models import make_model
from longtail.models.losses import LongTailLoss, LossConfig
from longtail.models.neural import NeuralRecommender
from longtail.serve.bundle import _train
from longtail.serve.histories import Histories
from longtail.text.sentiment import sentiment_weights


@pytest.fixture(scope="module")
def plain_neural(movies: MovieSlice) -> NeuralRecommender:
    """``neural-ips`` fitted on the unweighted slice (shared by two tests)."""
    return movies.fit("neural-ips")  # type: ignore[return-value]


def random_weights(X: Interactions, seed: int = 0) -> np.ndarray:
    """Weights as sentiment gives them (weight 1.0 over sentiments in [-1, 1])."""
    return sentiment_weights(np.random.default_rng(seed).uniform(-1, 1, len(X)), 1.0)


@pytest.mark.parametrize("name", ["semantic", "semantic-attn"])
def test_all_ones_weights_score_exactly_as_none(movies: MovieSlice, name: str) -> None:
    model = movies.fit(name)
    users = movies.users[:20]
    plain = HistoryBatch.from_interactions(movies.X, users)
    ones = HistoryBatch.from_interactions(movies.X.with_weights(np.ones(len(movies.X))), users)
    assert ones.weights is not None and np.array_equal(model.score(plain), model.score(ones))


def test_neural_all_ones_weights_match_none(movies: MovieSlice, plain_neural: NeuralRecommender) -> None:
    """Same examples, same draws: only the loss' normalisation differs in rounding."""
    plain = plain_neural
    ones = make_model("neural-ips", **FAST_PARAMS["neural-ips"])
    ones.fit(movies.X.with_weights(np.ones(len(movies.X))), item_embeddings=movies.vectors)
    q = movies.queries(movies.users[:10])
    assert np.allclose(plain.score(q), ones.score(q), atol=1e-4)


def two_taste_catalogue() -> np.ndarray:
    """Items 0, 1: two orthogonal tastes; 2 resembles 0, 3 resembles 1; 4 is unrelated."""
    vectors = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0.9, 0.1, 0.4, 0], [0.1, 0.9, 0, 0.4], [0, 0, 0, 1]],
                       dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize(("name", "params"), [("semantic", {}), ("semantic-attn", {"temperature": None}),
                                              ("semantic-attn", {"temperature": 0.1})])
def test_a_cold_review_weighs_its_item_less(name: str, params: dict) -> None:
    vectors = two_taste_catalogue()
    X = Interactions(np.zeros(2, np.int32), np.array([0, 1], np.int32), np.array([1, 2]), 1, 5)
    model = make_model(name, **params).fit(X, item_embeddings=vectors)
    plain = model.score(HistoryBatch.from_interactions(X))[0]
    # item 0 came with a negative review, item 1 with a warm one
    weighted_X = X.with_weights(sentiment_weights(np.array([-0.8, 0.9]), 1.0))
    weighted = model.score(HistoryBatch.from_interactions(weighted_X))[0]
    assert weighted[2] < plain[2] and weighted[3] > plain[3]  # like 0: down; like 1: up
    assert weighted[3] > weighted[2]
    why = model.explain(HistoryBatch.from_interactions(weighted_X), np.array([[2]]))[0][0]
    plain_why = model.explain(HistoryBatch.from_interactions(X), np.array([[2]]))[0][0]
    share = {e.item: e.weight for e in why.evidence}
    plain_share = {e.item: e.weight for e in plain_why.evidence}
    assert share.get(0, 0.0) < plain_share[0]


def test_neural_tower_attends_less_to_a_cold_review(movies: MovieSlice, plain_neural: NeuralRecommender) -> None:
    X = movies.X.with_weights(random_weights(movies.X))
    model = make_model("neural-ips", **FAST_PARAMS["neural-ips"]).fit(X, item_embeddings=movies.vectors)
    user = int(movies.users[0])
    plain = HistoryBatch.from_interactions(movies.X, [user])
    history = plain.row(0)
    weights = np.ones(len(history), np.float32)
    weights[-1] = 0.05  # the newest event: a scathing review
    weighted = HistoryBatch.from_events(np.zeros(len(history), np.int64), history, plain.times, 1, X.n_items,
                                        weights=weights)
    vectors = torch.from_numpy(model.item_factors_)
    with torch.no_grad():
        a = model.user_tower_.attention(vectors, model._windows(plain), model._log_weight_windows(plain))[0]
        b = model.user_tower_.attention(vectors, model._windows(weighted), model._log_weight_windows(weighted))[0]
    assert model._log_weight_windows(plain) is None
    assert b[-1] < a[-1] and np.isclose(float(b.sum()), 1.0)
    assert not np.allclose(model.score(plain), model.score(weighted))
    assert not np.allclose(plain_neural.score(plain), model.score(plain))  # the fit read them too


def test_loss_weights_each_target() -> None:
    criterion = LongTailLoss(LossConfig("ips", ips_power=0.5), np.array([10, 1, 1]))
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    target = torch.tensor([0, 2])
    items = torch.arange(3)
    only_first = criterion(logits[:1], target[:1], items)
    assert torch.isclose(criterion(logits, target, items, torch.tensor([1.0, 0.0])), only_first)
    assert torch.isclose(criterion(logits, target, items, torch.ones(2)), criterion(logits, target, items))


def test_the_flagship_reads_weights_through_its_parts(movies: MovieSlice) -> None:
    X = movies.X.with_weights(random_weights(movies.X, seed=1))
    plain = movies.fit("longtail")
    weighted = make_model("longtail", **FAST_PARAMS["longtail"]).fit(X, item_embeddings=movies.vectors)
    users = movies.users[:10]
    a = plain.score(HistoryBatch.from_interactions(movies.X, users))
    b = weighted.score(HistoryBatch.from_interactions(X, users))
    assert np.isfinite(b[b > -np.inf]).all() and not np.allclose(a, b)


def test_service_histories_carry_the_artifacts_weights() -> None:
    X = Interactions(np.array([0, 0, 1, 0], np.int32), np.array([2, 1, 0, 2], np.int32),
                     np.array([30, 10, 5, 40]), 2, 3, weights=np.array([0.5, 2.0, 3.0, 9.0], np.float32))
    arrays = {"train.users": X.users, "train.items": X.items, "train.timestamps": X.timestamps,
              "train.weights": X.weights}
    loaded = _train(arrays, 2, 3, None)  # type: ignore[arg-type]
    histories = Histories(["u0", "u1"], loaded)
    for u in (0, 1):
        served, evaluated = histories.history(u), HistoryBatch.from_interactions(X, [u])
        assert served.items.tolist() == evaluated.items.tolist()
        assert served.weights.tolist() == evaluated.weights.tolist()  # (u0: item 2's first event, 0.5)
    histories.commit(histories.stage(["u0"], [0], [50]))  # a live event weighs 1
    assert histories.history(0).weights.tolist() == [2.0, 0.5, 1.0]
    assert Histories(["u0", "u1"], X.with_weights(None)).history(0).weights is None
