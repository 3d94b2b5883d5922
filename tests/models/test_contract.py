"""Contract every model passes on a known-answer fixture: API shapes, exclusion, the withheld cell,
atomic and checksummed saves, parameter checks, and popularity's incremental counts."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import ALL_MODELS, fit, queries

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models import NotFittedError, Recommender, load_model, make_model, save_model
from longtail.models import artifact as artifact_module

CF_MODELS = ["itemknn", "als", "ease"]
TEXT_MODELS = [name for name in ALL_MODELS if make_model(name).needs_embeddings]


def blocks(n_users: int = 40, n_items: int = 20) -> Interactions:
    """Two communities: users 0..19 like items 0..9, users 20..39 like items 10..19. User 0 has
    not seen item 0 — the withheld cell that a CF model must return first."""
    rows, cols = [], []
    for u in range(n_users):
        group = range(0, 10) if u < n_users // 2 else range(10, 20)
        for i in group:
            if (u, i) != (0, 0):
                rows.append(u)
                cols.append(i)
    users, items = np.asarray(rows, np.int32), np.asarray(cols, np.int32)
    return Interactions(users, items, np.arange(len(users), dtype=np.int64), n_users, n_items)


def block_embeddings(n_items: int = 20, dim: int = 8) -> np.ndarray:
    """Item "texts" that know the communities: items 0..9 near one direction, 10..19 near another
    (unit rows, fixed noise), for the models that read item embeddings."""
    base = np.zeros((n_items, dim), np.float32)
    base[: n_items // 2, 0] = 1.0
    base[n_items // 2 :, 1] = 1.0
    vectors = base + 0.2 * np.random.default_rng(0).standard_normal((n_items, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fitted(name: str, data: Interactions | None = None) -> Recommender:
    return fit(name, data or blocks(), block_embeddings())


@pytest.mark.parametrize("name", CF_MODELS + TEXT_MODELS)
def test_withheld_cell_comes_first(name: str) -> None:
    items, _ = fitted(name).recommend(queries(blocks(), [0]), k=3)
    assert items[0, 0] == 0  # the only unseen item of user 0's community


@pytest.mark.parametrize("name", ALL_MODELS)
def test_recommend_shapes_sorted_and_excludes_history(name: str) -> None:
    data = blocks()
    items, scores = fitted(name, data).recommend(queries(data), k=15)
    assert items.shape == scores.shape == (40, 15)
    assert items.dtype == np.int32 and scores.dtype == np.float32
    finite = np.where(items >= 0, scores, np.float32(-3e38))  # padding slots hold -inf
    assert np.all(np.diff(finite, axis=1) <= 0)
    assert np.all(np.isneginf(scores[items < 0]))
    seen = data.csr
    for u in range(40):
        assert not set(items[u][items[u] >= 0]) & set(seen[u].indices)
        assert len(set(items[u][items[u] >= 0])) == (items[u] >= 0).sum()
    # only 10 or 11 unseen items per user: the rest of the list is padding
    assert (items[5] >= 0).sum() == 10 and (items[0] >= 0).sum() == 11


@pytest.mark.parametrize("name", ALL_MODELS)
def test_score_matches_recommend_and_candidates(name: str) -> None:
    data = blocks()
    model = fitted(name, data)
    batch = queries(data, [3, 25])
    full = model.score(batch)
    assert full.shape == (2, 20) and full.dtype == np.float32
    np.testing.assert_array_equal(model.score(batch, item_ids=[1, 12]), full[:, [1, 12]])
    items, scores = model.recommend(batch[[0]], k=5, exclude_seen=False)
    np.testing.assert_allclose(scores[0], full[0, items[0]], rtol=1e-6)
    allowed = np.array([1, 4, 12, 15])
    picked, _ = model.recommend(batch, k=5, exclude_seen=False, candidates=allowed)
    for row in range(2):
        expected = sorted(allowed, key=lambda i: (-full[row, i], i))  # best first, ties by index
        assert picked[row].tolist() == [*expected, -1]


def test_crash_mid_save_keeps_previous_artifact(tmp_path, monkeypatch) -> None:
    old = fitted("itemknn")
    save_model(old, tmp_path / "model")
    expected = old.recommend(queries(blocks()), k=5)[0]
    new = make_model("itemknn", k=1).fit(blocks())

    def exploding_savez(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(artifact_module.np, "savez", exploding_savez)
    with pytest.raises(OSError):
        save_model(new, tmp_path / "model")
    monkeypatch.undo()
    loaded = load_model(tmp_path / "model")
    np.testing.assert_array_equal(loaded.recommend(queries(blocks()), k=5)[0], expected)
    # no half-written version directory is left behind
    assert len([p for p in tmp_path.iterdir() if ".v-" in p.name]) == 1


def test_corrupted_artifact_is_refused(tmp_path) -> None:
    save_model(fitted("ease"), tmp_path / "m")
    target = (tmp_path / "m" / "arrays.npz").resolve()
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(artifact_module.ArtifactError, match="checksum"):
        load_model(tmp_path / "m")


def test_resave_replaces_and_cleans_old_version(tmp_path) -> None:
    """The newest KEEP_VERSIONS versions stay (a replica may still serve the previous one), older go."""
    save_model(fitted("pop"), tmp_path / "m")
    first = (tmp_path / "m").resolve()
    for _ in range(artifact_module.KEEP_VERSIONS - 1):
        save_model(fitted("pop"), tmp_path / "m")
        assert (tmp_path / "m").resolve() != first and first.exists()
    save_model(fitted("pop"), tmp_path / "m")
    assert not first.exists()


def test_unfitted_and_bad_params_and_bad_queries() -> None:
    with pytest.raises(NotFittedError):
        make_model("als").recommend(HistoryBatch.from_lists([[0]], 20))
    with pytest.raises(NotFittedError):
        save_model(make_model("pop"), "never-written")
    with pytest.raises(ConfigError):
        make_model("als", weighting="tfidf").fit(blocks())
    with pytest.raises(ConfigError):
        make_model("nope")
    with pytest.raises(ConfigError, match="max_items"):
        make_model("ease", max_items=5).fit(blocks())
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_model("ease", lambda_=3)
    model = fitted("ease")
    with pytest.raises(TypeError, match="HistoryBatch"):
        model.score([0, 1])  # user indices are no query: a model never looks a user up
    with pytest.raises(ConfigError, match="with_catalogue"):
        model.score(HistoryBatch.from_lists([[0]], 21))


def test_a_history_nobody_was_fitted_on_is_scored_from_its_items() -> None:
    """A list of items is a query like any user's: three items of the second community."""
    model = fitted("als")
    items, _ = model.recommend(HistoryBatch.from_lists([[11, 12, 13]], 20), k=3)
    assert set(items[0]) <= set(range(10, 20))


