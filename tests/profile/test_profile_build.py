"""UserProfile contents, batch = one-user, edge cases (one item, empty, unknown index), JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from longtail.data import HistoryBatch
from longtail.data.dataset import Dataset
from longtail.errors import ConfigError
from longtail.profile import ProfileContext, activity_cuts, build_profiles, profile_user
from longtail.profile.labels import item_labels


@pytest.fixture(scope="module")
def sample(histories: HistoryBatch) -> HistoryBatch:
    return histories[np.arange(0, len(histories), 40)]


@pytest.fixture(scope="module")
def profiles(ctx: ProfileContext, sample: HistoryBatch) -> list:
    return build_profiles(ctx, sample)


def test_profile_contents(ctx: ProfileContext, sample: HistoryBatch, profiles: list) -> None:
    assert len(profiles) == len(sample)
    for r, profile in enumerate(profiles):
        history = sample.row(r)
        assert profile.user == int(sample.users[r]) and profile.n_items == len(history)
        assert sum(profile.mix.values()) == pytest.approx(1.0, abs=1e-3)
        assert set(profile.mix) == {"head", "tail", "cold"}
        assert profile.genres and sum(s for _, s in profile.genres) <= 1.0 + 1e-3
        shares = [s for _, s in profile.genres]
        assert shares == sorted(shares, reverse=True)
        grouped = np.sort(np.concatenate([interest.items for interest in profile.interests]))
        assert np.array_equal(grouped, np.sort(history))  # every item in exactly one interest
        for interest in profile.interests:
            assert interest.representative in interest.items
            assert interest.representative_title == ctx.titles[interest.representative]
        assert profile.first_time == int(sample.times[sample.indptr[r]])
        assert profile.last_time == int(sample.times[sample.indptr[r + 1] - 1])
        assert profile.activity.level in ("light", "regular", "heavy")


def test_batch_and_one_user_agree(ctx: ProfileContext, sample: HistoryBatch, profiles: list) -> None:
    for r in range(0, len(sample), 3):
        one = profile_user(ctx, sample.row(r), sample.times[sample.indptr[r]:sample.indptr[r + 1]])
        batch = profiles[r].to_dict()
        single = one.to_dict()
        batch["user"] = single["user"]  # the one-user call has no user index
        assert single == batch


def test_to_dict_is_json(profiles: list) -> None:
    text = json.dumps([p.to_dict() for p in profiles])
    assert json.loads(text)[0]["keywords"][0]["keyword"]


def test_one_item_user_gets_a_profile(ctx: ProfileContext) -> None:
    profile = profile_user(ctx, [0])
    assert profile.n_items == 1 and len(profile.interests) == 1
    assert profile.interests[0].representative == 0
    assert profile.keywords and profile.activity.level == "light"
    assert profile.first_time is None and profile.last_time is None
    json.dumps(profile.to_dict())


def test_empty_history_is_a_config_error(ctx: ProfileContext) -> None:
    with pytest.raises(ConfigError, match="empty history"):
        profile_user(ctx, [])
    batch = HistoryBatch.from_lists([[0, 1], []], ctx.n_items)
    with pytest.raises(ConfigError, match="empty history"):
        build_profiles(ctx, batch)


def test_unknown_item_index_is_a_config_error(ctx: ProfileContext) -> None:
    with pytest.raises(ConfigError):
        profile_user(ctx, [ctx.n_items])


def test_repeats_count_once(ctx: ProfileContext) -> None:
    plain = profile_user(ctx, [5, 9, 12, 40])
    batch = HistoryBatch.from_events(np.zeros(6, np.int64), np.array([5, 9, 5, 12, 9, 40]), np.arange(6), 1,
                                     ctx.n_items, keep_repeats=True)
    repeated = build_profiles(ctx, batch)[0]
    assert repeated.n_items == 4 and repeated.keywords == plain.keywords and repeated.mix == plain.mix
    assert [i.items for i in repeated.interests] == [i.items for i in plain.interests]


def test_activity_cuts_are_relative_to_the_dataset(ctx: ProfileContext, ml: Dataset) -> None:
    lengths = np.diff(ml.train_valid.csr.indptr)
    lengths = lengths[lengths > 0]
    regular, heavy = ctx.cuts
    assert (lengths < regular).mean() <= 0.5 <= (lengths <= regular).mean()
    assert (lengths < heavy).mean() <= 0.9 <= (lengths <= heavy).mean()
    assert activity_cuts(None) == (5, 20)
    assert ctx.activity(heavy).level == "heavy" and ctx.activity(heavy - 1).level == "regular"


def test_labels_of_a_category_path_catalogue() -> None:
    items = pd.DataFrame({"item_id": list("abcd"), "categories": [
        "Industrial & Scientific Tapes Duct Tape", "Industrial & Scientific Tapes Duct Tape",
        "Industrial & Scientific 3D Printers", None]})
    labels = item_labels(items)
    assert labels.names.tolist() == ["3D Printers", "Tapes Duct Tape"]
    assert labels.matrix.toarray().tolist() == [[0, 1], [0, 1], [1, 0], [0, 0]]


def test_labels_on_almost_every_item_are_dropped() -> None:
    items = pd.DataFrame({"item_id": list("abcdefghijk"),
                          "genres": ["Pop|Rock"] * 5 + ["Pop|Jazz"] * 5 + ["(no genres listed)"]})
    assert item_labels(items).names.tolist() == ["Jazz", "Rock"]  # Pop on 10 of 11 items: 91%
    assert item_labels(items, max_share=0.95).names.tolist() == ["Jazz", "Pop", "Rock"]


def test_context_rejects_misaligned_inputs(ml: Dataset) -> None:
    with pytest.raises(ConfigError, match="index order"):
        ProfileContext.from_catalogue(ml.items, np.zeros((3, 4), np.float32), ml.item_counts)
