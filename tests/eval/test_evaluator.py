"""The evaluator on ml-latest-small: what it ranks from (the split's ordered histories), one path for
a bare model and a ranking pipeline, and metrics of precomputed lists."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.data.dataset import Dataset
from longtail.eval.evaluator import Evaluator
from longtail.models import make_model
from longtail.pipeline import RankingPipeline


def test_queries_are_the_splits_ordered_histories(ml: Dataset) -> None:
    for split, history in (("valid", ml.train), ("test", ml.train_valid)):
        evaluator = Evaluator(ml, split=split, ks=(20,))
        users = evaluator.view.users[:30]
        queries = evaluator.queries(users)
        np.testing.assert_array_equal(queries.users, users)
        for r, user in enumerate(users):
            mine = history.users == user
            order = np.lexsort((history.items[mine], history.timestamps[mine]))  # time, then item
            assert queries.row(r).tolist() == history.items[mine][order].tolist()


def test_a_bare_model_a_pipeline_and_its_lists_score_alike(ml: Dataset, ml_item_vectors: np.ndarray) -> None:
    evaluator = Evaluator(ml, split="test", ks=(10, 20))
    model = make_model("semantic").fit(ml.train_valid, item_embeddings=ml_item_vectors)
    bare = evaluator.evaluate(model)
    piped = evaluator.evaluate(RankingPipeline(model))
    np.testing.assert_array_equal(bare.lists, piped.lists)
    assert bare.metrics == piped.metrics and bare.beyond == piped.beyond
    items, scores = model.recommend(evaluator.queries(evaluator.view.users), k=20)
    np.testing.assert_array_equal(items, bare.lists)
    assert evaluator.evaluate_lists(items, scores).metrics == bare.metrics
    assert bare.headline() > 0


def test_lists_of_the_relevant_items_score_perfectly(ml: Dataset) -> None:
    evaluator = Evaluator(ml, split="test", ks=(20,), beyond=False)
    view = evaluator.view
    lists = np.full((len(view.users), 20), -1, np.int32)
    n_relevant = np.zeros(len(view.users))
    for r, user in enumerate(view.users):
        relevant = view.relevant[user].indices
        lists[r, : min(20, len(relevant))] = relevant[:20]
        n_relevant[r] = len(relevant)
    result = evaluator.evaluate_lists(lists, np.zeros(lists.shape, np.float32))
    overall = result.metrics["overall"]
    assert overall["ndcg@20"] == pytest.approx(1.0) and overall["hit@20"] == pytest.approx(1.0)
    assert overall["recall@20"] == pytest.approx(np.mean(np.minimum(20, n_relevant) / n_relevant))
    assert overall["precision@20"] == pytest.approx(np.mean(np.minimum(20, n_relevant) / 20))
    with pytest.raises(ValueError, match="lists"):
        evaluator.evaluate_lists(lists[:-1], np.zeros((len(lists) - 1, 20), np.float32))
    with pytest.raises(ValueError, match="lists"):
        evaluator.evaluate_lists(lists[:, :10], np.zeros((len(lists), 10), np.float32))
