"""The order-aware user tower of ``neural`` (``user_tower="transformer"``) on the ml-latest-small slice."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.data.history import HistoryBatch
from longtail.errors import ConfigError
from longtail.models import load_model, make_model, save_model
from model_helpers import MovieSlice

PARAMS = {"user_tower": "transformer", "dim": 16, "heads": 2, "layers": 1, "epochs": 2, "max_history": 20,
          "num_threads": 1, "loss": "softmax"}


@pytest.fixture(scope="module")
def seq(movies: MovieSlice):
    return make_model("neural", **PARAMS).fit(movies.X, item_embeddings=movies.vectors)


def long_history_user(movies: MovieSlice) -> int:
    """The first user with at least 10 events in the slice (a rule, not an id)."""
    lengths = movies.queries().lengths
    return int(movies.users[int(np.flatnonzero(lengths >= 10)[0])])


def test_order_matters_to_the_transformer_tower(movies: MovieSlice, seq) -> None:
    user = long_history_user(movies)
    query = movies.queries([user])
    items = query.row(0)
    reversed_query = HistoryBatch.from_lists([items[::-1].tolist()], n_items=movies.X.n_items)
    same = HistoryBatch.from_lists([items.tolist()], n_items=movies.X.n_items)
    np.testing.assert_allclose(seq.score(same), seq.score(query), rtol=1e-5, atol=1e-5)
    assert np.abs(seq.score(reversed_query) - seq.score(query)).max() > 1e-3


def test_occlusion_explanations_are_faithful(movies: MovieSlice, seq) -> None:
    """Removing the history item an explanation weighs most lowers that item's score by exactly
    the weight reported (the explanation is the occlusion itself)."""
    user = long_history_user(movies)
    query = movies.queries([user])
    items, _ = seq.recommend(query, k=3)
    for item in items[0]:
        why = seq.explain(query, np.asarray([[item]]))[0][0]
        top = why.evidence[0]
        history = [i for i in query.row(0).tolist() if i != top.item]
        without = HistoryBatch.from_lists([history], n_items=movies.X.n_items)
        drop = float(seq.score(query)[0, item] - seq.score(without)[0, item])
        assert top.weight > 0 and drop == pytest.approx(top.weight, rel=1e-3, abs=1e-4)


def test_save_load_keeps_the_transformer(movies: MovieSlice, seq, tmp_path) -> None:
    loaded = load_model(save_model(seq, tmp_path / "seq"))
    query = movies.queries(movies.users[:5])
    np.testing.assert_allclose(loaded.score(query), seq.score(query), rtol=1e-5, atol=1e-6)


def test_bad_tower_settings_are_refused(movies: MovieSlice) -> None:
    with pytest.raises(ConfigError, match="user_tower"):
        make_model("neural", user_tower="lstm").fit(movies.X, item_embeddings=movies.vectors)
    with pytest.raises(ConfigError, match="heads"):
        make_model("neural", user_tower="transformer", dim=10, heads=3).fit(movies.X, item_embeddings=movies.vectors)
