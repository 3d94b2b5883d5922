"""IdVocab (string ids <-> indices) and Interactions (CSR view, counts, subsets)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from longtail.data import IdVocab, Interactions, load_dataset
from longtail.errors import LongtailError

# text ids, with no NUL (numpy's fixed-width strings drop trailing NULs, and no id has one)
id_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)


def test_from_values_sorts_as_strings_and_dedups() -> None:
    vocab = IdVocab.from_values(np.array(["9", "10", "2", "10", "007", "a", "B"], dtype=object))
    assert list(vocab.ids) == ["007", "10", "2", "9", "B", "a"]
    assert len(vocab) == 6
    assert list(vocab.index(["9", "007", "a"])) == [3, 0, 5]
    assert vocab.index(["a"]).dtype == np.int32
    assert "10" in vocab and "11" not in vocab


def test_unknown_ids() -> None:
    vocab = IdVocab(["a", "b"])
    with pytest.raises(LongtailError, match="zz"):
        vocab.index(["a", "zz"])
    assert list(vocab.index(["a", "zz", "b"], strict=False)) == [0, -1, 1]
    with pytest.raises(LongtailError):
        IdVocab(["a", "b", "a"])


@settings(max_examples=50, deadline=None)
@given(ids=st.lists(id_text, unique=True, max_size=30))
def test_save_load_round_trip(ids: list[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    vocab = IdVocab.from_values(np.asarray(ids, dtype=object))
    path = tmp_path_factory.mktemp("vocab") / "vocab.json"
    vocab.save(path)
    loaded = IdVocab.load(path)
    assert loaded == vocab
    assert list(loaded.ids) == sorted(ids)
    assert list(loaded.index(ids)) == list(vocab.index(ids))
    assert json.loads(path.read_text(encoding="utf-8")) == sorted(ids)
    assert [p.name for p in path.parent.iterdir()] == ["vocab.json"]  # no temporary file left


def test_save_overwrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    IdVocab(["a"]).save(path)
    IdVocab(["x", "y"]).save(path)
    assert IdVocab.load(path) == IdVocab(["x", "y"])
    assert IdVocab(["x", "y"]) != IdVocab(["y", "x"])
    assert IdVocab(["x"]) != ["x"]


@settings(max_examples=50, deadline=None)
@given(base=st.lists(id_text, unique=True, max_size=20), new=st.lists(id_text, max_size=20))
def test_extend_keeps_existing_indices(base: list[str], new: list[str]) -> None:
    vocab = IdVocab.from_values(np.asarray(base, dtype=object))
    bigger = vocab.extend(new)
    # existing ids keep their index; unseen ids are appended once, in order of first appearance
    assert list(bigger.ids[: len(vocab)]) == list(vocab.ids)
    fresh = [i for i in dict.fromkeys(new) if i not in set(base)]
    assert list(bigger.ids[len(vocab):]) == fresh
    if base:
        assert list(bigger.index(list(vocab.ids))) == list(range(len(vocab)))
    assert vocab.extend([]) == vocab
    assert len(vocab) == len(set(base))  # the original is unchanged


def test_extend_after_round_trip(tmp_path: Path) -> None:
    vocab = IdVocab.from_values(np.array(["b", "a", "c"], dtype=object)).extend(["z", "a", "0"])
    assert list(vocab.ids) == ["a", "b", "c", "z", "0"]  # appended, not re-sorted
    vocab.save(tmp_path / "v.json")
    assert list(IdVocab.load(tmp_path / "v.json").index(["0", "z", "a"])) == [4, 3, 0]


def test_csr_shape_and_binary_values() -> None:
    users = np.array([0, 0, 2, 2, 2, 0], dtype=np.int32)
    items = np.array([1, 3, 0, 0, 4, 1], dtype=np.int32)  # (0,1) and (2,0) twice
    times = np.arange(6, dtype=np.int64)
    inter = Interactions(users, items, times, n_users=4, n_items=6)
    csr = inter.csr
    assert isinstance(csr, sp.csr_matrix)
    assert csr.shape == (4, 6) and csr.dtype == np.float32
    assert csr.nnz == 4 and set(csr.data.tolist()) == {1.0}
    expected = np.zeros((4, 6), dtype=np.float32)
    expected[users, items] = 1.0
    assert np.array_equal(csr.toarray(), expected)
    assert inter.csr is csr  # built once
    assert list(inter.item_counts()) == [2, 2, 0, 1, 1, 0]  # counts rows, not distinct pairs
    assert list(inter.user_counts()) == [3, 0, 3, 0]
    assert list(inter.active_users()) == [0, 2]
    assert len(inter) == 6


def test_empty_interactions_csr() -> None:
    empty = Interactions(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64), 3, 5)
    assert empty.csr.shape == (3, 5) and empty.csr.nnz == 0
    assert list(empty.active_users()) == []


def test_subset_add_and_shape_checks() -> None:
    inter = Interactions(np.array([0, 1, 1], np.int32), np.array([2, 0, 1], np.int32),
                         np.array([5, 6, 7], np.int64), 2, 3)  # fmt: skip
    left, right = inter.subset(np.array([True, False, True])), inter.subset(np.array([False, True, False]))
    both = left + right
    assert (both.csr != inter.csr).nnz == 0 and len(both) == 3
    with pytest.raises(ValueError):
        left + Interactions(left.users, left.items, left.timestamps, 5, 3)
    with pytest.raises(ValueError):
        Interactions(np.array([0], np.int32), np.array([0, 1], np.int32), np.array([0], np.int64), 1, 2)


def test_dataset_matrices_share_one_shape() -> None:
    ds = load_dataset("ml-latest-small")
    for part in (ds.train, ds.valid, ds.test, ds.train_valid):
        assert part.csr.shape == (ds.n_users, ds.n_items)
        assert set(np.unique(part.csr.data).tolist()) <= {1.0}
        assert part.csr.nnz == len(part)  # positives are deduplicated already
    assert ds.train_valid.csr.multiply(ds.test.csr).nnz == 0
    assert (ds.train.csr + ds.valid.csr + ds.test.csr).max() == 1.0
    assert list(ds.items["item_id"]) == list(ds.item_vocab.ids)
    # both vocabularies in string order: indices depend only on the set of ids
    assert list(ds.users.ids) == sorted(set(ds.raw.interactions["user_id"]))
    assert list(ds.item_vocab.ids) == sorted(set(ds.raw.items["item_id"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(id_text, min_size=1, max_size=40))
def test_encode_and_sorting_agree_with_from_values(values: list[str]) -> None:
    """The one-pass fast paths give exactly the vocabulary and indices of the plain path."""
    reference = IdVocab.from_values(np.asarray(values, dtype=object))
    vocab, codes = IdVocab.encode(np.asarray(values, dtype=object))
    assert vocab == reference
    assert list(codes) == list(reference.index(values))
    unique = list(dict.fromkeys(values))
    sorted_vocab, order = IdVocab.sorting(np.asarray(unique, dtype=object))
    assert sorted_vocab == reference
    assert [unique[n] for n in order] == list(reference.ids)
    assert sorted(unique) == list(reference.ids)  # Arrow's byte order == Python's str order
