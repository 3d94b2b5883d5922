"""Candidate lists as they come: duplicate ids, fewer than K, NaN / inf / unscored, empty; and
λ = 0 giving the model's order exactly, for every method (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longtail.models.base import UNSCORED
from longtail.rerank import RERANKERS, make_reranker, prepare_candidates

from rerank_helpers import unit_vectors

N_ITEMS = 12
VECTORS = unit_vectors(N_ITEMS, 6, seed=1)
VECTORS[5] = VECTORS[4]  # two items with the same text: a zero DPP residual
GROUPS = np.array([0, 1] * (N_ITEMS // 2))
SCORE = st.one_of(
    st.floats(-5, 5, allow_nan=False, width=32),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), float(UNSCORED), 0.0, 1.0]),
)


@st.composite
def candidate_lists(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 3))
    m = draw(st.integers(0, 16))
    items = np.array(draw(st.lists(st.integers(-1, N_ITEMS - 1), min_size=n * m, max_size=n * m)),
                     dtype=np.int64).reshape(n, m)
    scores = np.array(draw(st.lists(SCORE, min_size=n * m, max_size=n * m)), dtype=np.float32).reshape(n, m)
    head = np.array(draw(st.lists(st.sampled_from([0.0, 0.2, 0.5, 1.0]), min_size=n, max_size=n)))
    return items, scores, np.stack([head, 1.0 - head], axis=1)


def reference_order(items: np.ndarray, scores: np.ndarray) -> list[int]:
    """One row by hand: usable (id >= 0, finite score) candidates by (score desc, position), each
    id once at its best occurrence."""
    usable = [(-float(s), pos, int(i)) for pos, (i, s) in enumerate(zip(items, scores)) if i >= 0 and np.isfinite(s)]
    seen: list[int] = []
    for _, _, item in sorted(usable):
        if item not in seen:
            seen.append(item)
    return seen


def run(method: str, lam: float, items: np.ndarray, scores: np.ndarray, profile: np.ndarray, k: int):
    return make_reranker(method, diversity=lam).rerank(items, scores, k, embeddings=VECTORS, groups=GROUPS,
                                                       profile=profile)


@pytest.mark.parametrize("method", list(RERANKERS))
@settings(max_examples=60, deadline=None)
@given(data=candidate_lists(), k=st.integers(0, 20), lam=st.one_of(st.just(1.0), st.floats(0, 1)))
def test_any_candidates_give_a_clean_list(method: str, data, k: int, lam: float) -> None:
    items, scores, profile = data
    out, out_scores = run(method, lam, items, scores, profile, k)
    assert out.shape == out_scores.shape == (len(items), k)
    assert out.dtype == np.int32 and out_scores.dtype == np.float32
    for row in range(len(items)):
        expected = reference_order(items[row], scores[row])
        picked = out[row][out[row] >= 0].tolist()
        assert len(picked) == len(set(picked)) == min(k, len(expected))  # no duplicate; short when few
        assert set(picked) <= set(expected)  # never an unusable candidate
        assert np.all(out[row][len(picked):] == -1)  # padding at the end only
        assert np.all(np.isneginf(out_scores[row][len(picked):]))
        assert np.all(np.diff(out_scores[row][: len(picked)]) <= 0) and not np.isnan(out_scores[row]).any()


@pytest.mark.parametrize("method", list(RERANKERS))
@settings(max_examples=60, deadline=None)
@given(data=candidate_lists(), k=st.integers(0, 20))
def test_diversity_zero_is_the_model_order(method: str, data, k: int) -> None:
    items, scores, profile = data
    out, _ = run(method, 0.0, items, scores, profile, k)
    for row in range(len(items)):
        expected = reference_order(items[row], scores[row])[:k]
        assert out[row][: len(expected)].tolist() == expected


def test_prepare_candidates_rules() -> None:
    items = np.array([[3, 7, 3, 9, 2, -1, 5]])
    scores = np.array([[0.5, np.nan, 0.9, 0.9, np.inf, 1.0, float(UNSCORED)]])
    cand = prepare_candidates(items, scores)
    # 3 keeps its best score (0.9, before 9 by position); NaN, inf and id -1 dropped; unscored last
    assert cand.items[0, : cand.valid.sum()].tolist() == [3, 9, 5]
    assert cand.relevance[0, :3].tolist() == [1.0, 1.0, 0.0]  # equal scores: 1; unscored: 0
    assert not cand.valid[0, 3:].any() and np.all(cand.items[0, 3:] == -1)


def test_relevance_is_min_max_per_user() -> None:
    cand = prepare_candidates(np.array([[0, 1, 2], [0, 1, 2]]), np.array([[10.0, 5.0, 0.0], [0.3, 0.2, 0.1]]))
    np.testing.assert_allclose(cand.relevance, [[1.0, 0.5, 0.0], [1.0, 0.5, 0.0]])
