"""The leave-one-out split of PROTOCOL.md and its keep-seen mode, on hand-made and generated tables,
checked against a plain reference written here (dicts and loops, string ids)."""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longtail.data import Dataset, load_dataset
from longtail.data.split import leave_one_out_parts, positives
from longtail.errors import ConfigError

CATALOGUE = ["1", "10", "2", "9"]  # string order differs from numeric order on purpose
Triple = tuple[str, str, int]


def ref_leave_one_out(rows, keep_seen: bool, min_rating: float = 4.0) -> dict[str, Counter[Triple]]:
    """Positives (empty rating or >= min_rating), first time per (user, item) unless keep_seen;
    per user by (timestamp, item_id): last -> test, the one before -> valid, when n >= 3."""
    events = [(u, i, t) for u, i, t, r in rows if r is None or r >= min_rating]
    if not keep_seen:
        first: dict[tuple[str, str], int] = {}
        for u, i, t in events:
            first[(u, i)] = min(t, first.get((u, i), t))
        events = [(u, i, t) for (u, i), t in first.items()]
    by_user: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for u, i, t in events:
        by_user[u].append((t, i))
    parts: dict[str, Counter[Triple]] = {"train": Counter(), "valid": Counter(), "test": Counter()}
    for user, steps in by_user.items():
        steps.sort()
        n = len(steps)
        for position, (t, i) in enumerate(steps):
            name = "train" if n < 3 or position < n - 2 else ("valid" if position == n - 2 else "test")
            parts[name][(user, i, t)] += 1
    return parts


def parts_of(ds: Dataset) -> dict[str, Counter[Triple]]:
    """The dataset's parts as multisets of (user_id, item_id, timestamp)."""
    users, items = ds.users.ids, ds.item_vocab.ids
    return {name: Counter(zip(users[x.users].tolist(), items[x.items].tolist(), x.timestamps.tolist()))
            for name, x in (("train", ds.train), ("valid", ds.valid), ("test", ds.test))}


def write_dataset(folder: Path, rows) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"]).to_csv(
        folder / "interactions.csv", index=False)
    pd.DataFrame({"item_id": CATALOGUE, "title": CATALOGUE, "text": CATALOGUE}).to_csv(
        folder / "items.csv", index=False)
    return folder


rows_strategy = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(CATALOGUE), st.integers(0, 4),
              st.sampled_from([None, 3.0, 5.0])),
    min_size=1, max_size=30,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, keep_seen=st.booleans())
def test_split_matches_the_reference_on_generated_tables(rows, keep_seen: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ds = load_dataset(write_dataset(Path(tmp) / "gen", rows), protocol="leave-one-out", keep_seen=keep_seen)
        assert parts_of(ds) == ref_leave_one_out(rows, keep_seen)
        assert ds.keep_seen is keep_seen and ds.train.repeats is keep_seen and ds.test.repeats is keep_seen
        if not keep_seen:  # duplicates reduced to their first time: a test item is never in the history
            assert not ds.test.csr.multiply(ds.train_valid.csr).nnz


@pytest.mark.parametrize("n", range(1, 9))
def test_part_sizes(n: int) -> None:
    parts = leave_one_out_parts(np.zeros(n, np.int32))
    assert parts.tolist() == ([0] * (n - 2) + [1, 2] if n >= 3 else [0] * n)


def test_keep_seen_makes_a_repeat_the_test_item(tmp_path: Path) -> None:
    """u reads 1, 2, 1 again, 9: keep-seen makes 1 (again) the valid item, deduplicated it is train."""
    rows = [("u", "1", 0, None), ("u", "2", 1, None), ("u", "1", 2, None), ("u", "9", 3, None)]
    folder = write_dataset(tmp_path / "repeat", rows)
    kept = parts_of(load_dataset(folder, protocol="leave-one-out", keep_seen=True))
    assert kept == {"train": Counter({("u", "1", 0): 1, ("u", "2", 1): 1}),
                    "valid": Counter({("u", "1", 2): 1}), "test": Counter({("u", "9", 3): 1})}
    reduced = parts_of(load_dataset(folder, protocol="leave-one-out"))
    assert reduced == {"train": Counter({("u", "1", 0): 1}), "valid": Counter({("u", "2", 1): 1}),
                       "test": Counter({("u", "9", 3): 1})}


def test_positives_keep_repeats_in_order() -> None:
    users = np.zeros(4, np.int32)
    items = np.array([3, 1, 3, 2], np.int32)
    times = np.array([5, 1, 2, 5], np.int64)
    pos = positives(users, items, times, np.full(4, np.nan), keep_repeats=True)
    assert list(zip(pos.items.tolist(), pos.timestamps.tolist())) == [(1, 1), (3, 2), (2, 5), (3, 5)]


@pytest.mark.parametrize("protocol", ["temporal", "cold-items"])
def test_keep_seen_needs_leave_one_out(tmp_path: Path, protocol: str) -> None:
    folder = write_dataset(tmp_path / "d", [("u", "1", 0, None)])
    with pytest.raises(ConfigError, match=r"--keep-seen .* needs --protocol leave-one-out"):
        load_dataset(folder, protocol=protocol, keep_seen=True)
