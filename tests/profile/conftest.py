"""Fixtures of the profile tests: one ProfileContext of the shipped ml-latest-small (item vectors and
the keyword vocabulary's word vectors come from the on-disk embedding cache after the first run) and
its train+valid histories."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.data import HistoryBatch
from longtail.data.dataset import Dataset
from longtail.profile import ProfileContext


@pytest.fixture(scope="session")
def ctx(ml: Dataset, ml_item_vectors: np.ndarray) -> ProfileContext:
    return ProfileContext.from_dataset(ml, ml_item_vectors)


@pytest.fixture(scope="session")
def histories(ml: Dataset) -> HistoryBatch:
    """Every ml-latest-small user with a train+valid history."""
    batch = HistoryBatch.from_interactions(ml.train_valid)
    return batch[np.flatnonzero(batch.lengths > 0)]
