"""Fixtures of the re-ranking tests: random unit vectors for unit tests, the real catalogue and its
cached embeddings (default cache root) for the integration tests."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.data import load_dataset
from longtail.data.dataset import Dataset


@pytest.fixture(scope="session")
def ml() -> Dataset:
    return load_dataset("ml-latest-small")


@pytest.fixture(scope="session")
def ml_vectors(ml: Dataset) -> np.ndarray:
    """The ild@K vectors of ml-latest-small (encoded once, ~30 s, then read from the disk cache)."""
    from longtail.text import embed_items

    return embed_items(ml.items, template=None)
