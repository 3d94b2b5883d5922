"""Hand-built cases with known answers for every metric (tiny catalogues, computed by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from longtail.eval import metrics as M


def test_accuracy_known_answers() -> None:
    # user 0: hits at ranks 2 and 4, 3 relevant; user 1: no hit, 1 relevant
    hits = np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=bool)
    n_rel = np.array([3, 1])
    got = M.accuracy_metrics(hits, n_rel, (4,))
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert got["ndcg@4"] == pytest.approx([dcg / idcg, 0.0])
    assert got["recall@4"] == pytest.approx([2 / 3, 0.0])
    assert got["precision@4"] == pytest.approx([0.5, 0.0])
    assert got["mrr@4"] == pytest.approx([0.5, 0.0])
    assert got["hit@4"] == pytest.approx([1.0, 0.0])


def test_ndcg_ideal_is_capped_at_k() -> None:
    hits = np.array([[1, 1]], dtype=bool)
    assert M.ndcg_at_k(hits, np.array([10]), 2) == pytest.approx([1.0])
    assert M.recall_at_k(hits, np.array([10]), 2) == pytest.approx([0.2])


def test_precision_counts_k_even_for_short_lists() -> None:
    hits = np.array([[1, 0, 0]], dtype=bool)  # a list padded to 3 slots
    assert M.precision_at_k(hits, 3) == pytest.approx([1 / 3])


def test_coverage_and_gini() -> None:
    lists = np.array([[0, 1], [0, 2]])
    assert M.coverage(lists, 4) == pytest.approx(3 / 4)
    # counts over the catalogue: [2, 1, 1, 0] -> sorted [0, 1, 1, 2]
    x = np.array([0, 1, 1, 2.0])
    expected = sum((2 * (i + 1) - 4 - 1) * x[i] for i in range(4)) / (4 * x.sum())
    assert M.gini_index(lists, 4) == pytest.approx(expected)
    assert M.gini_index(np.array([[0], [1], [2], [3]]), 4) == pytest.approx(0.0)  # perfectly equal
    assert M.gini_index(np.array([[0], [0]]), 4) == pytest.approx(0.75)  # one item gets all


def test_padding_is_ignored() -> None:
    lists = np.array([[0, -1]])
    assert M.coverage(lists, 2) == pytest.approx(0.5)
    assert M.aplt(lists, np.array([True, False])) == pytest.approx([1.0])


def test_aplt() -> None:
    long_tail = np.array([False, True, True, False])
    lists = np.array([[0, 1], [1, 2], [0, 3]])
    assert M.aplt(lists, long_tail) == pytest.approx([0.5, 1.0, 0.0])


def test_novelty() -> None:
    counts = np.array([3, 1, 0])
    # p = (c + 1) / (4 + 3) -> [4/7, 2/7, 1/7]
    lists = np.array([[0, 2]])
    expected = (-math.log2(4 / 7) - math.log2(1 / 7)) / 2
    assert M.novelty(lists, counts) == pytest.approx([expected])


def test_intra_list_diversity() -> None:
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # pairs of [0, 1, 2]: (0,1) cos 0, (0,2) cos 1, (1,2) cos 0 -> distances 1, 0, 1
    assert M.intra_list_diversity(np.array([[0, 1, 2]]), emb) == pytest.approx([2 / 3])
    assert M.intra_list_diversity(np.array([[0, 2]]), emb) == pytest.approx([0.0])
    assert M.intra_list_diversity(np.array([[0, -1]]), emb) == pytest.approx([0.0])  # no pair
