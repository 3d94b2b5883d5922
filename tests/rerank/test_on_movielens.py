"""On ml-latest-small with real embeddings: λ = 0 reproduces ALS's test lists exactly for every
method (through the evaluator and the ranking pipeline), the knob moves the figures it should, and
the CLI writes the `tradeoff` and `evaluate --rerank` outputs of the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.data.buckets import COLD, HEAD
from longtail.data.dataset import Dataset
from longtail.errors import ConfigError
from longtail.eval.evaluator import Evaluator, split_view
from longtail.models import ALS
from longtail.pipeline import RankingPipeline
from longtail.rerank import RERANKERS, make_reranker

FAST_ALS = {"factors": 32, "iterations": 6, "regularization": 0.1}


@pytest.fixture(scope="module")
def als(ml: Dataset) -> ALS:
    return ALS(**FAST_ALS).fit(ml.train_valid)


@pytest.fixture(scope="module")
def test_eval(ml: Dataset, ml_vectors: np.ndarray) -> Evaluator:
    return Evaluator(ml, split="test", ks=(20,), item_embeddings=ml_vectors)


@pytest.fixture(scope="module")
def base_result(test_eval: Evaluator, als: ALS):
    return test_eval.evaluate(als)


@pytest.mark.parametrize("method", list(RERANKERS))
def test_zero_diversity_reproduces_the_model(method: str, ml: Dataset, ml_vectors, als, test_eval,
                                             base_result) -> None:
    pipeline = RankingPipeline(als, reranker=make_reranker(method, diversity=0.0), rerank_vectors=ml_vectors,
                               buckets=ml.buckets)
    result = test_eval.evaluate(pipeline)
    np.testing.assert_array_equal(result.lists, base_result.lists)
    assert result.metrics == base_result.metrics


@pytest.mark.parametrize(("method", "metric"), [("mmr", "ild@20"), ("dpp", "ild@20"),
                                                ("calibrated", "aplt@20"), ("xquad", "aplt@20")])
def test_the_knob_buys_what_it_should(method: str, metric: str, ml: Dataset, ml_vectors, als, test_eval,
                                      base_result) -> None:
    pipeline = RankingPipeline(als, reranker=make_reranker(method, diversity=0.8), rerank_vectors=ml_vectors,
                               buckets=ml.buckets)
    result = test_eval.evaluate(pipeline)
    assert result.beyond[metric] > base_result.beyond[metric] + 0.02
    lists = result.lists[result.lists[:, 0] >= 0]
    assert all(len(set(row[row >= 0])) == np.sum(row >= 0) for row in lists)  # no duplicates


def test_groups_come_from_the_buckets_of_the_split_being_ranked(ml: Dataset, als: ALS) -> None:
    """Calibration and xQuAD read head / tail per item from ``buckets``: the pipeline refuses to
    guess them; on valid they are train's (``split_view``), and they decide the lists."""
    with pytest.raises(ConfigError, match="popularity buckets"):
        RankingPipeline(als, reranker=make_reranker("xquad", diversity=0.5))
    valid = Evaluator(ml, split="valid", ks=(20,))
    queries = valid.queries(ml.valid_users[:50])
    as_valid = split_view(ml, "valid").buckets
    assert not np.array_equal(as_valid, ml.buckets)  # train counts vs train+valid counts
    lists = {}
    for name, buckets in (("valid", as_valid), ("all tail", np.full(ml.n_items, COLD)),
                          ("all head", np.full(ml.n_items, HEAD))):
        pipeline = RankingPipeline(als, reranker=make_reranker("xquad", diversity=1.0), buckets=buckets)
        lists[name] = pipeline.recommend(queries, 20).items
    # one group for every item: nothing to calibrate, the model's own order
    base = RankingPipeline(als).recommend(queries, 20).items
    np.testing.assert_array_equal(lists["all tail"], base)
    np.testing.assert_array_equal(lists["all head"], base)
    assert not np.array_equal(lists["valid"], base)


def test_tradeoff_command_writes_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "tradeoff"
    result = CliRunner().invoke(app, ["tradeoff", "--dataset", "ml-latest-small", "--model", "als", "--no-tune",
                                      "--methods", "calibrated,dpp", "--grid", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "tradeoff.json").read_text())
    assert len(rows) == 2 * 2 * 2  # methods x λ (0 always added) x splits
    for row in rows:
        assert set(row) == {"method", "diversity", "split", "ndcg@20", "aplt@20", "ild@20", "coverage@20"}
        assert row["split"] in ("valid", "test") and row["diversity"] in (0.0, 0.5)
    selection = json.loads((out / "selection.json").read_text())
    assert set(selection["chosen"]) == {"calibrated", "dpp"}
    assert selection["lambda0_identical"] == {s: {"calibrated": True, "dpp": True} for s in ("valid", "test")}
    assert (out / "tradeoff_ml-latest-small.png").stat().st_size > 1000
    assert "chosen on valid" in result.output


def test_evaluate_with_rerank(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--models", "als", "--no-tune", "--no-ild", "--rerank", "xquad",
                                      "--diversity", "0.5", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    entry = json.loads((tmp_path / "metrics.json").read_text())["models"]["als+xquad"]
    assert entry["rerank"] == {"method": "xquad", "diversity": 0.5, "candidates": 200}
    run = pd.read_csv(tmp_path / "runs" / "als+xquad.tsv", sep="\t", dtype={"user_id": str, "item_id": str})
    assert (run.groupby("user_id")["score"].diff().dropna() <= 0).all()
    assert not run.duplicated(["user_id", "item_id"]).any()


def test_bad_knob_on_the_command_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--models", "als", "--rerank", "dpp", "--diversity", "2",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2 and "diversity must be a number in [0, 1]" in result.output
