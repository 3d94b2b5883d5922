"""Fixtures of the service tests: a small real artifact (itemknn on amazon-digital-music-sample,
or a 300-item subset of ml-latest-small when ../shared/data is absent), stores with keys, and
real ``uvicorn`` subprocesses on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_helpers import Keys, Server, make_keys
from slices import popular_slice

from longtail.serve import create_app
from longtail.serve.bundle import Bundle, save_bundle, train_bundle

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def serve_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private embedding cache for the whole session (never the user's ~/.cache)."""
    cache = tmp_path_factory.mktemp("serve-cache")
    previous = os.environ.get("LONGTAIL_CACHE")
    os.environ["LONGTAIL_CACHE"] = str(cache)
    yield {**os.environ, "LONGTAIL_CACHE": str(cache), "OPENBLAS_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if previous is None:
        os.environ.pop("LONGTAIL_CACHE", None)
    else:
        os.environ["LONGTAIL_CACHE"] = previous


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    music = SHARED / "amazon-digital-music-sample"
    if (music / "items.csv").is_file():
        return music
    return popular_slice(tmp_path_factory.mktemp("ml-subset"))


# Titles and categories only: encoding the full texts (descriptions) costs ~3x longer on 2 cores.
TEMPLATE = "{title}. {genres}{category}"


@pytest.fixture(scope="session")
def bundle(serve_env: dict[str, str], dataset_dir: Path) -> Bundle:
    return train_bundle(dataset_dir, "itemknn", template=TEMPLATE)


@pytest.fixture(scope="session")
def pop_bundle(serve_env: dict[str, str], dataset_dir: Path) -> Bundle:
    return train_bundle(dataset_dir, "pop", template=TEMPLATE)  # vectors come from the cache


@pytest.fixture
def artifact(tmp_path: Path, bundle: Bundle) -> Path:
    return save_bundle(bundle, tmp_path / "model")


@pytest.fixture
def client(artifact: Path, keys: Keys) -> Iterator[TestClient]:
    """The app in process (Starlette's TestClient) on ``artifact`` and the test's store."""
    with TestClient(create_app(artifact, keys.url), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every service test that takes a store runs on both backends, unchanged."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'service.db'}"


@pytest.fixture
def keys(store_url: str) -> Keys:
    return make_keys(store_url)


@pytest.fixture
def start_server(serve_env: dict[str, str], tmp_path: Path) -> Iterator:
    started: list[Server] = []

    def start(artifact: Path, store_url: str, *extra_args: str) -> Server:
        server = Server(artifact, store_url, serve_env, tmp_path / "server.log", tuple(extra_args))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
