"""VectorIndex: exact equals brute force, add/remove without rebuild, HNSW/IVF recall, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longtail.errors import ConfigError, LongtailError
from longtail.text import VectorIndex
from longtail.text import index as index_module


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int = 32, clusters: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return unit(centres[rng.integers(clusters, size=n)] + 0.6 * rng.normal(size=(n, dim)))


def brute_force(queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int,
                exclude: list[set[int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ vectors.T  # (nq, n)
    out_ids, out_scores = [], []
    for q, row in enumerate(scores):
        order = [j for j in np.argsort(-row, kind="stable") if not exclude or ids[j] not in exclude[q]]
        out_ids.append(ids[order[:k]])
        out_scores.append(row[order[:k]])
    return np.asarray(out_ids), np.asarray(out_scores, dtype=np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors = clustered(2000)
    ids = np.random.default_rng(1).permutation(10_000)[:2000].astype(np.int64) * 7 + 3
    return ids, vectors, clustered(40, seed=2)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def test_exact_matches_numpy(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, queries = data
    index = VectorIndex(32)
    index.add(ids, vectors)
    found, scores = index.search(queries, 10)
    truth, truth_scores = brute_force(queries, ids, vectors, 10)
    assert found.dtype == np.int64 and scores.dtype == np.float32 and found.shape == (40, 10)
    np.testing.assert_allclose(scores, truth_scores, atol=1e-5)
    assert recall(found, truth) == 1.0
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_exclusions_shared_and_per_query(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, queries = data
    index = VectorIndex(32)
    index.add(ids, vectors)
    top, _ = index.search(queries, 5)
    per_query = [set(row[:3].tolist()) for row in top]
    found, _ = index.search(queries, 5, exclude=per_query)
    truth, _ = brute_force(queries, ids, vectors, 5, per_query)
    np.testing.assert_array_equal(found, truth)
    shared = set(top[0].tolist())
    found, _ = index.search(queries, 5, exclude=np.asarray(sorted(shared)))
    np.testing.assert_array_equal(found, brute_force(queries, ids, vectors, 5, [shared] * 40)[0])


@pytest.mark.parametrize("kind", ["exact", "fp16", "hnsw", "ivf"])
def test_add_remove_without_rebuild(kind: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, queries = data
    index = VectorIndex(32, kind, ef_search=200, nprobe=45)
    index.add(ids[:1500], vectors[:1500])
    index.add(ids[1500:], vectors[1500:])  # incremental add
    faiss_object = index._index
    removed = ids[::10]
    assert index.remove(removed) == len(removed)
    assert index.remove(removed) == 0  # already gone: ignored
    assert index._index is faiss_object  # no rebuild
    assert len(index) == 2000 - len(removed) and removed[0] not in index
    assert index.n_tombstones == (len(removed) if kind == "hnsw" else 0)
    found, _ = index.search(queries, 20)
    assert not np.isin(found, removed).any()
    keep = ~np.isin(ids, removed)
    truth, _ = brute_force(queries, ids[keep], vectors[keep], 20)
    assert recall(found, truth) >= (1.0 if kind == "exact" else 0.95)
    index.add(removed[:5], vectors[::10][:5])  # removed ids come back
    assert all(i in index for i in removed[:5])
    moved = unit(-vectors[:1])  # re-adding a present id replaces its vector
    index.add(ids[:1], moved)
    assert len(index) == 2000 - len(removed) + 5
    assert index.search(moved, 1)[0][0, 0] == ids[0]


def test_fp16_is_brute_force_to_half_precision(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, queries = data
    index = VectorIndex(32, "fp16")
    index.add(ids, vectors)
    found, scores = index.search(queries, 10)
    truth, truth_scores = brute_force(queries, ids, vectors, 10)
    np.testing.assert_allclose(scores, truth_scores, atol=2e-3)  # float16 keeps ~3 decimal digits
    assert recall(found, truth) >= 0.98  # only near-ties may swap
    assert index.faiss_index.sa_code_size() == 2 * 32  # two bytes a dimension: half of float32


def test_hnsw_rebuilds_past_the_tombstone_fraction(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, queries = data
    index = VectorIndex(32, "hnsw", rebuild_fraction=0.2)
    index.add(ids, vectors)
    index.remove(ids[:300])
    assert index.n_tombstones == 300
    index.remove(ids[300:500])  # 500 / 2000 > 0.2
    assert index.n_tombstones == 0 and index._index.ntotal == 1500
    found, _ = index.search(queries, 10)
    truth, _ = brute_force(queries, ids[500:], vectors[500:], 10)
    assert recall(found, truth) >= 0.95


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall(kind: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, queries = data
    index = VectorIndex(32, kind, ef_search=128, nprobe=16)
    index.add(ids, vectors)
    found, scores = index.search(queries, 10)
    truth, truth_scores = brute_force(queries, ids, vectors, 10)
    assert recall(found, truth) >= 0.95
    np.testing.assert_allclose(scores[:, 0], truth_scores[:, 0], atol=1e-4)  # inner products


def test_ivfpq_codes_are_small_and_a_wider_fetch_recovers_recall(
        data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """What docs/scaling.md relies on: pq_m bytes an item, and the exact top-10 inside a 5x fetch."""
    ids, vectors, queries = data
    index = VectorIndex(32, "ivfpq", nprobe=45, pq_m=8, pq_bits=8)
    index.add(ids, vectors)
    assert index.faiss_index.code_size == 8  # 8 one-byte codes vs 128 bytes of float32
    truth, _ = brute_force(queries, ids, vectors, 10)
    wide, _ = index.search(queries, 50)
    assert recall(wide, truth) >= 0.95
    index.remove(ids[:100])
    assert len(index) == 1900 and not np.isin(index.search(queries, 20)[0], ids[:100]).any()
    with pytest.raises(ConfigError, match="pq_m"):
        VectorIndex(32, "ivfpq", pq_m=7)
    with pytest.raises(ConfigError, match="at least 256"):
        VectorIndex(32, "ivfpq", pq_m=8).add(ids[:100], vectors[:100])


def test_short_results_are_padded() -> None:
    index = VectorIndex(4, "hnsw")
    vectors = unit(np.eye(4, dtype=np.float32)[:3])
    index.add([10, 11, 12], vectors)
    index.remove([11])
    found, scores = index.search(vectors[:1], 5, exclude=[12])
    assert found.tolist() == [[10, -1, -1, -1, -1]]
    assert scores[0, 0] == pytest.approx(1.0) and np.all(np.isneginf(scores[0, 1:]))
    empty = VectorIndex(4)
    assert empty.search(vectors, 2)[0].tolist() == [[-1, -1]] * 3


@pytest.mark.parametrize("kind", ["exact", "fp16", "hnsw", "ivf", "ivfpq"])
def test_save_load_round_trip(kind: str, tmp_path: Path,
                              data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, queries = data
    index = VectorIndex(32, kind, ef_search=64, nprobe=8, pq_m=8)
    index.add(ids, vectors)
    index.remove(ids[:50])
    path = index.save(tmp_path / "items.index")
    loaded = VectorIndex.load(path)
    assert loaded.config == index.config and len(loaded) == len(index)
    assert loaded.n_tombstones == index.n_tombstones
    for a, b in zip(index.search(queries, 10), loaded.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    loaded.add(ids[:1], vectors[:1])  # still usable after loading
    assert ids[0] in loaded


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, vectors, _ = data
    index = VectorIndex(32)
    index.add(ids[:10], vectors[:10])
    path = index.save(tmp_path / "i.index")
    before = path.read_bytes()
    index.add(ids[10:20], vectors[10:20])

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(index_module.np, "savez", fail)
    with pytest.raises(OSError):
        index.save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["i.index"]
    monkeypatch.undo()
    assert len(VectorIndex.load(path)) == 10


def test_bad_input(tmp_path: Path) -> None:
    index = VectorIndex(4)
    with pytest.raises(ConfigError):
        VectorIndex(4, "lsh")
    with pytest.raises(ConfigError):
        index.add([1], np.ones((1, 5), dtype=np.float32))
    with pytest.raises(ConfigError, match="unit"):
        index.add([1], np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ConfigError, match="distinct"):
        index.add([1, 1], unit(np.eye(4)[:2]))
    with pytest.raises(ConfigError):
        index.search(np.ones((1, 4), dtype=np.float32), 0)
    garbage = tmp_path / "garbage.index"
    garbage.write_bytes(b"not an index")
    with pytest.raises(LongtailError):
        VectorIndex.load(garbage)
