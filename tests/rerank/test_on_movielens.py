"""On ml-latest-small with real embeddings: λ = 0 reproduces ALS's test lists exactly for every
method (through the evaluator), the knob moves the figures it should, and the CLI writes the
`tradeoff` and `evaluate --rerank` outputs of the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.data.dataset import Dataset
from longtail.eval.evaluator import Evaluator, split_view
from longtail.models import ALS
from longtail.rerank import RERANKERS, Reranked, make_reranker

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
    wrapped = Reranked(als, make_reranker(method, diversity=0.0), item_embeddings=ml_vectors, buckets=ml.buckets)
    result = test_eval.evaluate(wrapped)
    np.testing.assert_array_equal(result.lists, base_result.lists)
    assert result.metrics == base_result.metrics


@pytest.mark.parametrize(("method", "metric"), [("mmr", "ild@20"), ("dpp", "ild@20"),
                                                ("calibrated", "aplt@20"), ("xquad", "aplt@20")])
def test_the_knob_buys_what_it_should(method: str, metric: str, ml: Dataset, ml_vectors, als, test_eval,
                                      base_result) -> None:
    wrapped = Reranked(als, make_reranker(method, diversity=0.8), item_embeddings=ml_vectors, buckets=ml.buckets)
    result = test_eval.evaluate(wrapped)
    assert result.beyond[metric] > base_result.beyond[metric] + 0.02
    lists = result.lists[result.lists[:, 0] >= 0]
    assert all(len(set(row[row >= 0])) == np.sum(row >= 0) for row in lists)  # no duplicates


def test_buckets_default_to_what_the_model_was_fitted_on(ml: Dataset, als: ALS) -> None:
    wrapped = Reranked(als, make_reranker("xquad", diversity=0.5))
    wrapped.recommend(ml.test_users[:5], 20, history=ml.train_valid.csr)
    np.testing.assert_array_equal(wrapped.buckets, ml.buckets)  # test: train+valid counts
    on_train = Reranked(ALS(**FAST_ALS).fit(ml.train), make_reranker("calibrated", diversity=0.5))
    on_train.recommend(ml.valid_users[:5], 20, history=ml.train.csr)
    np.testing.assert_array_equal(on_train.buckets, split_view(ml, "valid").buckets)  # valid: train counts


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
