"""Fixtures of the text-layer tests: real titles, the real encoder (loaded once), a private cache."""

from __future__ import annotations

import pandas as pd
import pytest

from longtail.data import resolve_dataset
from longtail.text import TextEncoder


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write to the user's ~/.cache: the default cache root points into a temp folder."""
    monkeypatch.setenv("LONGTAIL_CACHE", str(tmp_path_factory.mktemp("longtail-cache")))


@pytest.fixture(scope="session")
def items() -> pd.DataFrame:
    """The shipped ml-latest-small catalogue."""
    folder = resolve_dataset("ml-latest-small")
    path = next(p for p in sorted(folder.glob("items.*")))
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def titles(items: pd.DataFrame) -> list[str]:
    """50 real movie titles."""
    return items["title"].head(50).astype(str).tolist()


@pytest.fixture(scope="session")
def encoder() -> TextEncoder:
    return TextEncoder()
