"""Neural two-tower model on real interactions: ml-latest-small's training positives of its first 150
users on its first 3000 items (a third of them cold), random unit vectors standing in for the text,
a tiny network and two epochs so that every fit takes about a second."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from longtail.data import load_dataset
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models import Recommender, make_model
from longtail.models.neural import NEURAL_MODELS, NeuralRecommender
from longtail.models.towers import history_windows

N_USERS, N_ITEMS = 150, 3000
TINY = {"dim": 16, "epochs": 2, "batch_size": 256, "max_history": 20, "num_threads": 1}


class Catalogue:
    def __init__(self) -> None:
        train = load_dataset("ml-latest-small").train
        keep = (train.users < N_USERS) & (train.items < N_ITEMS)
        self.data = Interactions(train.users[keep], train.items[keep], train.timestamps[keep],
                                 N_USERS, N_ITEMS)
        counts = self.data.item_counts()
        self.cold = np.flatnonzero(counts == 0)
        self.warm = np.flatnonzero(counts > 0)
        self.head = self.warm[np.argsort(-counts[self.warm], kind="stable")][: len(self.warm) // 5]
        vectors = np.random.default_rng(0).standard_normal((N_ITEMS, 32)).astype(np.float32)
        vectors[self.cold[1]] = vectors[self.cold[0]]  # two cold items with the same text
        vectors[self.cold[2]] = vectors[self.warm[0]]  # a cold item with a warm item's text
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.users = np.flatnonzero(self.data.user_counts() > 0)

    def fit(self, name: str = "neural-softmax", **params: object) -> NeuralRecommender:
        model = make_model(name, **{**TINY, **params})
        return model.fit(self.data, item_embeddings=self.vectors)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue()


@pytest.fixture(scope="module")
def model(catalogue: Catalogue) -> NeuralRecommender:
    return catalogue.fit()


def test_history_windows_are_right_aligned_per_user() -> None:
    items = np.array([10, 11, 12, 20, 21])  # user A: 10, 11, 12; user B: 20, 21 (oldest first)
    starts = np.array([0, 0, 0, 3, 3])
    windows = history_windows(np.array([1, 2, 4]), items, starts, length=3, pad=99)
    np.testing.assert_array_equal(windows, [[99, 99, 10], [99, 10, 11], [99, 99, 20]])


def test_registry_names_fix_the_loss(catalogue: Catalogue) -> None:
    assert {cls.name: cls().loss for cls in NEURAL_MODELS} == {
        "neural": "logit-adjustment", "neural-softmax": "softmax", "neural-la": "logit-adjustment",
        "neural-ips": "ips", "neural-focal": "focal"}
    assert NeuralRecommender.param_grid == {"loss": ["softmax", "logit-adjustment", "ips", "focal"]}
    with pytest.raises(ConfigError, match="fixes loss='focal'"):
        catalogue.fit("neural-focal", loss="softmax")
    with pytest.raises(ConfigError, match="loss must be one of"):
        catalogue.fit("neural", loss="hinge")


def test_fit_is_deterministic(model: NeuralRecommender, catalogue: Catalogue) -> None:
    again = catalogue.fit()
    np.testing.assert_array_equal(model.item_factors_, again.item_factors_)
    np.testing.assert_array_equal(model.recommend(catalogue.users, k=20)[0],
                                  again.recommend(catalogue.users, k=20)[0])
    other_seed = catalogue.fit(seed=1)
    assert not np.array_equal(model.item_factors_, other_seed.item_factors_)


def test_cold_items_are_scored_by_their_text_alone(model: NeuralRecommender, catalogue: Catalogue) -> None:
    factors = model.item_factors_
    np.testing.assert_array_equal(factors[catalogue.cold[0]], factors[catalogue.cold[1]])
    # same text as a warm item, but no learned residual
    assert not np.allclose(factors[catalogue.cold[2]], factors[catalogue.warm[0]])
    scores = model.score(catalogue.users)
    assert np.all(np.isfinite(scores[:, catalogue.cold]))
    items, _ = model.recommend(catalogue.users, k=100)
    assert np.isin(items, catalogue.cold).any()  # cold items compete for the lists


def test_logit_adjustment_recommends_less_head(model: NeuralRecommender, catalogue: Catalogue) -> None:
    adjusted = catalogue.fit("neural-la", tau=1.0)
    share = [np.isin(m.recommend(catalogue.users, k=20)[0], catalogue.head).mean() for m in (model, adjusted)]
    assert share[1] < share[0]


def test_save_load_identical(model: NeuralRecommender, catalogue: Catalogue, tmp_path) -> None:
    model.save(tmp_path / "neural")
    loaded = Recommender.load(tmp_path / "neural")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    for a, b in zip(model.recommend(catalogue.users, k=20), loaded.recommend(catalogue.users, k=20),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_extends_histories_without_training(catalogue: Catalogue) -> None:
    model = catalogue.fit()
    factors = model.item_factors_.copy()
    user = int(catalogue.users[0])
    before, _ = model.recommend([user], k=10)
    new = Interactions(np.array([user], np.int32), np.array([before[0, 0]], np.int32),
                       np.array([2_000_000_000], np.int64), N_USERS, N_ITEMS)
    after, _ = model.partial_fit(new).recommend([user], k=10)
    assert before[0, 0] not in after[0]
    assert not np.array_equal(before[0, 1:], after[0, :9])  # the newest event moved the user
    np.testing.assert_array_equal(model.item_factors_, factors)


def test_sampled_softmax_above_the_limit(model: NeuralRecommender, catalogue: Catalogue) -> None:
    sampled = catalogue.fit(max_full_softmax=100, n_negatives=64)
    assert np.all(np.isfinite(sampled.item_factors_))
    assert not np.allclose(sampled.item_factors_, model.item_factors_)


def test_thread_setting_is_restored(catalogue: Catalogue) -> None:
    previous = torch.get_num_threads()
    catalogue.fit(epochs=1, num_threads=1)
    assert torch.get_num_threads() == previous
