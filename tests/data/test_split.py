"""Split invariants of PROTOCOL.md, on generated tables (hypothesis) and on the real datasets, checked
against a deliberately plain reference implementation of the protocol written here (dicts and loops)."""

from __future__ import annotations

import math
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longtail.data import COLD, HEAD, TAIL, Dataset, load_dataset
from longtail.data.split import positives, temporal_parts

SHARED_DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()
FOLDERS = (
    sorted(p for p in SHARED_DATA.iterdir() if p.is_dir() and any(p.glob("interactions.*")))
    if SHARED_DATA.is_dir()
    else []
)

ML_TEMPORAL = {
    "users": 610, "items": 9742, "train": 39364, "valid": 4608, "test": 4608, "test_users": 608,
    "valid_users": 608, "head_items": 1159, "tail_items": 4640, "cold_items": 3943,
}  # fmt: skip
ML_COLD_ITEMS = {
    "users": 610, "items": 9742, "train": 35503, "valid": 4142, "test": 4793, "test_users": 541,
    "valid_users": 607, "head_items": 1044, "tail_items": 4179, "cold_items": 4519,
}  # fmt: skip

Triple = tuple[str, str, int]  # (user_id, item_id, timestamp)


# --------------------------------------------------------------------------------------------
# Reference implementation of the protocol: plain Python, string ids throughout.
# --------------------------------------------------------------------------------------------


def ref_positives(rows, min_rating: float) -> dict[tuple[str, str], int]:
    """(user, item) -> first time of a positive; a row is positive when its rating is empty or
    >= min_rating."""
    first: dict[tuple[str, str], int] = {}
    for user, item, ts, rating in rows:
        if rating is None or (isinstance(rating, float) and math.isnan(rating)) or rating >= min_rating:
            key = (user, item)
            if key not in first or ts < first[key]:
                first[key] = ts
    return first


