"""`Dataset`: one dataset under one protocol — vocabularies, train/valid/test, buckets."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from longtail.data.buckets import COLD, HEAD, TAIL, popularity_buckets
from longtail.data.interactions import Interactions
from longtail.data.io import RawData, read_raw
from longtail.data.registry import resolve_dataset
from longtail.data.split import (
    PROTOCOLS,
    TEST,
    TRAIN,
    VALID,
    cold_items_parts,
    draw_cold_items,
    leave_one_out_parts,
    positives,
    temporal_parts,
)
from longtail.data.vocab import IdVocab
from longtail.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset split by one protocol.

    ``train``/``valid``/``test``/``train_valid`` are :class:`Interactions` (users x items, index
    space); ``items`` is the catalogue in index order; ``buckets`` gives HEAD/TAIL/COLD per item
    from train+valid counts. ``keep_seen`` (leave-one-out only, the paper-comparison mode): repeated
    positives stay separate events (``Interactions.repeats``) and no item is excluded from a ranking.
    """

    name: str
    protocol: str
    min_rating: float
    raw: RawData
    users: IdVocab
    item_vocab: IdVocab
    items: pd.DataFrame
    train: Interactions
    valid: Interactions
    test: Interactions
    drawn_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    keep_seen: bool = False

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    @cached_property
    def train_valid(self) -> Interactions:
        return self.train + self.valid

    @cached_property
    def item_counts(self) -> np.ndarray:
        """Train+valid positives per item: the popularity every bucket and metric uses."""
        return self.train_valid.item_counts()

    @cached_property
    def buckets(self) -> np.ndarray:
        return popularity_buckets(self.item_counts)

    def bucket_items(self, bucket: int) -> np.ndarray:
        return np.flatnonzero(self.buckets == bucket).astype(np.int32)

    @property
    def test_users(self) -> np.ndarray:
        """Users evaluated on test: a test positive (and, by construction, a history)."""
        return self.test.active_users()

    @property
    def valid_users(self) -> np.ndarray:
        return self.valid.active_users()

    def summary(self) -> dict[str, int]:
        """Sizes of the split and of the buckets (the figures a regression test pins)."""
        return {
            "users": self.n_users,
            "items": self.n_items,
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
            "test_users": len(self.test_users),
            "valid_users": len(self.valid_users),
            "head_items": int((self.buckets == HEAD).sum()),
            "tail_items": int((self.buckets == TAIL).sum()),
            "cold_items": int((self.buckets == COLD).sum()),
        }


def load_dataset(
    name_or_path: str | Path,
    *,
    protocol: str = "temporal",
    min_rating: float = 4.0,
    allow_missing_items: bool = False,
    rating_range: tuple[float, float] = (0.0, 5.0),
    seed: int = 0,
    keep_seen: bool = False,
) -> Dataset:
    """Load, validate and split a dataset (see ``../shared/PROTOCOL.md``); ``keep_seen`` only
    with ``protocol="leave-one-out"`` (repeats kept, nothing excluded from the ranking).

    >>> ds = load_dataset("ml-latest-small")  # doctest: +SKIP
    >>> ds.summary()["test_users"]  # doctest: +SKIP
    608
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if keep_seen and protocol != "leave-one-out":
        raise ConfigError(f"--keep-seen (paper comparison mode) needs --protocol leave-one-out, "
                          f"not {protocol!r}")
    directory = resolve_dataset(name_or_path)
    raw = read_raw(directory, allow_missing_items=allow_missing_items, rating_range=rating_range)
    item_vocab, order = IdVocab.sorting(raw.items["item_id"])  # validated unique
    items = raw.items.iloc[order].reset_index(drop=True)
    inter = raw.interactions
    users, user_index = IdVocab.encode(inter["user_id"])
    pos = positives(
        user_index,
        item_vocab.index(inter["item_id"]),
        inter["timestamp"].to_numpy(np.int64),
        inter["rating"].to_numpy(np.float64),
        min_rating=min_rating,
        keep_repeats=keep_seen,
    )
    drawn = np.zeros(0, dtype=np.int32)
    if protocol == "temporal":
        parts = temporal_parts(pos.users)
    elif protocol == "leave-one-out":
        parts = leave_one_out_parts(pos.users)
    else:
        drawn = draw_cold_items(item_vocab.ids, pos.items, seed=seed)
        parts = cold_items_parts(pos, drawn)
    everything = Interactions(pos.users, pos.items, pos.timestamps, len(users), len(item_vocab), keep_seen)
    return Dataset(
        name=raw.name,
        protocol=protocol,
        min_rating=min_rating,
        raw=raw,
        users=users,
        item_vocab=item_vocab,
        items=items,
        train=everything.subset(parts == TRAIN),
        valid=everything.subset(parts == VALID),
        test=everything.subset(parts == TEST),
        drawn_items=np.sort(drawn),
        keep_seen=keep_seen,
    )
