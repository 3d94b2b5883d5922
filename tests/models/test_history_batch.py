"""``HistoryBatch``, the query every model scores: order by (time, item), the earliest event of a
duplicate, and the views models read (recent events, sub-batches, a smaller catalogue, CSR)."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError


def rows_of(batch: HistoryBatch) -> list[list[int]]:
    return [batch.row(r).tolist() for r in range(len(batch))]


@pytest.fixture
def events() -> Interactions:
    """User 0: item 4 at t=5, item 2 at t=1, item 3 at t=5 (tie with 4), item 2 again at t=9.
    User 1: nothing. User 2: item 0 at t=7, item 1 at t=7 then again at t=3."""
    users = np.array([0, 0, 0, 0, 2, 2, 2], np.int32)
    items = np.array([4, 2, 3, 2, 0, 1, 1], np.int32)
    times = np.array([5, 1, 5, 9, 7, 7, 3], np.int64)
    return Interactions(users, items, times, 3, 6)


def test_order_is_time_then_item_and_a_duplicate_keeps_its_earliest_event(events: Interactions) -> None:
    batch = HistoryBatch.from_interactions(events)
    assert rows_of(batch) == [[2, 3, 4], [], [1, 0]]  # item 2 at t=1 (not 9); 3 before 4 at t=5
    np.testing.assert_array_equal(batch.times, [1, 5, 5, 3, 7])
    np.testing.assert_array_equal(batch.indptr, [0, 3, 3, 5])
    np.testing.assert_array_equal(batch.users, [0, 1, 2])
    np.testing.assert_array_equal(batch.lengths, [3, 0, 2])
    np.testing.assert_array_equal(batch.rows, [0, 0, 0, 2, 2])
    np.testing.assert_array_equal(batch.age, [2, 1, 0, 1, 0])  # 0 = the most recent of its row
    assert batch.n_items == 6 and batch.weights is None


def test_from_interactions_takes_the_users_asked_for_in_that_order(events: Interactions) -> None:
    batch = HistoryBatch.from_interactions(events, [2, 0])
    assert rows_of(batch) == [[1, 0], [2, 3, 4]]
    np.testing.assert_array_equal(batch.users, [2, 0])
    assert rows_of(HistoryBatch.from_interactions(events, [1])) == [[]]


def test_from_lists_orders_by_position_or_given_times() -> None:
    batch = HistoryBatch.from_lists([[3, 5, 3], [], [7]], 8)
    assert rows_of(batch) == [[3, 5], [], [7]]  # the repeated 3 keeps position 0
    np.testing.assert_array_equal(batch.users, [-1, -1, -1])  # nobody indexed
    timed = HistoryBatch.from_lists([[3, 5, 6]], 8, times=[[20, 10, 10]])
    assert rows_of(timed) == [[5, 6, 3]]
    assert len(HistoryBatch.from_lists([], 8)) == 0
    with pytest.raises(ConfigError, match="lie in"):
        HistoryBatch.from_lists([[8]], 8)
    with pytest.raises(ConfigError, match="lie in"):
        HistoryBatch.from_lists([[-1]], 8)


def test_recent_keeps_the_newest_events_of_each_row_in_order(events: Interactions) -> None:
    batch = HistoryBatch.from_interactions(events)
    assert rows_of(batch.recent(2)) == [[3, 4], [], [1, 0]]
    assert rows_of(batch.recent(1)) == [[4], [], [0]]
    np.testing.assert_array_equal(batch.recent(1).times, [5, 7])
    assert batch.recent(None) is batch
    weighted = HistoryBatch(batch.items, batch.times, batch.indptr, 6, batch.users,
                            np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(weighted.recent(1).weights, [2, 4])  # each event keeps its weight


def test_getitem_is_the_sub_batch_of_those_rows(events: Interactions) -> None:
    batch = HistoryBatch.from_interactions(events)
    assert rows_of(batch[[2, 0, 2]]) == [[1, 0], [2, 3, 4], [1, 0]]
    np.testing.assert_array_equal(batch[[2, 0]].users, [2, 0])
    np.testing.assert_array_equal(batch[[2, 0]].times, [3, 7, 1, 5, 5])
    assert rows_of(batch[1:]) == [[], [1, 0]]
    assert len(batch[[]]) == 0 and len(batch[[]].items) == 0
    weighted = HistoryBatch(batch.items, batch.times, batch.indptr, 6, batch.users,
                            np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(weighted[[2]].weights, [3, 4])


def test_with_catalogue_drops_items_the_model_does_not_know(events: Interactions) -> None:
    batch = HistoryBatch.from_interactions(events)
    smaller = batch.with_catalogue(3)
    assert smaller.n_items == 3 and rows_of(smaller) == [[2], [], [1, 0]]
    np.testing.assert_array_equal(smaller.times, [1, 3, 7])
    larger = batch.with_catalogue(10)
    assert larger.n_items == 10 and rows_of(larger) == rows_of(batch)


def test_csr_has_one_entry_per_event(events: Interactions) -> None:
    batch = HistoryBatch.from_interactions(events)
    matrix = batch.csr()
    assert matrix.shape == (3, 6) and matrix.has_sorted_indices
    np.testing.assert_array_equal(matrix.toarray(), events.csr.toarray())  # binary, duplicates once
    assert batch.csr(10).shape == (3, 10)
    weighted = HistoryBatch(batch.items, batch.times, batch.indptr, 6, batch.users,
                            np.array([0.5, 1, 2, 3, 4], np.float32))
    assert weighted.csr()[0, 2] == 0.5 and weighted.csr()[2, 0] == 4


def test_inconsistent_arrays_are_refused() -> None:
    items, times = np.array([1, 2]), np.array([0, 1])
    with pytest.raises(ConfigError, match="indptr"):
        HistoryBatch(items, times, np.array([0, 1]), 5, np.array([0]))
    with pytest.raises(ConfigError, match="same length"):
        HistoryBatch(items, times[:1], np.array([0, 2]), 5, np.array([0]))
    with pytest.raises(ConfigError, match="lie in"):
        HistoryBatch(items, times, np.array([0, 2]), 2, np.array([0]))


def test_from_ids_maps_the_dataset_vocabulary_and_names_unknown_ids() -> None:
    from longtail.data.vocab import IdVocab

    vocab = IdVocab(["10", "20", "30", "40"])
    batch = HistoryBatch.from_ids([["30", "10"], []], vocab)
    assert batch.row(0).tolist() == [vocab.index(["30"])[0], vocab.index(["10"])[0]]
    assert len(batch.row(1)) == 0 and batch.n_items == 4
    with pytest.raises(ConfigError, match="'99'"):
        HistoryBatch.from_ids([["10", "99"]], vocab)


def test_without_removes_one_item_per_row_and_keeps_the_rest_as_it_was() -> None:
    batch = HistoryBatch.from_lists([[3, 1, 4], [5, 9, 2, 6]], n_items=10, times=[[10, 20, 30], [1, 2, 3, 4]])
    out = batch.without(1, [9, 6, 7])  # 7 is not in the history: the row comes back whole
    assert [out.row(r).tolist() for r in range(len(out))] == [[5, 2, 6], [5, 9, 2], [5, 9, 2, 6]]
    assert out.times[out.indptr[0]:out.indptr[1]].tolist() == [1, 3, 4]  # times travel with their items
    assert (out.users == batch.users[1]).all() and len(batch.without(0, [])) == 0