def ref_temporal(first: dict[tuple[str, str], int]) -> dict[str, set[Triple]]:
    by_user: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (user, item), ts in first.items():
        by_user[user].append((ts, item))
    parts: dict[str, set[Triple]] = {"train": set(), "valid": set(), "test": set()}
    for user, events in by_user.items():
        events.sort()  # (timestamp, item_id as a Python string)
        n = len(events)
        k = max(1, n // 10)
        for position, (ts, item) in enumerate(events):
            if n < 3 or position < n - 2 * k:
                parts["train"].add((user, item, ts))
            elif position < n - k:
                parts["valid"].add((user, item, ts))
            else:
                parts["test"].add((user, item, ts))
    return parts


def ref_cold_items(first: dict[tuple[str, str], int], seed: int = 0) -> tuple[dict[str, set[Triple]], set]:
    with_positive = sorted({item for (_, item) in first})
    n = math.floor(0.1 * len(with_positive))
    drawn = {str(x) for x in np.random.default_rng(seed).choice(with_positive, n, replace=False)}
    rest = {key: ts for key, ts in first.items() if key[1] not in drawn}
    parts = ref_temporal(rest)
    history = {user for (user, _, _) in parts["train"] | parts["valid"]}
    test = {(u, i, ts) for (u, i), ts in first.items() if i in drawn and u in history}
    return {"train": parts["train"], "valid": parts["valid"], "test": test}, drawn


def ref_buckets(train_valid: set[Triple], catalogue: list[str]) -> dict[str, set[str]]:
    counts: dict[str, int] = defaultdict(int)
    for _, item, _ in train_valid:
        counts[item] += 1
    warm = sorted(counts, key=lambda item: (-counts[item], item))
    n_head = math.floor(0.2 * len(warm))
    return {
        "head": set(warm[:n_head]),
        "tail": set(warm[n_head:]),
        "cold": set(catalogue) - set(warm),
    }


def ref_summary(parts: dict[str, set[Triple]], buckets: dict[str, set[str]], users: int, items: int):
    return {
        "users": users,
        "items": items,
        "train": len(parts["train"]),
        "valid": len(parts["valid"]),
        "test": len(parts["test"]),
        "test_users": len({u for u, _, _ in parts["test"]}),
        "valid_users": len({u for u, _, _ in parts["valid"]}),
        "head_items": len(buckets["head"]),
        "tail_items": len(buckets["tail"]),
        "cold_items": len(buckets["cold"]),
    }


def read_rows_with_pandas(folder: Path) -> tuple[list, list[str]]:
    """The raw rows of a CSV dataset read independently of longtail: (user, item, ts, rating|None)."""
    inter_path = next(p for p in sorted(folder.glob("interactions.csv*")))
    items_path = next(p for p in sorted(folder.glob("items.csv*")))
    frame = pd.read_csv(inter_path, dtype=str, keep_default_na=False)
    ratings = [None if r == "" else float(r) for r in frame.get("rating", pd.Series([""] * len(frame)))]
    rows = list(zip(frame["user_id"], frame["item_id"], frame["timestamp"].astype(int), ratings))
    catalogue = pd.read_csv(items_path, dtype=str, keep_default_na=False, usecols=["item_id"])["item_id"]
    return rows, list(catalogue)


# --------------------------------------------------------------------------------------------
# Views of a Dataset in string ids, and the invariant checks.
# --------------------------------------------------------------------------------------------


def parts_of(ds: Dataset) -> dict[str, set[Triple]]:
    users, items = ds.users.ids, ds.item_vocab.ids
    return {
        name: set(zip(users[x.users].tolist(), items[x.items].tolist(), x.timestamps.tolist()))
        for name, x in (("train", ds.train), ("valid", ds.valid), ("test", ds.test))
    }


def buckets_of(ds: Dataset) -> dict[str, set[str]]:
    ids = ds.item_vocab.ids
    return {name: set(ids[ds.buckets == code]) for name, code in (("head", HEAD), ("tail", TAIL), ("cold", COLD))}


def check_order_and_sizes(ds: Dataset, first: dict[tuple[str, str], int]) -> None:
    """Per user: every train key <= every valid key <= every test key, keys (timestamp, item_id str);
    part sizes max(1, floor(n/10)) for n >= 3 positives, else all train; no test pair in train+valid."""
    parts = parts_of(ds)
    keys: dict[str, dict[str, list]] = defaultdict(lambda: {"train": [], "valid": [], "test": []})
    for name, triples in parts.items():
        for user, item, ts in triples:
            keys[user][name].append((ts, item))
    n_positives: dict[str, int] = defaultdict(int)
    for user, _ in first:
        n_positives[user] += 1
    for user, by_part in keys.items():
        train, valid, test = by_part["train"], by_part["valid"], by_part["test"]
        n = n_positives[user]
        assert len(train) + len(valid) + len(test) == n
        k = max(1, n // 10) if n >= 3 else 0
        assert (len(valid), len(test)) == (k, k), (user, n)
        if train and valid:
            assert max(train) <= min(valid), user
        if valid and test:
            assert max(valid) <= min(test), user
        if train and test:
            assert max(train) <= min(test), user
        # deduplicated: no pair twice, test pairs never in train+valid
        pairs = [item for _, item in train + valid + test]
        assert len(pairs) == len(set(pairs)), user
    assert set(n_positives) == set(keys)


def check_buckets(ds: Dataset) -> None:
    counts = ds.item_counts
    buckets = ds.buckets
    warm = counts > 0
    assert np.array_equal(buckets == COLD, ~warm)
    n_head = math.floor(0.2 * int(warm.sum()))
    assert int((buckets == HEAD).sum()) == n_head
    assert int((buckets == TAIL).sum()) == int(warm.sum()) - n_head
    if n_head and (buckets == TAIL).any():
        head_counts, tail_counts = counts[buckets == HEAD], counts[buckets == TAIL]
        assert head_counts.min() >= tail_counts.max()
        # ties at the boundary: the smaller item_id (string order) is head
        boundary = head_counts.min()
        if tail_counts.max() == boundary:
            ids = ds.item_vocab.ids
            tied_head = ids[(buckets == HEAD) & (counts == boundary)]
            tied_tail = ids[(buckets == TAIL) & (counts == boundary)]
            assert max(tied_head) < min(tied_tail)
    # the counts are train+valid positives
    assert np.array_equal(counts, np.bincount(np.concatenate([ds.train.items, ds.valid.items]),
                                              minlength=ds.n_items))


def check_cold_items(ds: Dataset, first: dict[tuple[str, str], int], seed: int = 0) -> None:
    ids = ds.item_vocab.ids
    drawn = set(ids[ds.drawn_items])
    with_positive = sorted({item for _, item in first})
    n = math.floor(0.1 * len(with_positive))
    assert len(ds.drawn_items) == n
    assert drawn == {str(x) for x in np.random.default_rng(seed).choice(with_positive, n, replace=False)}
    parts = parts_of(ds)
    history_items = {i for _, i, _ in parts["train"] | parts["valid"]}
    assert not drawn & history_items, "a drawn item has a train or valid positive"
    assert {i for _, i, _ in parts["test"]} <= drawn
    history_users = {u for u, _, _ in parts["train"] | parts["valid"]}
    assert {u for u, _, _ in parts["test"]} <= history_users
    # every positive on a drawn item of a user with history is relevant
    expected_test = {(u, i, ts) for (u, i), ts in first.items() if i in drawn and u in history_users}
    assert parts["test"] == expected_test
    assert drawn <= set(ids[ds.buckets == COLD])


def check_against_reference(folder: Path, rows, catalogue: list[str], min_rating: float = 4.0) -> None:
    first = ref_positives(rows, min_rating)
    ds = load_dataset(folder, min_rating=min_rating)
    expected = ref_temporal(first)
    got = parts_of(ds)
    for name in ("train", "valid", "test"):
        assert got[name] == expected[name], name
    expected_buckets = ref_buckets(expected["train"] | expected["valid"], catalogue)
    assert buckets_of(ds) == expected_buckets
    n_users = len({u for u, _, _, _ in rows})
    assert ds.summary() == ref_summary(expected, expected_buckets, n_users, len(catalogue))
    check_order_and_sizes(ds, first)
    check_buckets(ds)

    cold = load_dataset(folder, protocol="cold-items", min_rating=min_rating)
    expected, drawn = ref_cold_items(first)
    got = parts_of(cold)
    for name in ("train", "valid", "test"):
        assert got[name] == expected[name], f"cold-items {name}"
    assert set(cold.item_vocab.ids[cold.drawn_items]) == drawn
    expected_buckets = ref_buckets(expected["train"] | expected["valid"], catalogue)
    assert buckets_of(cold) == expected_buckets
    assert cold.summary() == ref_summary(expected, expected_buckets, n_users, len(catalogue))
    check_cold_items(cold, first)
    check_buckets(cold)


# --------------------------------------------------------------------------------------------
# Generated data.
# --------------------------------------------------------------------------------------------

# Ids chosen so that string order differs from numeric order, with CSV-hostile characters too.
USER_IDS = ["1", "10", "2", "9", "007", "a", "B", "ü"]
ITEM_IDS = ["1", "10", "100", "2", "20", "9", "a", "A", "x,y", 'q"t', "s p", "é"]
RATINGS = [None, 0.5, 1.0, 3.5, 4.0, 4.5, 5.0]

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(USER_IDS),
        st.sampled_from(ITEM_IDS),
        st.integers(0, 6),  # few distinct times: many ties
        st.sampled_from(RATINGS),
    ),
    min_size=1,
    max_size=60,
)


