"""Text-only recommenders on real movie texts: 60 animated children's films and 60 horror films of
ml-latest-small with the real encoder's vectors (``ml_item_vectors``); three users with a few events
each, every other film cold (no interaction at all)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from longtail.data.dataset import Dataset
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models import Recommender, make_model
from longtail.models import semantic as semantic_module
from longtail.models.semantic import SemanticAttentionRecommender, attention_pool

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

    def queries(self, users: list[int]) -> HistoryBatch:
        return HistoryBatch.from_interactions(self.interactions(), users)


@pytest.fixture(scope="module")
def films(ml: Dataset, ml_item_vectors: np.ndarray) -> Films:
    items = ml.items
    genres = items["genres"].astype(str)
    kids = items[genres.str.contains("Animation") & genres.str.contains("Children")].head(N_PER_GENRE)
    horror = items[genres.str.contains("Horror") & ~genres.str.contains("Animation|Children|Comedy")]
    subset = pd.concat([kids, horror.head(N_PER_GENRE)]).sort_values("item_id")
    return Films(subset.reset_index(drop=True), ml_item_vectors[subset.index.to_numpy()])


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
    scores = model.score(films.queries([0, 1]))
    cold_kids, cold_horror = films.kids[25:], films.horror[20:]  # no interaction at all
    assert auc(scores[0], cold_kids, cold_horror) > 0.8  # chance is 0.5
    assert auc(scores[1], cold_horror, cold_kids) > 0.8
    items, _ = model.recommend(films.queries([0, 1]), k=10)
    assert len(set(items[0]) & set(films.kids)) >= 8 and len(set(items[1]) & set(films.horror)) >= 8
    assert not set(items[0]) & set(films.kids[:N_SEEN])  # history excluded


def test_infinite_temperature_is_the_mean_profile_ranking(films: Films) -> None:
    everyone = films.queries([0, 1, 2])
    mean = films.fit("semantic", half_life=5.0).score(everyone)
    attn = films.fit("semantic-attn", temperature=None, half_life=5.0).score(everyone)
    scale = attn[:, :1] / mean[:, :1]  # attention = <unnormalised mean, v>, semantic = its cosine
    np.testing.assert_allclose(attn, mean * scale, rtol=1e-4, atol=1e-6)


def test_explanations_are_the_attention_over_the_history(films: Films) -> None:
    """The evidence is the three history items with the most attention, with its weight:
    softmax(cos / temperature) over the mixed user's 15 films, computed here by hand."""
    model = films.fit("semantic-attn", temperature=0.05)
    user = films.queries([2])
    history = user.row(0)
    for candidate, genre in ((films.horror[30], films.horror), (films.kids[40], films.kids)):
        sim = films.vectors[history].astype(np.float64) @ films.vectors[candidate]
        weights = np.exp((sim - sim.max()) / 0.05)
        weights /= weights.sum()
        top = np.argsort(-weights)[:3]
        why = model.explain(user, np.array([[candidate]]))[0][0]
        assert why.kind == "history" and why.item == candidate
        assert [e.item for e in why.evidence] == history[top].tolist()
        np.testing.assert_allclose([e.weight for e in why.evidence], weights[top], rtol=1e-4)
        assert why.evidence[0].item in set(genre)  # the mixed user's matching taste drives it


def test_history_order_recency_and_cap() -> None:
    """Order is (timestamp, item); ``max_history`` keeps the newest events; the newest weighs most."""
    vectors = np.eye(6, dtype=np.float32)
    data = Interactions(np.zeros(4, np.int32), np.array([3, 1, 2, 4], np.int32),
                        np.array([5, 5, 1, 9], np.int64), 1, 6)
    model = SemanticAttentionRecommender(temperature=None, half_life=1.0, max_history=3)
    model.fit(data, item_embeddings=vectors)
    user = HistoryBatch.from_interactions(data)
    why = model.explain(user, np.array([[5]]))[0][0]  # candidate 5 is orthogonal: weights are recency only
    assert [e.item for e in why.evidence] == [4, 3, 1]  # 1 before 3 at t=5; item 2 (t=1) is capped
    np.testing.assert_allclose([e.weight for e in why.evidence], [4 / 7, 2 / 7, 1 / 7], rtol=1e-6)  # 1 : 1/2 : 1/4
    newer = HistoryBatch.from_events(np.zeros(5), np.array([3, 1, 2, 4, 0]), np.array([5, 5, 1, 9, 10]), 1, 6)
    assert [e.item for e in model.explain(newer, np.array([[5]]))[0][0].evidence] == [0, 4, 3]


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
    everyone = films.queries([0, 1, 2])
    expected = model.score(everyone)
    monkeypatch.setattr(semantic_module, "BLOCK_ELEMENTS", 4 * films.n_items)  # 4 history rows a block
    np.testing.assert_allclose(model.score(everyone), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_new_events_need_no_update(films: Films, name: str) -> None:
    """Nothing is learned per user: the query's history is the profile. A horror film appended to
    the kids' fan's history (newest, recency-weighted) pulls horror into the list; a list of one
    kids film nobody was fitted on gets kids films."""
    model = films.fit(name, half_life=1.0)
    user = films.queries([0])
    before, _ = model.recommend(user, k=10)
    new = int(films.horror[25])
    longer = HistoryBatch.from_lists([[*user.row(0), new]], films.n_items)
    after, _ = model.recommend(longer, k=10)
    assert new not in after[0]
    assert len(set(after[0]) & set(films.horror)) > len(set(before[0]) & set(films.horror))
    items, _ = model.recommend(HistoryBatch.from_lists([[int(films.kids[50])]], films.n_items), k=5)
    assert set(items[0]) <= set(films.kids)
    with pytest.raises(ConfigError, match="catalogue"):
        model.score(HistoryBatch.from_lists([[0]], films.n_items + 1))
