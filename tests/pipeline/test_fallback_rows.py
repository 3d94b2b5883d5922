"""The fallback's profile sums and its row cache: same numbers as the plain formula, and a cache
that never serves rows of another matrix or another column set."""

from __future__ import annotations

import numpy as np

from longtail.data.history import HistoryBatch
from longtail.common.scores import UNSCORED
from longtail.pipeline import RowCache, TextFallback


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_profiles_equal_the_dense_float64_mean_of_recent_items() -> None:
    rng = np.random.default_rng(0)
    vectors = _unit(rng, 500, 16)
    rows = np.repeat(np.arange(3), [5, 0, 40])
    items = rng.integers(0, 500, size=len(rows))
    queries = HistoryBatch.from_events(rows, items, np.arange(len(rows)), 3, 500)
    got = TextFallback(profile_items=10).profiles(queries, vectors)
    for r in range(3):
        recent = queries.recent(10).row(r)
        if len(recent) == 0:
            assert not got[r].any()
            continue
        mean = vectors[recent].astype(np.float64).sum(axis=0)
        np.testing.assert_allclose(got[r], mean / np.linalg.norm(mean), rtol=1e-6, atol=1e-7)


def test_row_cache_reuses_only_the_same_rows_of_the_same_matrix() -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 100, 8)
    cache = RowCache()
    first = cache.rows(vectors, np.array([3, 7, 9]))
    assert cache.rows(vectors, np.array([3, 7, 9])) is first  # reused
    other = cache.rows(vectors, np.array([3, 7, 10]))
    np.testing.assert_array_equal(other, vectors[[3, 7, 10]])
    grown = np.concatenate([vectors, _unit(rng, 5, 8)])  # a grown catalogue is a new buffer
    np.testing.assert_array_equal(cache.rows(grown, np.array([3, 7, 10, 102])), grown[[3, 7, 10, 102]])


def test_fallback_scores_are_the_same_with_and_without_the_cache() -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 300, 12)
    scores = rng.standard_normal((4, 300)).astype(np.float32)
    scores[:, 250:] = UNSCORED  # items the model has no column for
    rows = np.repeat(np.arange(4), 6)
    queries = HistoryBatch.from_events(rows, rng.integers(0, 250, size=24), np.arange(24), 4, 300)
    fallback, cache = TextFallback(threshold=-0.5), RowCache()
    plain = scores.copy()
    fallback.apply(plain, queries, vectors, 10, cosine=False)
    for _ in range(2):  # the second call reads the cached rows
        cached = scores.copy()
        fallback.apply(cached, queries, vectors, 10, cosine=False, rows=cache)
        np.testing.assert_array_equal(cached, plain)
    assert (plain[:, 250:] > UNSCORED).any()
