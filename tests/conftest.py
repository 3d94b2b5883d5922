"""Fixtures shared by the test folders: the shipped ml-latest-small dataset and its item vectors from
the real encoder. The vectors are read from the default on-disk cache (``longtail.text``: keyed by
text, so once the catalogue has been encoded, by these tests or ``longtail evaluate``, any slice of
it costs a file read); the first run on a fresh machine encodes the catalogue once."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.data import load_dataset
from longtail.data.dataset import Dataset


@pytest.fixture(scope="session")
def ml() -> Dataset:
    return load_dataset("ml-latest-small")


@pytest.fixture(scope="session")
def ml_item_vectors(ml: Dataset) -> np.ndarray:
    """(n_items, d) unit vectors of the item text the models read (the default template)."""
    from longtail.text import embed_items

    return embed_items(ml.items)


@pytest.fixture(scope="session")
def ml_vectors(ml: Dataset) -> np.ndarray:
    """The ild@K vectors of ml-latest-small: the raw ``text`` column, as the protocol fixes."""
    from longtail.text import embed_items

    return embed_items(ml.items, template=None)
