"""Fixtures shared by the test folders: the shipped ml-latest-small dataset and its item vectors from
the real encoder. The vectors are read from the default on-disk cache (``longtail.text``: keyed by
text, so once the catalogue has been encoded, by these tests or ``longtail evaluate``, any slice of
it costs a file read); the first run on a fresh machine encodes the catalogue once."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from pg_server import admin_url, drop_database, fresh_database

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


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[str | None]:
    """A real PostgreSQL server's admin URL (``tests/pg_server.py``), None when none can be had."""
    with admin_url() as url:
        yield url


@pytest.fixture
def pg_url(pg_admin: str | None) -> Iterator[str]:
    """An empty PostgreSQL database for one test, dropped after it."""
    if pg_admin is None:
        pytest.skip("no PostgreSQL server (see the loud message above)")
    url, name = fresh_database(pg_admin)
    yield url
    drop_database(pg_admin, name)
