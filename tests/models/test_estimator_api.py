"""The estimator API every model shares, on real interactions (the ``movies`` slice of
ml-latest-small, real text vectors): a history's scores do not depend on the batch it comes in,
``explain`` reports the model's own evidence from the history, save/load gives the same model back,
nested parameters round-trip, and ``FitCache`` fits each part of a grid once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_helpers import ALL_MODELS, FUSION, MovieSlice

from longtail.common.scores import scored_mask
from longtail.errors import ConfigError
from longtail.models import (
    EASE,
    FitCache,
    Recommender,
    SemanticAttentionRecommender,
    build,
    load_model,
    make_model,
    save_model,
)
from longtail.models.explain import KINDS
from longtail.models.fusion import METHODS, simplex
from longtail.models.hybrid import HybridRecommender

KIND = {"pop": "popular", "hybrid": "parts", "longtail": "parts", FUSION: "parts"}  # every other model: "history"
BATCH = 12  # users per test batch


class Fitted(dict):
    """Each model fitted on the slice once, on first use."""

    def __init__(self, movies: MovieSlice) -> None:
        super().__init__()
        self.movies = movies

    def __missing__(self, name: str) -> Recommender:
        self[name] = self.movies.fit(name)
        return self[name]


@pytest.fixture(scope="module")
def fitted(movies: MovieSlice) -> Fitted:
    return Fitted(movies)


@pytest.mark.parametrize("name", [*ALL_MODELS, "als-bm25"])
def test_a_history_scores_the_same_alone_or_in_any_batch(name: str, movies: MovieSlice, fitted: Fitted) -> None:
    model = movies.fit("als", weighting="bm25") if name == "als-bm25" else fitted[name]
    idle = np.setdiff1d(np.arange(movies.X.n_users), movies.users)[:1]  # no event in the slice
    batch = movies.queries(np.concatenate([movies.users[:6], idle, movies.users[6 : BATCH - 1]]))
    assert batch.lengths[6] == 0 and (np.delete(batch.lengths, 6) > 0).all()
    together = model.score(batch)
    assert not np.isnan(together).any()
    alone = np.concatenate([model.score(batch[[r]]) for r in range(BATCH)])
    backwards = model.score(batch[::-1])[::-1]
    scale = np.abs(np.where(scored_mask(together), together, 0)).max()
    for other in (alone, backwards):  # float noise of matrix products of other shapes only
        np.testing.assert_allclose(other, together, rtol=1e-5, atol=1e-6 * scale)
    if name != "pop":  # the one model that gives everyone the same list
        assert not np.allclose(together[0], together[1])  # two different histories, two score rows


@pytest.mark.parametrize("name", ALL_MODELS)
def test_explain_reports_evidence_from_the_history(name: str, movies: MovieSlice, fitted: Fitted) -> None:
    model = fitted[name]
    batch = movies.queries(movies.users[:4])
    items, _ = model.recommend(batch, k=5)
    items[3, 2:] = -1  # empty slots are skipped
    explanations = model.explain(batch, items)
    assert [len(row) for row in explanations] == [5, 5, 5, 2]
    with_evidence = 0
    for r, row in enumerate(explanations):
        history = set(batch.row(r).tolist())
        for slot, why in enumerate(row):
            assert why.item == items[r, slot] and why.kind == KIND.get(name, "history") and why.kind in KINDS
            weights = [e.weight for e in why.evidence]
            assert {e.item for e in why.evidence} <= history  # evidence is the user's own items
            assert all(w > 0 for w in weights) and weights == sorted(weights, reverse=True)
            with_evidence += bool(why.evidence)
    if name == "pop":
        assert all(why.detail["count"] == movies.counts[why.item] for row in explanations for why in row)
    else:
        assert with_evidence >= 15  # history-driven: nearly every item has history evidence


@pytest.mark.parametrize("name", ["ease", "itemknn"])
def test_linear_models_explain_with_the_terms_of_their_score(name: str, movies: MovieSlice, fitted: Fitted) -> None:
    """score(u, i) = sum over the history h of W[h, i]: the evidence is the largest terms."""
    model = fitted[name]
    user = movies.queries(movies.users[[7]])
    items, scores = model.recommend(user, k=3)
    history = user.row(0)
    for item, score in zip(items[0], scores[0], strict=True):
        if name == "ease":
            rows = np.searchsorted(model.warm_items_, history)
            terms = model.weights_[rows, np.searchsorted(model.warm_items_, item)]
        else:
            terms = np.asarray(model.similarity_[history, item].todense()).ravel()
        assert terms.sum() == pytest.approx(score, rel=1e-4)
        order = np.lexsort((history, -terms))[:3]
        why = model.explain(user, np.array([[item]]))[0][0]
        assert [(e.item, e.weight) for e in why.evidence] == [
            (int(history[j]), pytest.approx(float(terms[j]), rel=1e-5)) for j in order if terms[j] > 0]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_save_load_gives_the_same_model(name: str, movies: MovieSlice, fitted: Fitted, tmp_path: Path) -> None:
    model = fitted[name]
    loaded = load_model(save_model(model, tmp_path / "model"))
    assert type(loaded).__name__ == type(model).__name__ and loaded.name == model.name
    assert loaded.spec() == model.spec()
    batch = movies.queries(movies.users[:40])
    np.testing.assert_array_equal(loaded.score(batch), model.score(batch))
    items, _ = model.recommend(batch[:3], k=3)
    assert loaded.explain(batch[:3], items) == model.explain(batch[:3], items)


def test_nested_parameters_round_trip() -> None:
    hybrid = HybridRecommender(cf=EASE(l2=50.0), semantic=SemanticAttentionRecommender(temperature=0.2))
    deep = hybrid.get_params(deep=True)
    assert deep["cf__l2"] == 50.0 and deep["semantic__temperature"] == 0.2 and deep["tail_weight"] == 1.0
    assert "cf__l2" not in hybrid.get_params()
    hybrid.set_params(cf__l2=7.0, semantic__half_life=5.0, tail_weight=3.0)
    assert (hybrid.cf.l2, hybrid.semantic.half_life, hybrid.tail_weight) == (7.0, 5.0, 3.0)
    copy = hybrid.clone()
    assert copy.cf is not hybrid.cf and copy.get_params(deep=True)["cf__l2"] == 7.0
    rebuilt = build(hybrid.spec())
    assert rebuilt.spec() == hybrid.spec() and rebuilt.get_params(deep=True)["semantic__half_life"] == 5.0

    fusion = make_model(FUSION, method="rrf", **{"ease__l2": 50.0, "semantic-attn__temperature": None})
    deep = fusion.get_params(deep=True)
    assert deep["ease__l2"] == 50.0 and deep["semantic-attn__temperature"] is None and "members" not in deep
    again = make_model(FUSION).set_params(**deep)
    assert again.get_params(deep=True) == deep and again.spec() == fusion.spec()
    assert build(fusion.spec()).get_params(deep=True) == deep
    with pytest.raises(ConfigError, match="ease: unknown parameter 'nope'"):
        fusion.set_params(ease__nope=1)
    with pytest.raises(ConfigError, match="unknown parameter"):
        fusion.set_params(als__factors=8)  # not a part of this fusion


def test_fit_cache_fits_each_part_once_for_a_whole_grid(movies: MovieSlice, count_fits) -> None:
    fits = count_fits(EASE, SemanticAttentionRecommender)
    cache = FitCache()
    grid = [(method, weights) for method in METHODS for weights in simplex(2)]
    scores = []
    for method, weights in grid:
        model = make_model(FUSION, method=method, weights=list(weights), ease__l2=10.0)
        scores.append(model.fit(movies.X, item_embeddings=movies.vectors, cache=cache).score(movies.queries()[:5]))
    assert fits == {"ease": 1, "semantic-attn": 1} and cache.hits == 2 * len(grid) - 2
    alone = make_model(FUSION, method=grid[3][0], weights=list(grid[3][1]), ease__l2=10.0)
    np.testing.assert_array_equal(alone.fit(movies.X, item_embeddings=movies.vectors).score(movies.queries()[:5]),
                                  scores[3])  # a cached part scores as a fresh fit does
    assert fits == {"ease": 2, "semantic-attn": 2}  # no cache: every part is fitted
    make_model(FUSION, ease__l2=20.0).fit(movies.X, item_embeddings=movies.vectors, cache=cache)
    assert fits == {"ease": 3, "semantic-attn": 2}  # other parameters: that part only is refitted
