"""Multi-interest centroids: the k rule, the k-means itself, and the acceptance check that a user
with two distinct genres gets them in separate interests (user chosen by a rule, not by id)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from longtail.data import HistoryBatch
from longtail.data.dataset import Dataset
from longtail.profile import (
    ProfileContext,
    UserProfile,
    interest_count,
    profile_user,
    spherical_kmeans,
)

HORROR = "Horror"
KIDS = ("Children", "Animation")


def genre_sets(items: pd.DataFrame) -> list[set[str]]:
    return [set(g.split("|")) for g in items["genres"].fillna("")]


def modal_share(profile: UserProfile, members: np.ndarray) -> tuple[int, float]:
    """(the interest holding most of ``members``, the share of them it holds)."""
    counts = [int(np.isin(interest.items, members).sum()) for interest in profile.interests]
    best = int(np.argmax(counts))
    return best, counts[best] / len(members)


def assert_separated(profile: UserProfile, a: np.ndarray, b: np.ndarray) -> None:
    """Most items of A in one interest, most of B in another, each of the two mostly one genre."""
    (home_a, share_a), (home_b, share_b) = modal_share(profile, a), modal_share(profile, b)
    assert home_a != home_b
    assert share_a > 0.5 and share_b > 0.5, (share_a, share_b)
    for home, own, other in ((home_a, a, b), (home_b, b, a)):
        items = profile.interests[home].items
        assert np.isin(items, own).sum() >= 4 * np.isin(items, other).sum()


@pytest.mark.parametrize(("n", "k"), [(1, 1), (2, 1), (3, 1), (4, 2), (7, 2), (8, 3), (16, 4), (31, 4),
                                      (32, 5), (1000, 5)])
def test_interest_count_rule(n: int, k: int) -> None:
    assert interest_count(n) == k


def test_spherical_kmeans_finds_separated_groups_and_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    centres = np.eye(3, 16, dtype=np.float32)
    points = np.repeat(centres, [7, 5, 3], axis=0) + 0.05 * rng.standard_normal((15, 16)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    labels, centroids = spherical_kmeans(points, 3)
    assert labels.tolist() == [0] * 7 + [1] * 5 + [2] * 3  # numbered by size
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    again, _ = spherical_kmeans(points, 3)
    assert np.array_equal(labels, again)


def test_spherical_kmeans_on_duplicates_returns_fewer_groups() -> None:
    points = np.tile(np.eye(1, 8, dtype=np.float32), (6, 1))
    labels, centroids = spherical_kmeans(points, 3)
    assert labels.tolist() == [0] * 6 and len(centroids) == 1


def test_a_user_with_two_distinct_genres_gets_them_in_separate_interests(
        ctx: ProfileContext, histories: HistoryBatch, ml: Dataset) -> None:
    """The rule: A = Horror items without Children / Animation, B = the reverse (the two rarely
    share an item); among users with at least 4 items of each, the one whose history is the largest
    share of both, min(|A|, |B|) / n (ties: the smaller user index)."""
    genres = genre_sets(ml.items)
    horror = np.array([HORROR in g for g in genres])
    kids = np.array([bool(g & set(KIDS)) for g in genres])
    a_items, b_items = np.flatnonzero(horror & ~kids), np.flatnonzero(kids & ~horror)
    best, row = -1.0, -1
    for r in range(len(histories)):
        history = histories.row(r)
        n_a, n_b = int(np.isin(history, a_items).sum()), int(np.isin(history, b_items).sum())
        if min(n_a, n_b) >= 4 and min(n_a, n_b) / len(history) > best:
            best, row = min(n_a, n_b) / len(history), r
    assert row >= 0
    history = histories.row(row)
    profile = profile_user(ctx, history)
    assert len(profile.interests) >= 2
    assert_separated(profile, history[np.isin(history, a_items)], history[np.isin(history, b_items)])


def test_a_history_built_from_two_genres_splits_by_genre(ctx: ProfileContext, ml: Dataset) -> None:
    """Deterministic history: the first 4 items (by index) whose genres are exactly "Horror" and the
    first 4 exactly "Animation|Children" (8 items: k = 3)."""
    genres = ml.items["genres"].fillna("")
    a_items = np.flatnonzero(genres == "Horror")[:4]
    b_items = np.flatnonzero(genres == "Animation|Children")[:4]
    profile = profile_user(ctx, np.concatenate([a_items, b_items]))
    assert len(profile.interests) == 3
    assert_separated(profile, a_items, b_items)
    home_b, _ = modal_share(profile, b_items)
    assert profile.interests[home_b].genre in KIDS
