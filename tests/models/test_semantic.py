"""Text-only recommenders on real movie texts: 60 animated children's films and 60 horror films of
ml-latest-small, encoded once by the real encoder (private cache); three users with a few events each,
every other film cold (no interaction at all)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from longtail.data import load_dataset
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models import Recommender, make_model
from longtail.models import semantic as semantic_module
from longtail.models.semantic import SemanticAttentionRecommender, attention_pool
from longtail.text import embed_items

TEXT_MODELS = ["semantic", "semantic-attn"]
N_PER_GENRE = 60
N_SEEN = 15


class Films:
    """The catalogue subset, its vectors and the index sets the tests need."""

    def __init__(self, items: pd.DataFrame, vectors: np.ndarray) -> None:
        self.items, self.vectors = items, vectors
        genres = items["genres"].astype(str)
        self.kids = np.flatnonzero(genres.str.contains("Animation").to_numpy())
        self.horror = np.flatnonzero(~genres.str.contains("Animation").to_numpy())
        self.n_items = len(items)

    def interactions(self) -> Interactions:
        """u0: 15 kids films; u1: 15 horror films; u2: 10 kids films, then 5 horror films."""
        users = [0] * N_SEEN + [1] * N_SEEN + [2] * 15
        items = [*self.kids[:N_SEEN], *self.horror[:N_SEEN], *self.kids[N_SEEN:25], *self.horror[N_SEEN:20]]
        times = list(range(N_SEEN)) * 2 + list(range(15))
        return Interactions(np.asarray(users, np.int32), np.asarray(items, np.int32),
                            np.asarray(times, np.int64), 3, self.n_items)

    def fit(self, name: str, **params: object) -> Recommender:
        return make_model(name, **params).fit(self.interactions(), item_embeddings=self.vectors)


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Films:
    items = load_dataset("ml-latest-small").items
    genres = items["genres"].astype(str)
    kids = items[genres.str.contains("Animation") & genres.str.contains("Children")].head(N_PER_GENRE)
    horror = items[genres.str.contains("Horror") & ~genres.str.contains("Animation|Children|Comedy")]
    subset = pd.concat([kids, horror.head(N_PER_GENRE)]).sort_values("item_id").reset_index(drop=True)
    with pytest.MonkeyPatch.context() as patch:  # never write to the user's ~/.cache
        patch.setenv("LONGTAIL_CACHE", str(tmp_path_factory.mktemp("longtail-cache")))
        vectors = embed_items(subset)
    return Films(subset, vectors)


def auc(scores: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a random positive item outscores a random negative one)."""
    return float((scores[positive][:, None] > scores[negative][None, :]).mean())


def test_needs_embeddings(films: Films) -> None:
    with pytest.raises(ConfigError, match="item_embeddings"):
        make_model("semantic").fit(films.interactions())
    with pytest.raises(ConfigError, match="temperature"):
        make_model("semantic-attn", temperature=0.0).fit(films.interactions(), item_embeddings=films.vectors)


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_cold_items_are_recommended_to_semantically_close_users(films: Films, name: str) -> None:
    model = films.fit(name)
    scores = model.score([0, 1])
    cold_kids, cold_horror = films.kids[25:], films.horror[20:]  # no interaction at all
    assert auc(scores[0], cold_kids, cold_horror) > 0.8  # chance is 0.5
    assert auc(scores[1], cold_horror, cold_kids) > 0.8
    items, _ = model.recommend([0, 1], k=10)
    assert len(set(items[0]) & set(films.kids)) >= 8 and len(set(items[1]) & set(films.horror)) >= 8
    assert not set(items[0]) & set(films.kids[:N_SEEN])  # history excluded


def test_infinite_temperature_is_the_mean_profile_ranking(films: Films) -> None:
    mean = films.fit("semantic", half_life=5.0).score([0, 1, 2])
    attn = films.fit("semantic-attn", temperature=None, half_life=5.0).score([0, 1, 2])
    scale = attn[:, :1] / mean[:, :1]  # attention = <unnormalised mean, v>, semantic = its cosine
    np.testing.assert_allclose(attn, mean * scale, rtol=1e-4, atol=1e-6)


