"""Reviews (``reviews.csv[.gz]``, optional): the text a user wrote with an interaction.

Read and validated at the edge like the other tables (an error names file, row and field). A review
belongs to one event, ``(user_id, item_id, timestamp)``, and may be read only where that event may
be (``PROTOCOL.md``: train / valid history, never test): ``event_values`` joins per-review values
onto the positives of one ``Interactions`` exactly on that key, so a review of another event — a
test one, or a later repeat of the same pair — never lands on a history event.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from longtail.data.interactions import Interactions
from longtail.data.io import SUFFIXES, find_table, read_table
from longtail.data.validate import validate_reviews
from longtail.data.vocab import IdVocab
from longtail.errors import DataError

REVIEWS = "reviews"


def find_reviews(directory: str | Path) -> Path | None:
    """``directory/reviews.<suffix>`` if the dataset has one, else None."""
    directory = Path(directory)
    if not any((directory / f"{REVIEWS}{suffix}").is_file() for suffix in SUFFIXES):
        return None
    return find_table(directory, REVIEWS)


def read_reviews(path: str | Path) -> pd.DataFrame:
    """The validated reviews table at ``path``: ``user_id, item_id`` (str), ``timestamp`` (int64),
    ``summary, text`` (str, '' when missing). Quoted fields may span lines."""
    path = Path(path)
    frame = read_table(path, ("user_id", "item_id"), multiline=True)
    if len(frame) == 0:
        raise DataError(path, None, None, "no reviews")
    return validate_reviews(frame, path)


def review_texts(reviews: pd.DataFrame) -> list[str]:
    """One text per review, ``summary. text`` (the summary often states the verdict)."""
    out = []
    for summary, text in zip(reviews["summary"], reviews["text"], strict=True):
        summary, text = str(summary).strip(), str(text).strip()
        out.append(f"{summary}. {text}" if summary and text else summary or text)
    return out


def event_keys(X: Interactions) -> pd.DataFrame:
    """``(user, item, timestamp)`` of each positive of ``X``, the key a review is joined on."""
    return pd.DataFrame({"user": X.users.astype(np.int64), "item": X.items.astype(np.int64),
                         "timestamp": X.timestamps.astype(np.int64)})


def event_values(X: Interactions, users: IdVocab, items: IdVocab, table: pd.DataFrame,
                 values: np.ndarray) -> np.ndarray:
    """Per positive of ``X``, the mean of ``values`` over the rows of ``table`` (``user_id,
    item_id, timestamp``) with the same user, item and timestamp; NaN where none. Rows naming a
    user or item outside the vocabularies are ignored (reviews of interactions that are not
    positives, or of items dropped with ``--allow-missing-items``). (len(X),) float64."""
    values = np.asarray(values, np.float64)
    if len(values) != len(table):
        raise ValueError("values must have one entry per row of the table")
    frame = pd.DataFrame({"user": users.index(table["user_id"], strict=False).astype(np.int64),
                          "item": items.index(table["item_id"], strict=False).astype(np.int64),
                          "timestamp": np.asarray(table["timestamp"], np.int64), "value": values})
    frame = frame[(frame["user"] >= 0) & (frame["item"] >= 0) & np.isfinite(frame["value"])]
    means = frame.groupby(["user", "item", "timestamp"], sort=False)["value"].mean().rename("value")
    joined = event_keys(X).join(means, on=["user", "item", "timestamp"])
    return joined["value"].to_numpy(np.float64)


__all__ = ["REVIEWS", "event_keys", "event_values", "find_reviews", "read_reviews", "review_texts"]
