"""Test doubles of the text encoder (importable by name: tests/text is on sys.path under pytest)."""

from __future__ import annotations

import hashlib

import numpy as np

from longtail.text import TextEncoder


class FakeEncoder:
    """Deterministic pseudo-embeddings (a hash seeds each row), recording every text it encodes."""

    def __init__(self, dim: int = 16, fingerprint: str = "fake-v1") -> None:
        self.dim = dim
        self._fingerprint = fingerprint
        self.received: list[str] = []

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def encode(self, texts: list[str]) -> np.ndarray:
        self.received.extend(texts)
        return expected_vectors(texts, self.dim)


def expected_vectors(texts: list[str], dim: int = 16) -> np.ndarray:
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        row = np.random.default_rng(seed).normal(size=dim)
        rows.append(row / np.linalg.norm(row))
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), dim)


class SpyEncoder:
    """Wraps a real encoder and records the texts that actually reach it."""

    def __init__(self, inner: TextEncoder) -> None:
        self.inner = inner
        self.received: list[str] = []

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def encode(self, texts: list[str]) -> np.ndarray:
        self.received.extend(texts)
        return self.inner.encode(texts)
