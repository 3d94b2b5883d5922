"""Fusion of fitted models on real data: the ``movies`` slice of ml-latest-small for the score rules,
amazon-digital-music-sample (../shared) for tuning the weights on valid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_helpers import MovieSlice

from longtail.common.scores import UNSCORED, scored_mask
from longtail.data import load_dataset
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.eval.tuning import tune
from longtail.models import ItemKNN, Popularity, make_model
from longtail.models.fusion import FusionRecommender, simplex

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PARAMS = {"ease__l2": 200.0, "itemknn__k": 50, "als__factors": 16, "als__iterations": 5}


def fused(X: Interactions, spec: str, **params: object) -> FusionRecommender:
    parts = make_model(spec).parts()
    nested = {k: v for k, v in PARAMS.items() if k.split("__")[0] in parts}
    return make_model(spec, **nested, **params).fit(X)


def test_spec_names_the_parts_and_rejects_bad_ones() -> None:
    model = make_model("fusion(ease+itemknn+als)")
    assert isinstance(model, FusionRecommender) and tuple(model.parts()) == ("ease", "itemknn", "als")
    assert make_model("fusion(ease + itemknn + als)").__class__ is type(model)  # one class per spec
    assert len(type(model).param_grid["weights"]) == len(simplex(3)) == 15
    for bad in ("fusion(ease)", "fusion(ease+ease)", "fusion(ease+nope)", "fusion(ease+)"):
        with pytest.raises(ConfigError):
            make_model(bad)
    with pytest.raises(ConfigError, match="weights"):
        fused(Interactions(np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int64), 1, 3),
              "fusion(pop+itemknn)", weights=[1.0])


def test_a_single_weight_keeps_that_parts_ranking(movies: MovieSlice) -> None:
    batch = movies.queries(movies.users[:40])
    alone = make_model("ease", l2=PARAMS["ease__l2"]).fit(movies.X).recommend(batch, k=20)[0]
    for method in ("weighted", "rrf"):
        model = fused(movies.X, "fusion(ease+itemknn)", method=method, weights=[1.0, 0.0])
        np.testing.assert_array_equal(model.recommend(batch, k=20)[0], alone)


def test_rrf_is_the_sum_of_reciprocal_ranks(movies: MovieSlice) -> None:
    model = fused(movies.X, "fusion(ease+itemknn)", method="rrf", weights=[0.25, 0.75], rrf_k=10.0)
    batch, n_items = movies.queries(movies.users[:5]), movies.X.n_items
    expected = np.zeros((5, n_items))
    nobody = np.ones((5, n_items), dtype=bool)
    for w, part in zip((0.25, 0.75), model.parts_, strict=True):
        s = part.score(batch)
        nobody &= ~scored_mask(s)
        s = np.where(scored_mask(s), s, -np.inf)
        for u in range(5):  # ranks by a plain loop: best first, ties by smaller index
            order = sorted(range(n_items), key=lambda i: (-s[u, i], i))
            rank = np.empty(n_items)
            rank[order] = np.arange(n_items)
            expected[u] += w / (10.0 + 1.0 + rank)
    expected[nobody] = UNSCORED  # no part has an opinion: the fusion has none either
    scores = model.score(batch)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    # explain: each part's term of that sum
    items, _ = model.recommend(batch, k=3)
    for u, row in enumerate(model.explain(batch, items)):
        for why in row:
            assert set(why.detail) == {"ease", "itemknn"}
            assert sum(why.detail.values()) == pytest.approx(scores[u, why.item], rel=1e-5)


def test_weighted_sum_of_standardised_scores_and_unscored_items(movies: MovieSlice) -> None:
    model = fused(movies.X, "fusion(als+itemknn)", weights=[0.5, 0.5])
    batch = movies.queries(movies.users[:20])
    parts = [np.asarray(p.score(batch)) for p in model.parts_]
    nobody = np.all([~scored_mask(p) for p in parts], axis=0)
    assert nobody.any()  # items no user of the slice liked: neither CF part can score them
    scores = model.score(batch)
    assert np.all(scores[nobody] == UNSCORED) and np.all(scored_mask(scores[~nobody]))
    # where both parts score an item, the fused score is the mean of the two per-user z-scores
    both = np.all([scored_mask(p) for p in parts], axis=0)
    u, i = np.argwhere(both)[len(np.argwhere(both)) // 2]
    z = []
    for p in parts:
        scored = scored_mask(p[u])
        z.append((p[u, i] - p[u][scored].mean()) / p[u][scored].std())
    assert scores[u, i] == pytest.approx(0.5 * z[0] + 0.5 * z[1], rel=1e-3, abs=1e-4)
    why = model.explain(batch[[u]], np.array([[i]]))[0][0]
    assert why.kind == "parts" and sum(why.detail.values()) == pytest.approx(scores[u, i], rel=1e-3, abs=1e-4)


def test_weights_are_tuned_on_valid_fitting_each_part_once_for_the_grid(count_fits) -> None:
    folder = SHARED / "amazon-digital-music-sample"
    if not folder.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    ds = load_dataset(folder)
    fits = count_fits(Popularity, ItemKNN)
    alone = tune("itemknn", ds)
    fits.clear()
    result = tune("fusion(pop+itemknn)", ds, cache={"itemknn": alone})
    assert {k: v for k, v in result.best_params.items() if k.startswith("itemknn__")} == {
        f"itemknn__{k}": v for k, v in alone.best_params.items()}
    assert len(result.trials) == 2 * len(simplex(2))  # both methods x the weight simplex
    assert fits == {"pop": 2, "itemknn": 1}  # pop: tuned alone (no grid) + once for the fusion grid
    singles = [t["valid_ndcg@20"] for t in result.trials if max(t["params"]["weights"]) == 1.0]
    assert result.best_value >= max(singles) and len(singles) == 4
