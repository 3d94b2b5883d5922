"""What is served is what is evaluated.

For every registered model (and a fusion), ``longtail evaluate`` (no tuning: every model's
defaults) writes its test run file; an artifact fitted on the same training data (train+valid,
``longtail train --fit-on train_valid``) is served by a real ``longtail serve`` process; for 50 test
users ``/recommend`` with k = 20 must return exactly the run file's items, in order. Then one event
is posted and the served list must equal the library pipeline's list for the updated history, with
the model updated by the library's ``partial_fit`` (``Recommender.updated``).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import TEMPLATE

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.eval.runner import EvaluationConfig, run_evaluation
from longtail.pipeline import RankingPipeline, TextFallback
from longtail.serve.bundle import load_bundle, save_bundle, train_bundle

MODELS = ["pop", "itemknn", "als", "bpr", "rp3beta", "ease", "semantic", "semantic-attn", "graph", "neural",
          "neural-softmax", "neural-la", "neural-ips", "neural-focal", "hybrid", "fusion(ease+semantic-attn)",
          "longtail"]
N_USERS = 50
K = 20
# fast settings for the slow models, the same for evaluate and train
PARAMS: dict[str, dict] = {name: {"epochs": 3} for name in MODELS if name.startswith("neural")}
PARAMS["hybrid"] = {"gate_users": 100, "n_candidates": 500}
PARAMS["longtail"] = {"gate_users": 100, "n_candidates": 500, "semantic__neural-ips__epochs": 3}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """SQLite only here: the store holds nothing but the keys and one event, and the equality checked is
    the ranking's (17 models x a server each; both stores would add ~4 min to CI). The shared-store
    paths are exercised by every other service test on both stores."""
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture(scope="module")
def evaluated(serve_env: dict[str, str], dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluate")
    run_evaluation(EvaluationConfig(dataset=str(dataset_dir), models=MODELS, out=out, tune=False, ild=False,
                                    params=PARAMS, template=TEMPLATE))
    return out


def _served(server_url: str, key: str, user: str) -> list[str]:
    reply = httpx.post(f"{server_url}/recommend", json={"user_id": user, "k": K},
                       headers={"X-API-Key": key}, timeout=60)
    assert reply.status_code == 200, reply.text
    return [item["item_id"] for item in reply.json()["items"]]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_served_equals_evaluated(name: str, evaluated: Path, dataset_dir: Path, tmp_path: Path,
                                 keys, start_server) -> None:  # noqa: ANN001
    metrics = json.loads((evaluated / "metrics.json").read_text())["models"][name]
    run = pd.read_csv(evaluated / "runs" / f"{name}.tsv", sep="\t", dtype={"user_id": str, "item_id": str})
    bundle = train_bundle(dataset_dir, name, PARAMS.get(name, {}), fit_on="train_valid", template=TEMPLATE,
                          fallback=metrics.get("fallback", {}))
    artifact = save_bundle(bundle, tmp_path / "model")
    server = start_server(artifact, keys.url)
    users = sorted(run["user_id"].unique())[:N_USERS]
    assert len(users) == N_USERS
    for user in users:
        expected = run[run["user_id"] == user].sort_values("rank")["item_id"].tolist()
        assert _served(server.url, keys.read, user) == expected, f"{name}: user {user}"

    # one posted event: the served list is the pipeline's for the updated history
    user = users[0]
    first = _served(server.url, keys.read, user)[0]
    reply = httpx.post(f"{server.url}/events", json={"events": [{"user_id": user, "item_id": first,
                                                                 "timestamp": 2_000_000_000}]},
                       headers={"X-API-Key": keys.write}, timeout=30)
    assert reply.status_code == 201, reply.text
    served = _served(server.url, keys.read, user)
    assert first not in served
    assert served == _pipeline_list(artifact, user, first)


def _pipeline_list(artifact: Path, user_id: str, item_id: str) -> list[str]:
    """The library's list for ``user_id`` after one event on ``item_id`` (no service code)."""
    bundle = load_bundle(artifact)
    u, item = bundle.user_ids.index(user_id), bundle.item_ids.index(item_id)
    train = bundle.train
    updated = Interactions(np.append(train.users, u), np.append(train.items, item),
                           np.append(train.timestamps, 2_000_000_000), train.n_users, train.n_items)
    counts = updated.item_counts().astype(np.float32)
    fallback = TextFallback(**bundle.manifest["pipeline"]["fallback"])
    event = Interactions(np.array([u], np.int32), np.array([item], np.int32), np.array([2_000_000_000]),
                         train.n_users, train.n_items)
    model = bundle.model.updated(event)
    pipeline = RankingPipeline(model, item_vectors=bundle.embeddings, fallback=fallback, popularity=counts)
    ranked = pipeline.recommend(HistoryBatch.from_interactions(updated, [u]), K)
    return [bundle.item_ids[i] for i in ranked.items[0] if i >= 0]