def test_explain_weights_sum_to_one_and_follow_the_candidate(films: Films) -> None:
    model = films.fit("semantic-attn", temperature=0.05)
    history = set(films.interactions().csr[2].indices)
    for candidate, genre in ((films.horror[30], films.horror), (films.kids[40], films.kids)):
        explanation = model.explain(2, int(candidate), top=100)
        assert len(explanation) == 15 and {a.item for a in explanation} == history
        assert sum(a.weight for a in explanation) == pytest.approx(1.0, abs=1e-6)
        weights = [a.weight for a in explanation]
        assert weights == sorted(weights, reverse=True)
        assert explanation[0].item in set(genre)  # the mixed user's matching taste drives it
    assert len(model.explain(2, int(films.kids[40]))) == 3


def test_history_order_recency_cap_and_unknown_items() -> None:
    """Order is (timestamp, item); items passed in without a known event count as newest."""
    vectors = np.eye(6, dtype=np.float32)
    data = Interactions(np.zeros(4, np.int32), np.array([3, 1, 2, 4], np.int32),
                        np.array([5, 5, 1, 9], np.int64), 1, 6)
    model = SemanticAttentionRecommender(temperature=None, half_life=1.0, max_history=3)
    model.fit(data, item_embeddings=vectors)
    explanation = model.explain(0, 5, top=10)  # candidate 5 is orthogonal: weights are recency only
    assert [(a.item, a.age) for a in explanation] == [(4, 0), (3, 1), (1, 2)]  # item 2 is capped
    assert explanation[0].weight == pytest.approx(4 / 7)  # 1 : 1/2 : 1/4
    history = data.csr.copy().tolil()
    history[0, 0] = 1.0
    passed = model.explain(0, 5, top=10, history=history.tocsr())
    assert [(a.item, a.age) for a in passed] == [(0, 0), (4, 1), (3, 2)]


def test_attention_pool_matches_a_loop() -> None:
    rng = np.random.default_rng(1)
    sim = rng.uniform(-1, 1, (9, 5)).astype(np.float32)
    bias = rng.normal(size=9).astype(np.float32)
    starts = np.array([0, 4, 5])
    got = attention_pool(sim.copy(), bias, starts, 0.1)
    for u, (lo, hi) in enumerate(zip(starts, [4, 5, 9])):
        logits = sim[lo:hi] / 0.1 + bias[lo:hi, None]
        w = np.exp(logits - logits.max(axis=0))
        np.testing.assert_allclose(got[u], (w * sim[lo:hi]).sum(0) / w.sum(0), rtol=1e-5)


def test_blocks_bound_memory_without_changing_scores(films: Films, monkeypatch) -> None:
    model = films.fit("semantic-attn", temperature=0.1, half_life=5.0)
    expected = model.score([0, 1, 2])
    monkeypatch.setattr(semantic_module, "BLOCK_ELEMENTS", 4 * films.n_items)  # 4 history rows a block
    np.testing.assert_allclose(model.score([0, 1, 2]), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_save_load_identical(films: Films, name: str, tmp_path) -> None:
    model = films.fit(name, half_life=5.0)
    model.save(tmp_path / "model")
    loaded = Recommender.load(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    for a, b in zip(model.recommend([0, 1, 2], k=20), loaded.recommend([0, 1, 2], k=20)):
        np.testing.assert_array_equal(a, b)
    if name == "semantic-attn":
        assert model.explain(2, int(films.kids[40])) == loaded.explain(2, int(films.kids[40]))


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_partial_fit_extends_histories(films: Films, name: str) -> None:
    model = films.fit(name, half_life=1.0)
    before, _ = model.recommend([0], k=10)
    new = int(films.horror[25])
    model.partial_fit(Interactions(np.array([0], np.int32), np.array([new], np.int32),
                                   np.array([100], np.int64), 3, films.n_items))
    after, _ = model.recommend([0], k=10)
    assert model.user_items_[0, new] == 1.0 and new not in after[0]
    assert len(set(after[0]) & set(films.horror)) > len(set(before[0]) & set(films.horror))
    # a user unseen at fit time arrives with one event
    model.partial_fit(Interactions(np.array([3], np.int32), np.array([int(films.kids[50])], np.int32),
                                   np.array([7], np.int64), 4, films.n_items))
    items, _ = model.recommend([3], k=5)
    assert set(items[0]) <= set(films.kids)
    with pytest.raises(ConfigError, match="catalogue"):
        model.partial_fit(Interactions(np.zeros(1, np.int32), np.zeros(1, np.int32),
                                       np.zeros(1, np.int64), 4, films.n_items + 1))
