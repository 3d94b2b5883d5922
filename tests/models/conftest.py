"""Fixtures of the model tests (helpers in ``model_helpers.py``; ``ml`` and its cached text vectors
in ``tests/conftest.py``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from model_helpers import MovieSlice, slice_of

from longtail.data.dataset import Dataset
from longtail.models import Recommender

N_USERS, N_ITEMS = 150, 3000


@pytest.fixture(scope="session")
def movies(ml: Dataset, ml_item_vectors: np.ndarray) -> MovieSlice:
    """150 users x 3,000 items of ml-latest-small (~3,700 positives, ~1,000 warm items)."""
    return slice_of(ml.train_valid, ml.test, ml_item_vectors, N_USERS, N_ITEMS)


@pytest.fixture
def count_fits(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Counter[str]]:
    """``count_fits(*classes)`` -> a Counter of ``_fit`` calls by model name, for this test."""

    def count(*classes: type[Recommender]) -> Counter[str]:
        fits: Counter[str] = Counter()
        for cls in classes:
            original = cls._fit

            def counting(self, X, item_embeddings, _original=original):  # type: ignore[no-untyped-def]
                fits[self.name] += 1
                return _original(self, X, item_embeddings)

            monkeypatch.setattr(cls, "_fit", counting)
        return fits

    return count
