"""Helpers shared by the re-ranking tests."""

from __future__ import annotations

import numpy as np


def unit_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    """(n, d) float32 random unit rows."""
    vectors = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
