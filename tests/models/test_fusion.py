"""Fusion of fitted models on real data: a ml-latest-small slice (the shipped dataset) for the score
rules, amazon-digital-music-sample (../shared) for tuning the weights on valid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longtail.data import load_dataset
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.eval.tuning import tune
from longtail.models import make_model
from longtail.models.base import UNSCORED, Recommender
from longtail.models.fusion import FusionRecommender, simplex

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
PARAMS = {"ease": {"l2": 200.0}, "itemknn": {"k": 50, "shrink": 10.0}, "als": {"factors": 16, "iterations": 5}}


@pytest.fixture(scope="module")
def X() -> Interactions:
    tv = load_dataset("ml-latest-small").train_valid
    keep = tv.users < 150
    return Interactions(tv.users[keep], tv.items[keep], tv.timestamps[keep], 150, tv.n_items)


def fused(X: Interactions, spec: str, **params: object) -> FusionRecommender:
    parts = make_model(spec).parts
    model = make_model(spec, part_params={p: PARAMS.get(p, {}) for p in parts}, **params)
    return model.fit(X)


def test_spec_names_the_parts_and_rejects_bad_ones() -> None:
    model = make_model("fusion(ease+itemknn+als)")
    assert isinstance(model, FusionRecommender) and model.parts == ("ease", "itemknn", "als")
    assert make_model("fusion(ease+itemknn+als)").__class__ is type(model)  # one class per spec
    assert len(type(model).param_grid["weights"]) == len(simplex(3)) == 15
    for bad in ("fusion(ease)", "fusion(ease+ease)", "fusion(ease+nope)", "fusion(ease+)"):
        with pytest.raises(ConfigError):
            make_model(bad)
    with pytest.raises(ConfigError, match="weights"):
        fused(Interactions(np.zeros(1, np.int32), np.zeros(1, np.int32), np.zeros(1, np.int64), 1, 3),
              "fusion(pop+itemknn)", weights=[1.0])


def test_a_single_weight_keeps_that_parts_ranking(X: Interactions) -> None:
    users = np.arange(40)
    alone = make_model("ease", **PARAMS["ease"]).fit(X).recommend(users, k=20)[0]
    for method in ("weighted", "rrf"):
        model = fused(X, "fusion(ease+itemknn)", method=method, weights=[1.0, 0.0])
        np.testing.assert_array_equal(model.recommend(users, k=20)[0], alone)


def test_rrf_is_the_sum_of_reciprocal_ranks(X: Interactions) -> None:
    model = fused(X, "fusion(ease+itemknn)", method="rrf", weights=[0.25, 0.75], rrf_k=10.0)
    users = np.arange(5)
    rows = X.csr[users]
    expected = np.zeros((5, X.n_items))
    nobody = np.ones((5, X.n_items), dtype=bool)
    for w, part in zip((0.25, 0.75), model.parts_, strict=True):
        s = part._score(users, rows)
        nobody &= s <= UNSCORED / 2
        s = np.where(s > UNSCORED / 2, s, -np.inf)
        for u in range(5):  # ranks by a plain loop: best first, ties by smaller index
            order = sorted(range(X.n_items), key=lambda i: (-s[u, i], i))
            rank = np.empty(X.n_items)
            rank[order] = np.arange(X.n_items)
            expected[u] += w / (10.0 + 1.0 + rank)
    expected[nobody] = UNSCORED  # no part has an opinion: the fusion has none either
    np.testing.assert_allclose(model.score(users), expected, rtol=1e-5)


def test_weighted_sum_of_standardised_scores_and_unscored_items(X: Interactions) -> None:
    model = fused(X, "fusion(als+itemknn)", weights=[0.5, 0.5])
    users = np.arange(20)
    rows = X.csr[users]
    parts = [np.asarray(p._score(users, rows)) for p in model.parts_]
    nobody = np.all([p <= UNSCORED / 2 for p in parts], axis=0)
    assert nobody.any()  # items no user of the slice liked: neither CF part can score them
    scores = model.score(users)
    assert np.all(scores[nobody] == UNSCORED) and np.all(scores[~nobody] > UNSCORED / 2)
    # where both parts score an item, the fused score is the mean of the two per-user z-scores
    both = ~np.any([p <= UNSCORED / 2 for p in parts], axis=0)
    u, i = np.argwhere(both)[len(np.argwhere(both)) // 2]
    z = []
    for p in parts:
        scored = p[u] > UNSCORED / 2
        z.append((p[u, i] - p[u][scored].mean()) / p[u][scored].std())
    assert scores[u, i] == pytest.approx(0.5 * z[0] + 0.5 * z[1], rel=1e-3, abs=1e-4)


def test_save_load_gives_identical_recommendations(X: Interactions, tmp_path: Path) -> None:
    model = fused(X, "fusion(ease+itemknn+pop)", method="rrf", weights=[0.5, 0.25, 0.25])
    loaded = Recommender.load(model.save(tmp_path / "fusion"))
    assert isinstance(loaded, FusionRecommender) and loaded.name == "fusion(ease+itemknn+pop)"
    for a, b in zip(model.recommend(np.arange(150), k=20), loaded.recommend(np.arange(150), k=20), strict=True):
        np.testing.assert_array_equal(a, b)


def test_weights_are_tuned_on_valid_without_refitting_the_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = SHARED / "amazon-digital-music-sample"
    if not folder.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    ds = load_dataset(folder)
    from longtail.models import registry

    built: list[str] = []
    make = registry.make_model

    def spying_make(name, **params):  # type: ignore[no-untyped-def]
        built.append(name)
        return make(name, **params)

    monkeypatch.setattr(registry, "make_model", spying_make)  # what fusion builds its parts with
    result = tune("fusion(pop+itemknn)", ds, cache={})
    assert result.best_params["part_params"]["itemknn"] == tune("itemknn", ds).best_params
    assert len(result.trials) == 2 * len(simplex(2))  # both methods x the weight simplex
    assert built == ["pop", "itemknn"]  # one fit per part for the whole grid of 10 points
    singles = [t["valid_ndcg@20"] for t in result.trials if max(t["params"]["weights"]) == 1.0]
    assert result.best_value >= max(singles) and len(singles) == 4
