"""Contract every model passes: known-answer fixture, API shapes, exclusion, save/load, atomic save."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models import MODELS, NotFittedError, Recommender, make_model
from longtail.models import artifact as artifact_module

CF_MODELS = ["itemknn", "als", "ease"]
TEXT_MODELS = [name for name, cls in MODELS.items() if cls.needs_embeddings]
FAST_PARAMS = {"als": {"factors": 8, "iterations": 30, "regularization": 0.01}, "ease": {"l2": 1.0}}
# neural: tiny tensors run fastest on one thread (OpenMP spinning costs seconds on a busy machine)
FAST_PARAMS |= {name: {"dim": 16, "num_threads": 1} for name in MODELS if name.startswith("neural")}


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
    return Interactions(users, items, np.zeros(len(users), np.int64), n_users, n_items)


def block_embeddings(n_items: int = 20, dim: int = 8) -> np.ndarray:
    """Item "texts" that know the communities: items 0..9 near one direction, 10..19 near another
    (unit rows, fixed noise), for the models that read item embeddings."""
    base = np.zeros((n_items, dim), np.float32)
    base[: n_items // 2, 0] = 1.0
    base[n_items // 2 :, 1] = 1.0
    vectors = base + 0.2 * np.random.default_rng(0).standard_normal((n_items, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fitted(name: str, data: Interactions | None = None) -> Recommender:
    model = make_model(name, **FAST_PARAMS.get(name, {}))
    vectors = block_embeddings() if model.needs_embeddings else None
    return model.fit(data or blocks(), item_embeddings=vectors)


@pytest.mark.parametrize("name", CF_MODELS + TEXT_MODELS)
def test_withheld_cell_comes_first(name: str) -> None:
    items, _ = fitted(name).recommend([0], k=3)
    assert items[0, 0] == 0  # the only unseen item of user 0's community


@pytest.mark.parametrize("name", list(MODELS))
def test_recommend_shapes_sorted_and_excludes_history(name: str) -> None:
    data = blocks()
    model = fitted(name, data)
    items, scores = model.recommend(np.arange(40), k=15)
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


@pytest.mark.parametrize("name", list(MODELS))
def test_score_matches_recommend(name: str) -> None:
    model = fitted(name)
    full = model.score([3, 25])
    assert full.shape == (2, 20)
    part = model.score([3, 25], item_ids=[1, 12])
    np.testing.assert_array_equal(part, full[:, [1, 12]])
    items, scores = model.recommend([3], k=5, exclude_seen=False)
    np.testing.assert_allclose(scores[0], full[0, items[0]], rtol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_save_load_identical(name: str, tmp_path) -> None:
    model = fitted(name)
    model.save(tmp_path / "model")
    loaded = Recommender.load(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    a = model.recommend(np.arange(40), k=10)
    b = loaded.recommend(np.arange(40), k=10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_crash_mid_save_keeps_previous_artifact(tmp_path, monkeypatch) -> None:
    old = fitted("itemknn")
    old.save(tmp_path / "model")
    expected = old.recommend(np.arange(40), k=5)[0]
    new = make_model("itemknn", k=1).fit(blocks())

    def exploding_savez(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(artifact_module.np, "savez", exploding_savez)
    with pytest.raises(OSError):
        new.save(tmp_path / "model")
    monkeypatch.undo()
    loaded = Recommender.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.recommend(np.arange(40), k=5)[0], expected)
    # no half-written version directory is left behind
    assert len([p for p in tmp_path.iterdir() if ".v-" in p.name]) == 1


def test_corrupted_artifact_is_refused(tmp_path) -> None:
    fitted("ease").save(tmp_path / "m")
    target = (tmp_path / "m" / "arrays.npz").resolve()
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(artifact_module.ArtifactError, match="checksum"):
        Recommender.load(tmp_path / "m")


def test_resave_replaces_and_cleans_old_version(tmp_path) -> None:
    fitted("pop").save(tmp_path / "m")
    first = (tmp_path / "m").resolve()
    fitted("pop").save(tmp_path / "m")
    assert (tmp_path / "m").resolve() != first and not first.exists()


def test_unfitted_and_bad_params() -> None:
    with pytest.raises(NotFittedError):
        make_model("als").recommend([0])
    with pytest.raises(ConfigError):
        make_model("als", weighting="tfidf").fit(blocks())
    with pytest.raises(ConfigError):
        make_model("nope")
    with pytest.raises(ConfigError, match="max_items"):
        make_model("ease", max_items=5).fit(blocks())


def test_history_rows_fold_in_new_user() -> None:
    """A user unseen at fit time is scored from the history rows passed in (one shared path)."""
    data = blocks()
    model = fitted("als", data)
    history = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 0], [11, 12, 13])), shape=(1, 20))
    items, _ = model.recommend([0], k=3, history=history)
    assert set(items[0]) <= set(range(10, 20))


def test_popularity_ties_by_item_id_and_partial_fit() -> None:
    data = Interactions(np.array([0, 1, 0], np.int32), np.array([3, 1, 1], np.int32),
                        np.zeros(3, np.int64), 3, 5)
    model = make_model("pop").fit(data)
    items, _ = model.recommend([2], k=5)
    assert items[0].tolist() == [1, 3, 0, 2, 4]  # 2 > 1 > 0 = 0 = 0, ties by index
    model.partial_fit(Interactions(np.array([1], np.int32), np.array([4], np.int32),
                                   np.zeros(1, np.int64), 3, 5))
    assert model.recommend([2], k=2)[0][0].tolist() == [1, 3]
    with pytest.raises(NotImplementedError):
        fitted("ease").partial_fit(data)