def write_csv_dataset(folder: Path, rows, catalogue: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"]).to_csv(
        folder / "interactions.csv", index=False
    )
    pd.DataFrame({"item_id": catalogue, "title": catalogue, "text": [f"about {c}" for c in catalogue]}).to_csv(
        folder / "items.csv", index=False
    )
    return folder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, min_rating=st.sampled_from([4.0, 3.5, 0.0]), repeat=st.integers(1, 3))
def test_split_matches_reference_on_generated_csv(rows, min_rating: float, repeat: int) -> None:
    # `repeat` copies a user's rows under fresh user ids, so that some users reach 10+ positives
    rows = rows + [(f"{u}-{r}", i, t + r, x) for r in range(1, repeat) for (u, i, t, x) in rows]
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_csv_dataset(Path(tmp) / "gen", rows, ITEM_IDS)
        check_against_reference(folder, rows, ITEM_IDS, min_rating)


@settings(max_examples=40, deadline=None)
@given(
    n_positives=st.lists(st.integers(1, 45), min_size=1, max_size=6),
    ties=st.booleans(),
)
def test_part_sizes_follow_the_protocol(n_positives: list[int], ties: bool) -> None:
    """temporal_parts alone: sizes per user for n from 1 to 45 (k = 1..4)."""
    users = np.repeat(np.arange(len(n_positives)), n_positives).astype(np.int32)
    parts = temporal_parts(users)
    for user, n in enumerate(n_positives):
        mine = parts[users == user]
        k = max(1, n // 10) if n >= 3 else 0
        assert list(mine) == [0] * (n - 2 * k) + [1] * k + [2] * k


def test_positives_rule_and_first_time_dedup() -> None:
    # user 0, item 1: a negative at t=1, positives at t=7 and t=3 -> one positive at t=3
    # user 0, item 2: empty rating -> positive; item 3: rating 3.9 -> not positive
    users = np.array([0, 0, 0, 0, 0, 0], dtype=np.int32)
    items = np.array([1, 1, 1, 2, 3, 2], dtype=np.int32)
    times = np.array([1, 7, 3, 5, 2, 5], dtype=np.int64)
    ratings = np.array([2.0, 4.0, 5.0, np.nan, 3.9, 4.5])
    pos = positives(users, items, times, ratings, min_rating=4.0)
    assert list(zip(pos.items.tolist(), pos.timestamps.tolist())) == [(1, 3), (2, 5)]
    everything = positives(users, items, times, ratings, min_rating=0.0)
    assert list(zip(everything.items.tolist(), everything.timestamps.tolist())) == [(1, 1), (3, 2), (2, 5)]


def test_tie_order_is_string_order_of_item_id(tmp_path: Path) -> None:
    """Same timestamp for all: item_id '9' sorts after '10' and '100' as a string, so it is test."""
    catalogue = ["10", "100", "9", "2"]
    rows = [("u", i, 50, None) for i in ["9", "10", "2", "100"]]
    folder = write_csv_dataset(tmp_path / "ties", rows, catalogue)
    ds = load_dataset(folder)
    parts = parts_of(ds)
    assert parts["test"] == {("u", "9", 50)}
    assert parts["valid"] == {("u", "2", 50)}
    assert parts["train"] == {("u", "10", 50), ("u", "100", 50)}


def test_users_with_fewer_than_three_positives_stay_in_train(tmp_path: Path) -> None:
    rows = [("a", "1", 1, 5.0), ("a", "2", 2, 5.0), ("a", "3", 3, 1.0),  # 2 positives
            ("b", "1", 1, 5.0), ("b", "2", 2, 5.0), ("b", "3", 3, 4.0)]  # 3 positives
    folder = write_csv_dataset(tmp_path / "few", rows, ["1", "2", "3"])
    parts = parts_of(load_dataset(folder))
    assert {t for t in parts["train"] if t[0] == "a"} == {("a", "1", 1), ("a", "2", 2)}
    assert parts["valid"] == {("b", "2", 2)} and parts["test"] == {("b", "3", 3)}


# --------------------------------------------------------------------------------------------
# Real datasets.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_split_matches_reference_on_shared_datasets(folder: Path) -> None:
    rows, catalogue = read_rows_with_pandas(folder)
    check_against_reference(folder, rows, catalogue)


def test_ml_latest_small_summary_is_pinned() -> None:
    """Regression: the shipped ml-latest-small, default protocol, has 608 test users."""
    temporal = load_dataset("ml-latest-small")
    assert len(temporal.test_users) == 608
    assert temporal.summary() == ML_TEMPORAL
    assert load_dataset("ml-latest-small", protocol="cold-items").summary() == ML_COLD_ITEMS


def test_ml_latest_small_pins_agree_with_the_reference() -> None:
    """The pinned figures are also what the reference implementation gives, pair by pair."""
    ds = load_dataset("ml-latest-small")
    rows, catalogue = read_rows_with_pandas(ds.raw.interactions_path.parent)
    first = ref_positives(rows, 4.0)
    parts = ref_temporal(first)
    got = parts_of(ds)
    for name in ("train", "valid", "test"):
        assert got[name] == parts[name]
    n_users = len({u for u, _, _, _ in rows})
    buckets = ref_buckets(parts["train"] | parts["valid"], catalogue)
    assert ref_summary(parts, buckets, n_users, len(catalogue)) == ML_TEMPORAL
    cold, _ = ref_cold_items(first)
    cold_buckets = ref_buckets(cold["train"] | cold["valid"], catalogue)
    assert ref_summary(cold, cold_buckets, n_users, len(catalogue)) == ML_COLD_ITEMS
