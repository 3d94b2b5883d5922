"""Behaviour as text pairs: what the encoder is taught to put close together.

From TRAIN interactions only (valid and test never reach the encoder), in each user's time order:
- ``item -> next item``: the text of an item and of the item the same user consumed next;
- ``history -> next item``: the titles of the user's ``history_len`` most recent items, joined,
  and the text of the item that followed them.
A pair's positive is always a catalogue item (its index is kept), so in-batch negatives can be
corrected by how often each item is a positive, and pairs of tail items can be over-sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from longtail.data.buckets import TAIL, popularity_buckets
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError

ITEM, HISTORY = 0, 1
KINDS = {"item": ITEM, "history": HISTORY}
HISTORY_SEPARATOR = "; "


@dataclass(frozen=True)
class Pairs:
    """``anchor_items[p]`` >= 0: the anchor is that item's text; -1: ``anchor_texts[p]``."""

    anchor_items: np.ndarray  # (n,) int64
    anchor_texts: tuple[str, ...]  # (n,) "" where the anchor is an item
    positives: np.ndarray  # (n,) int64 item index of each pair's positive
    kinds: np.ndarray  # (n,) int8 ITEM or HISTORY
    item_counts: np.ndarray  # (n_items,) train interactions per item (for buckets and corrections)

    def __len__(self) -> int:
        return len(self.positives)

    def anchors(self, rows: np.ndarray, item_texts: Sequence[str]) -> list[str]:
        return [item_texts[a] if a >= 0 else self.anchor_texts[r]
                for r, a in zip(rows.tolist(), self.anchor_items[rows].tolist(), strict=True)]

    def log_positive_share(self) -> np.ndarray:
        """(n_items,) log of each item's share of the positives (floor: one occurrence)."""
        counts = np.bincount(self.positives, minlength=len(self.item_counts)).astype(np.float64)
        return np.log(np.maximum(counts, 1.0) / max(float(counts.sum()), 1.0))

    def sampling_weights(self, tail_boost: float) -> np.ndarray | None:
        """Per-pair weights that make pairs whose positive is a tail item ``tail_boost`` times as
        likely (None when 1: the natural distribution)."""
        if tail_boost == 1.0:
            return None
        tail = popularity_buckets(self.item_counts)[self.positives] == TAIL
        weights = np.where(tail, float(tail_boost), 1.0)
        return weights / weights.sum()


def behaviour_pairs(train: Interactions, titles: Sequence[str], *, history_len: int = 5,
                    kinds: tuple[int, ...] = (ITEM, HISTORY)) -> Pairs:
    """Every consecutive (item, next item) and (recent titles, next item) pair of ``train``."""
    if history_len < 1:
        raise ConfigError(f"history_len must be >= 1, got {history_len}")
    if len(titles) != train.n_items:
        raise ConfigError(f"{len(titles)} titles for {train.n_items} items")
    batch = HistoryBatch.from_interactions(train)
    anchors: list[np.ndarray] = []
    texts: list[str] = []
    positives: list[np.ndarray] = []
    kind: list[np.ndarray] = []
    for r in range(len(batch)):
        seq = batch.row(r)
        if len(seq) < 2:
            continue
        if ITEM in kinds:
            anchors.append(seq[:-1])
            texts.extend([""] * (len(seq) - 1))
            positives.append(seq[1:])
            kind.append(np.full(len(seq) - 1, ITEM, np.int8))
        if HISTORY in kinds:
            # the window ending at t-1 predicts item t (windows of one item are the ITEM pairs)
            for t in range(2, len(seq)):
                window = seq[max(0, t - history_len):t][::-1]  # most recent first
                texts.append(HISTORY_SEPARATOR.join(titles[i] for i in window))
            anchors.append(np.full(max(len(seq) - 2, 0), -1, np.int64))
            positives.append(seq[2:])
            kind.append(np.full(max(len(seq) - 2, 0), HISTORY, np.int8))
    if not positives:
        raise ConfigError("no user has two train interactions: nothing to learn behaviour from")
    return Pairs(np.concatenate(anchors).astype(np.int64), tuple(texts),
                 np.concatenate(positives).astype(np.int64), np.concatenate(kind),
                 np.asarray(train.item_counts(), np.int64))
