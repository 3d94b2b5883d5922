"""Each re-ranker against a slow reference or a known answer, and the knob's contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from rerank_helpers import unit_vectors

from longtail.errors import ConfigError
from longtail.rerank import RERANKERS, group_profile, item_groups, make_reranker
from longtail.rerank.calibrated import kl_if_added

VECTORS = unit_vectors(40, 16, seed=2)


def sorted_candidates(n_users: int = 4, n: int = 25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    items = np.stack([rng.permutation(len(VECTORS))[:n] for _ in range(n_users)])
    return items, -np.sort(-rng.normal(size=(n_users, n)), axis=1)


def relevance(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.min()) / (scores.max() - scores.min())


def naive_mmr(items: np.ndarray, scores: np.ndarray, lam: float, k: int) -> list[int]:
    rel, chosen = relevance(scores), []
    for _ in range(k):
        best, best_gain = None, -np.inf
        for j, item in enumerate(items):
            if item in chosen:
                continue
            redundancy = max((float(VECTORS[item] @ VECTORS[c]) for c in chosen), default=-1.0)
            gain = (1 - lam) * rel[j] - lam * redundancy
            if gain > best_gain:
                best, best_gain = item, gain
        chosen.append(int(best))
    return chosen


def cosines(items: list[int]) -> np.ndarray:
    """The kernel block ``S_Y``: cosines, unit diagonal."""
    vectors = VECTORS[items].astype(np.float64)
    gram = vectors @ vectors.T
    np.fill_diagonal(gram, 1.0)
    return gram


def naive_dpp(items: np.ndarray, scores: np.ndarray, lam: float, k: int) -> list[int]:
    """Greedy on ``(1 - λ) Σ rel + λ log det S_Y`` with a determinant per candidate."""
    rel, chosen, position = relevance(scores), [], {int(i): j for j, i in enumerate(items)}
    for _ in range(k):
        base = np.linalg.slogdet(cosines(chosen))[1] if chosen else 0.0
        gains = []
        for j, item in enumerate(items):
            if item in chosen:
                gains.append(-np.inf)
                continue
            gains.append((1 - lam) * rel[j] + lam * (np.linalg.slogdet(cosines(chosen + [item]))[1] - base))
        chosen.append(int(items[int(np.argmax(gains))]))
    assert all(c in position for c in chosen)
    return chosen


@pytest.mark.parametrize("lam", [0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize(("method", "naive"), [("mmr", naive_mmr), ("dpp", naive_dpp)])
def test_matches_a_slow_reference(method: str, naive, lam: float) -> None:
    items, scores = sorted_candidates()
    got, _ = make_reranker(method, diversity=lam).rerank(items, scores, 10, embeddings=VECTORS)
    for row in range(len(items)):
        assert got[row].tolist() == naive(items[row], scores[row], lam, 10)


def test_dpp_diversity_spreads_the_list() -> None:
    """Ten near-copies of one vector on top, ten distinct ones below: λ = 1 takes one copy only."""
    vectors = unit_vectors(20, 16, seed=3)
    vectors[:10] = vectors[0] + 1e-3 * unit_vectors(10, 16, seed=4)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items, scores = np.arange(20)[None], -np.arange(20, dtype=float)[None]
    for method in ("dpp", "mmr"):
        top, _ = make_reranker(method, diversity=1.0).rerank(items, scores, 10, embeddings=vectors)
        assert top[0, 0] == 0 and np.sum(top[0] < 10) == 1


@pytest.mark.parametrize(("method", "head_share"), [("calibrated", 0.7), ("xquad", 0.7), ("calibrated", 0.3)])
def test_full_knob_matches_the_history_mix(method: str, head_share: float) -> None:
    groups = np.array([0] * 20 + [1] * 20)  # every head item more relevant than every tail item
    items, scores = np.arange(40)[None], -np.arange(40, dtype=float)[None]
    profile = np.array([[head_share, 1 - head_share]])
    top, _ = make_reranker(method, diversity=1.0).rerank(items, scores, 10, groups=groups, profile=profile)
    assert np.sum(groups[top[0]] == 0) == round(10 * head_share)
    for group in (0, 1):  # inside a group, relevance decides: the best items of each, in order
        members = [int(i) for i in top[0] if groups[i] == group]
        assert members == sorted(members) and members == list(range(20 * group, 20 * group + len(members)))


def test_kl_if_added_by_hand() -> None:
    p = np.array([[0.5, 0.5]])
    kl = kl_if_added(np.array([[1.0, 0.0]]), p, alpha=0.01)  # one head item chosen so far
    assert kl[0, 1] == pytest.approx(0.0)  # adding a tail item: q = (.5, .5) = p
    q = 0.99 * np.array([1.0, 0.0]) + 0.01 * p[0]  # adding a head item: q = (1, 0), smoothed
    assert kl[0, 0] == pytest.approx(float(np.sum(p * np.log(p / q))))
    assert kl_if_added(np.zeros((1, 2)), np.array([[1.0, 0.0]]))[0, 0] == pytest.approx(0.0)  # p_g = 0 terms


def test_groups_and_profile() -> None:
    buckets = np.array([0, 1, 2, 0])  # head, tail, cold, head
    assert item_groups(buckets).tolist() == [0, 1, 1, 0]
    history = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 0, 0, 0]], dtype=np.float32))
    np.testing.assert_allclose(group_profile(history, item_groups(buckets)), [[2 / 3, 1 / 3], [0.5, 0.5]])


@pytest.mark.parametrize("method", list(RERANKERS))
@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.3", True])
def test_diversity_outside_the_unit_interval_is_refused(method: str, bad) -> None:
    with pytest.raises(ConfigError, match="diversity"):
        make_reranker(method, diversity=bad)


def test_missing_context_and_bad_inputs_are_named() -> None:
    items, scores = sorted_candidates()
    with pytest.raises(ConfigError, match="needs embeddings"):
        make_reranker("dpp", diversity=0.5).rerank(items, scores, 5)
    with pytest.raises(ConfigError, match="needs groups, profile"):
        make_reranker("xquad", diversity=0.5).rerank(items, scores, 5)
    with pytest.raises(ConfigError, match="outside the catalogue"):
        make_reranker("mmr", diversity=0.5).rerank(items + 100, scores, 5, embeddings=VECTORS)
    with pytest.raises(ConfigError, match="equal 2-d shapes"):
        make_reranker("mmr").rerank(items, scores[:, :3], 5, embeddings=VECTORS)
    with pytest.raises(ConfigError, match="unknown re-ranker"):
        make_reranker("nope")
