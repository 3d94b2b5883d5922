"""Ray with 2 workers gives what one process gives, on a 300-film slice of ml-latest-small:
the same vectors (and a cache a local run reads), the same recommendation files, the same metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.data import load_dataset
from longtail.eval.evaluator import Evaluator
from longtail.models.registry import make_model
from longtail.scale.backend import RayBackend
from longtail.scale.batch import read_recommendations
from longtail.scale.evaluate import ShardedEvaluate
from longtail.text import EmbeddingCache, TextEncoder, embed_items
from longtail.text.cache import default_cache_root

runner = CliRunner()
pytestmark = [pytest.mark.usefixtures("ray_session"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data")]  # Ray's own defaults


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


class CacheOnly:
    """An encoder that must not be asked to encode: every text has to come from the cache."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint

    def encode(self, texts: list[str]) -> np.ndarray:
        raise AssertionError(f"{len(texts)} texts were not in the cache")


def test_ray_embed_fills_the_cache_with_the_local_vectors(slice_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGTAIL_CACHE", str(tmp_path / "ray-cache"))  # empty: Ray encodes everything
    report = json.loads(cli("embed", "--dataset", str(slice_dir), "--backend", "ray", "--workers", "2", "--json"))
    assert report["backend"] == "ray" and report["items"] == 300 and report["from_cache"] == 0
    items = load_dataset(slice_dir).items
    encoder = TextEncoder()
    local = embed_items(items, encoder=encoder, cache=EmbeddingCache(tmp_path / "local-cache"))
    # a later local run reads every vector from what Ray wrote (same texts, keys, fingerprint)
    cached = embed_items(items, encoder=CacheOnly(encoder.fingerprint),  # type: ignore[arg-type]
                         cache=EmbeddingCache(default_cache_root()))
    # same length-sorted blocks as one process: only torch's thread count differs (1 vs the cores)
    np.testing.assert_allclose(cached, local, rtol=0, atol=1e-6)
    again = json.loads(cli("embed", "--dataset", str(slice_dir), "--backend", "ray", "--json"))
    assert again["from_cache"] == 300 and again["encoded"] == 0


def test_recommend_all_users_writes_the_same_files_on_both_backends(slice_dir: Path, tmp_path: Path) -> None:
    common = ["recommend", "--all-users", "--dataset", str(slice_dir), "--model", "itemknn", "--k", "10",
              "--shard-users", "100"]
    cli(*common, "--out", str(tmp_path / "local"))
    cli(*common, "--out", str(tmp_path / "ray"), "--backend", "ray", "--workers", "2")
    local, ray = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("local", "ray"))
    assert local["run"]["backend"] == "local" and ray["run"]["backend"] == "ray"
    assert len(local["files"]) == 7 and local["files"] == ray["files"]  # names, rows, sha256
    rows = read_recommendations(tmp_path / "ray").to_pandas()
    assert rows["user_id"].nunique() == local["users"] and rows["rank"].max() == 10
    # one user's row group is what `longtail recommend --user` prints: one ranking path
    user = str(rows["user_id"].iloc[123])
    single = json.loads(cli("recommend", "--dataset", str(slice_dir), "--model", "itemknn", "--user", user,
                            "--k", "10", "--no-explain", "--json"))
    mine = rows[rows["user_id"] == user].sort_values("rank")
    assert mine["item_id"].tolist() == [r["item_id"] for r in single["items"]]


def test_evaluate_on_ray_gives_the_local_metrics(slice_dir: Path, tmp_path: Path) -> None:
    common = ["evaluate", "--dataset", str(slice_dir), "--models", "itemknn", "--no-tune"]
    cli(*common, "--out", str(tmp_path / "local"))
    cli(*common, "--out", str(tmp_path / "ray"), "--backend", "ray", "--workers", "2")
    local, ray = (json.loads((tmp_path / d / "metrics.json").read_text())["models"]["itemknn"]
                  for d in ("local", "ray"))
    for part in ("overall", "head", "tail", "cold", "beyond"):
        assert ray[part] == local[part], part  # bitwise: the same per-user arrays, averaged once
    assert (tmp_path / "local" / "runs" / "itemknn.tsv").read_bytes() == (tmp_path / "ray" / "runs" / "itemknn.tsv").read_bytes()


def test_many_small_shards_of_a_dense_model_merge_to_the_local_result(slice_dir: Path) -> None:
    dataset = load_dataset(slice_dir)
    vectors = embed_items(dataset.items, template=None)
    evaluator = Evaluator(dataset, batch_size=32, item_embeddings=vectors)
    model = make_model("als", factors=16, iterations=3).fit(dataset.train_valid)
    local = evaluator.evaluate(model)
    from longtail.pipeline import RankingPipeline

    with RayBackend(2) as backend:
        ray = ShardedEvaluate(backend, shards_per_worker=4)(evaluator, RankingPipeline(model))
    assert len(evaluator.view.users) > 8 * 32  # 8 shards of whole 32-user batches
    assert ray.metrics == local.metrics and ray.beyond == local.beyond and ray.n_users == local.n_users
    assert np.array_equal(ray.lists, local.lists) and np.array_equal(ray.scores, local.scores)
