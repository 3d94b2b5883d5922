"""Fixtures of the scale tests: a 300-item slice of ml-latest-small (the most popular films: real
titles, texts and ratings, small enough for the real encoder), a private embedding cache, and one
Ray session for the whole module, so Ray's start-up is paid once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from slices import popular_slice


@pytest.fixture(scope="session")
def slice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return popular_slice(tmp_path_factory.mktemp("ml-top300"))


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$LONGTAIL_CACHE`` in a temp folder for the module (never the user's ~/.cache)."""
    cache = tmp_path_factory.mktemp("scale-cache")
    previous = os.environ.get("LONGTAIL_CACHE")
    os.environ["LONGTAIL_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("LONGTAIL_CACHE", None)
    else:
        os.environ["LONGTAIL_CACHE"] = previous


@pytest.fixture(scope="module")
def ray_session(private_cache: Path) -> Iterator[object]:
    """A local Ray instance of 2 CPUs; the backends find it initialised, use it and leave it up."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'longtail[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
