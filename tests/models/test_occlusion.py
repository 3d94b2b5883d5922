"""Occlusion explanations (``models.occlusion``): the shared-work scores of a history with one item
taken out equal scoring that history from scratch, for every model that takes the fast path, and the
flagship's explanations are faithful: removing the top evidence lowers the score by its weight."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from model_helpers import MovieSlice

from longtail.models.occlusion import shortlist

ATTENTION = [{"temperature": 0.1}, {"temperature": 0.05, "half_life": 5.0},
             {"temperature": None, "half_life": 20.0}, {"temperature": 0.1, "half_life": 5.0, "max_history": 15}]


def removals(movies: MovieSlice, user: int) -> tuple[Any, np.ndarray]:
    """A long history and items to remove: its newest, oldest, a middle one and two it lacks."""
    query = movies.queries([user])
    own = query.row(0)
    lacking = np.setdiff1d(np.arange(movies.X.n_items), own)[:2]
    return query, np.concatenate([own[-3:], own[:2], own[len(own) // 2: len(own) // 2 + 1], lacking])


@pytest.mark.parametrize("params", ATTENTION)
def test_attention_without_equals_scoring_from_scratch(movies: MovieSlice, params: dict[str, Any]) -> None:
    model = movies.fit("semantic-attn", **params)
    longest = movies.users[np.argsort(-movies.X.user_counts()[movies.users], kind="stable")[:2]]
    for user in longest:  # the longest histories: a cap of 15 is reached, the oldest event comes in
        query, items = removals(movies, int(user))
        fast = model._scores_without(query, items)
        slow = np.concatenate([model.score(query.without(0, [i])) for i in items])
        np.testing.assert_allclose(fast, slow, atol=2e-6)


def test_flagship_without_equals_scoring_from_scratch(movies: MovieSlice) -> None:
    model = movies.fit("longtail", tail_weight=3.0)
    query, items = removals(movies, int(movies.users[0]))
    columns = np.arange(0, movies.X.n_items, 7)
    fast = model._scores_without(query, items, columns)
    slow = np.concatenate([model.score(query.without(0, [i]))[:, columns] for i in items])
    np.testing.assert_allclose(fast, slow, atol=1e-4)
    # and its explanations are faithful: the top evidence's removal lowers the score by its weight
    batch = movies.queries(movies.users[:8])
    scores = model.score(batch)
    top, _ = model.recommend(batch, k=5)
    faithful = 0
    for r, row in enumerate(model.explain(batch, top)):
        for why in row:
            if why.evidence:
                drop = scores[r, why.item] - model.score(batch.without(r, [why.evidence[0].item]))[0, why.item]
                assert drop == pytest.approx(why.evidence[0].weight, rel=1e-3, abs=1e-4)
                faithful += drop > 0
    assert faithful >= 0.9 * top.size


def test_shortlist_prefers_items_proposed_most_often() -> None:
    assert shortlist(np.array([5, 3, 3, 9, 5, 3, 7]), 2).tolist() == [3, 5]
    assert shortlist(np.array([8, 2, 6]), 2).tolist() == [2, 8]  # ties: the first proposed
    assert len(shortlist(np.zeros(0, np.int64), 4)) == 0