def test_popularity_ties_by_item_id() -> None:
    data = Interactions(np.array([0, 1, 0], np.int32), np.array([3, 1, 1], np.int32),
                        np.zeros(3, np.int64), 3, 5)
    items, _ = make_model("pop").fit(data).recommend(queries(data, [2]), k=5)
    assert items[0].tolist() == [1, 3, 0, 2, 4]  # 2 > 1 > 0 = 0 = 0, ties by index


def test_popularity_partial_fit_moves_items_by_their_new_counts() -> None:
    """Counts add up: an item that receives many new events rises to the top, one that receives
    none keeps its count and falls behind, and the result equals a fit on all the events."""
    data = blocks()
    model = make_model("pop").fit(data)
    everyone = queries(data, [0, 39])
    before, _ = model.recommend(everyone, k=20, exclude_seen=False)
    assert before[0, 0] == 1  # item 0 lost user 0's event: 19 events against 20
    last = int(before[0, -1])
    new = Interactions(np.arange(25, dtype=np.int32), np.full(25, 19, np.int32),
                       np.full(25, 10**9, np.int64), 40, 20)
    after, scores = model.partial_fit(new).recommend(everyone, k=20, exclude_seen=False)
    assert after[0, 0] == 19 and scores[0, 0] == 45.0  # 20 + 25
    assert after[0, 1:].tolist() == [i for i in before[0] if i != 19]  # the others keep their order
    assert last != 19 and after[0, -1] == last
    np.testing.assert_array_equal(model.score(everyone), make_model("pop").fit(data + new).score(everyone))
