"""Histories with repeated items (``--keep-seen``): every event stays, in order, through every view;
the CSR view stays one entry per (row, item) so order-free models see what they were fitted on."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions


def rows_of(batch: HistoryBatch) -> list[list[int]]:
    return [batch.row(r).tolist() for r in range(len(batch))]


def events(repeats: bool) -> Interactions:
    """User 0: item 2 at t=1, 4 and 3 at t=5, 2 again at t=9. User 1: nothing. User 2: 1 at t=3,
    0 and 1 again at t=7."""
    users = np.array([0, 0, 0, 0, 2, 2, 2], np.int32)
    items = np.array([4, 2, 3, 2, 0, 1, 1], np.int32)
    times = np.array([5, 1, 5, 9, 7, 7, 3], np.int64)
    return Interactions(users, items, times, 3, 6, repeats)


def test_histories_keep_repeats_when_the_interactions_do() -> None:
    batch = HistoryBatch.from_interactions(events(True))
    assert batch.repeats
    assert rows_of(batch) == [[2, 3, 4, 2], [], [1, 0, 1]]
    np.testing.assert_array_equal(batch.times, [1, 5, 5, 9, 3, 7, 7])
    np.testing.assert_array_equal(batch.age, [3, 2, 1, 0, 2, 1, 0])
    # the default protocols: first time only (unchanged), and keep_repeats overrides either way
    assert rows_of(HistoryBatch.from_interactions(events(False))) == [[2, 3, 4], [], [1, 0]]
    reduced = HistoryBatch.from_interactions(events(True), keep_repeats=False)
    assert rows_of(reduced) == [[2, 3, 4], [], [1, 0]] and not reduced.repeats
    assert rows_of(HistoryBatch.from_interactions(events(False), keep_repeats=True))[0] == [2, 3, 4, 2]


def test_views_keep_the_repeats_and_the_flag() -> None:
    batch = HistoryBatch.from_interactions(events(True))
    recent = batch.recent(2)
    assert rows_of(recent) == [[4, 2], [], [0, 1]] and recent.repeats
    picked = batch[[2, 0]]
    assert rows_of(picked) == [[1, 0, 1], [2, 3, 4, 2]] and picked.repeats
    small = batch.with_catalogue(3)
    assert rows_of(small) == [[2, 2], [], [1, 0, 1]] and small.repeats


def test_csr_is_binary_unless_counts_are_asked() -> None:
    batch = HistoryBatch.from_interactions(events(True))
    binary = batch.csr()
    assert binary.has_canonical_format and binary.nnz == 5
    np.testing.assert_array_equal(binary.toarray(), HistoryBatch.from_interactions(events(False)).csr().toarray())
    counts = batch.csr(counts=True).toarray()
    assert counts[0, 2] == 2.0 and counts[2, 1] == 2.0 and counts.sum() == 7.0


def test_weighted_csr_keeps_the_latest_weight_of_a_repeat() -> None:
    batch = HistoryBatch(np.array([2, 3, 2]), np.array([0, 1, 2]), np.array([0, 3]), 5, np.array([-1]),
                         np.array([0.5, 1.0, 2.0], np.float32), repeats=True)
    assert batch.csr().toarray()[0].tolist() == [0.0, 0.0, 2.0, 1.0, 0.0]
    assert batch.csr(counts=True).toarray()[0, 2] == pytest.approx(2.5)


def test_interactions_carry_the_flag_and_stay_binary() -> None:
    X = events(True)
    assert X.subset(X.users == 0).repeats and (X + events(False)).repeats
    assert X.csr.max() == 1.0 and X.csr.nnz == 5
    assert X.item_counts().tolist() == [1, 2, 2, 1, 1, 0]  # events: a repeat counts again
