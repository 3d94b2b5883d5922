"""Reviews at the data edge: the reader's errors name file, row and field; a review is joined onto
exactly its own event; per-positive weights travel with ``Interactions`` into ``HistoryBatch``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.data.reviews import event_values, find_reviews, read_reviews, review_texts
from longtail.data.vocab import IdVocab
from longtail.errors import DataError

GOOD = ('user_id,item_id,timestamp,summary,text\n'
        'u1,i1,100,Great,"Loved it.\nSecond line, with a comma."\n'
        'u2,i2,200,,Dull &quot;album&quot;\n')


def test_reads_multiline_text_and_missing_summary(make_folder: Callable[..., Path]) -> None:
    folder = make_folder({"reviews.csv": GOOD})
    path = find_reviews(folder)
    assert path == folder / "reviews.csv"
    reviews = read_reviews(path)
    assert reviews["timestamp"].tolist() == [100, 200]
    assert reviews["text"][0] == "Loved it.\nSecond line, with a comma."
    assert review_texts(reviews) == ["Great. Loved it.\nSecond line, with a comma.", "Dull &quot;album&quot;"]


def test_gzip_and_no_summary_column(make_folder: Callable[..., Path]) -> None:
    frame = pd.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "timestamp": [5], "text": ["fine"]})
    reviews = read_reviews(make_folder({"reviews.csv.gz": frame}) / "reviews.csv.gz")
    assert reviews["summary"].tolist() == [""] and reviews["text"].tolist() == ["fine"]


def test_no_reviews_file_is_none(make_folder: Callable[..., Path]) -> None:
    assert find_reviews(make_folder({"items.csv": "item_id,title,text\n"})) is None


@pytest.mark.parametrize(("content", "row", "field"), [
    ("user_id,item_id,timestamp,summary\nu1,i1,1,x\n", None, "text"),  # missing column
    ("user_id,item_id,timestamp,text\nu1,i1,1,a\n ,i2,2,b\n", 2, "user_id"),  # blank id
    ("user_id,item_id,timestamp,text\nu1,i1,1,a\nu1,i2,2,b\nu2,i3,soon,c\n", 3, "timestamp"),
    ("user_id,item_id,timestamp,text\nu1,i1,-4,a\n", 1, "timestamp"),  # negative
    ('user_id,item_id,timestamp,text\nu1,i1,1,"multi\nline"\nu1,i2,2,b,extra\n', 2, "text"),  # extra field
])
def test_bad_file_names_row_and_field(make_folder: Callable[..., Path], content: str, row: int | None,
                                      field: str) -> None:
    path = make_folder({"reviews.csv": content}) / "reviews.csv"
    with pytest.raises(DataError) as caught:
        read_reviews(path)
    assert (caught.value.row, caught.value.field) == (row, field)
    assert str(path) in str(caught.value)


def test_empty_file_is_an_error(make_folder: Callable[..., Path]) -> None:
    with pytest.raises(DataError, match="no reviews"):
        read_reviews(make_folder({"reviews.csv": "user_id,item_id,timestamp,text\n"}) / "reviews.csv")


def test_values_join_on_the_exact_event() -> None:
    users, items = IdVocab(["u1", "u2"]), IdVocab(["a", "b", "c"])
    X = Interactions(np.array([0, 0, 1], np.int32), np.array([0, 1, 2], np.int32),
                     np.array([10, 20, 30]), 2, 3)
    table = pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2", "zz", "u1"],
                          "item_id": ["a", "a", "b", "c", "a", "b"],
                          "timestamp": [10, 10, 21, 30, 10, 20]})
    # u1/a twice (mean), u1/b at 21 is another event (ignored), unknown user ignored
    values = event_values(X, users, items, table, np.array([0.2, 0.4, -1.0, 0.9, 5.0, 0.1]))
    assert np.allclose(values, [0.3, 0.1, 0.9])
    missing = event_values(X, users, items, table.iloc[:1], np.array([1.0]))
    assert np.isnan(missing[1:]).all()


def test_weights_travel_with_subset_add_and_histories() -> None:
    X = Interactions(np.array([0, 0, 1, 0], np.int32), np.array([2, 1, 0, 3], np.int32),
                     np.array([30, 10, 5, 20]), 2, 4, weights=np.array([0.5, 2.0, 3.0, 1.5], np.float32))
    first, rest = X.subset(np.array([True, True, False, False])), X.subset(np.array([2, 3]))
    assert rest.weights.tolist() == [3.0, 1.5]
    joined = first + rest
    assert joined.weights.tolist() == [0.5, 2.0, 3.0, 1.5]
    assert (first + rest.with_weights(None)).weights.tolist() == [0.5, 2.0, 1.0, 1.0]
    assert (X.with_weights(None) + X.with_weights(None)).weights is None
    h = HistoryBatch.from_interactions(X)  # user 0 by time: items 1 (10), 3 (20), 2 (30)
    assert h.row(0).tolist() == [1, 3, 2] and h.weights.tolist() == [2.0, 1.5, 0.5, 3.0]
    assert HistoryBatch.from_interactions(X, [1]).weights.tolist() == [3.0]
    assert np.array_equal(X.csr.toarray(), X.with_weights(None).csr.toarray())  # fits stay binary


def test_duplicate_events_keep_the_earliest_events_weight() -> None:
    h = HistoryBatch.from_events(np.zeros(3, np.int64), np.array([4, 4, 1]), np.array([9, 2, 5]), 1, 5,
                                 weights=np.array([7.0, 0.25, 1.0]))
    assert h.row(0).tolist() == [4, 1] and h.weights.tolist() == [0.25, 1.0]
    with pytest.raises(ValueError, match="weights"):
        Interactions(np.zeros(2, np.int32), np.zeros(2, np.int32), np.zeros(2), 1, 1, weights=np.ones(3))
