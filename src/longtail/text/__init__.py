"""Semantic text layer: item text, sentence encoder (float32 (n, d) unit rows), on-disk cache, faiss index.

>>> from longtail.text import embed_items                          # doctest: +SKIP
>>> vectors = embed_items(dataset.items)                           # (n_items, 384), cached on disk
>>> ild_vectors = embed_items(dataset.items, template=None)        # the raw ``text`` column, as is
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from longtail.text.cache import EmbeddingCache, default_cache_root
from longtail.text.encoder import TextEncoder
from longtail.text.item_text import DEFAULT_TEMPLATE, item_texts

if TYPE_CHECKING:
    from longtail.text.index import VectorIndex

__all__ = [
    "DEFAULT_TEMPLATE",
    "EmbeddingCache",
    "TextEncoder",
    "VectorIndex",
    "embed_items",
    "embed_texts",
    "item_texts",
]



def __getattr__(name: str) -> object:
    """``VectorIndex`` imports faiss on first use only: encoding never needs it."""
    if name == "VectorIndex":
        from longtail.text.index import VectorIndex

        return VectorIndex
    raise AttributeError(f"module 'longtail.text' has no attribute {name!r}")


_default_encoder: TextEncoder | None = None
_default_caches: dict[Path, EmbeddingCache] = {}


def _encoder(encoder: TextEncoder | None) -> TextEncoder:
    global _default_encoder
    if encoder is not None:
        return encoder
    if _default_encoder is None:
        _default_encoder = TextEncoder()
    return _default_encoder


def _cache(cache: EmbeddingCache | bool | None) -> EmbeddingCache | None:
    """None/True: the default cache (one instance per root, so its loaded shards are reused)."""
    if cache is False:
        return None
    if isinstance(cache, EmbeddingCache):
        return cache
    root = default_cache_root()
    if root not in _default_caches:
        _default_caches[root] = EmbeddingCache(root)
    return _default_caches[root]


def embed_texts(texts: Sequence[str], *, encoder: TextEncoder | None = None,
                cache: EmbeddingCache | bool | None = None) -> np.ndarray:
    """float32 (len(texts), d) unit vectors of ``texts`` exactly as given.

    ``encoder``: None = the default ``TextEncoder()``. ``cache``: None/True = the default on-disk
    cache (``$LONGTAIL_CACHE/embeddings`` or ``~/.cache/longtail/embeddings``), False = no cache,
    or an ``EmbeddingCache``."""
    store = _cache(cache)
    model = _encoder(encoder)
    if store is None:
        return model.encode(list(texts))
    return store.encode_with_cache(model, texts)


def embed_items(items: pd.DataFrame, *, template: str | None = DEFAULT_TEMPLATE, max_chars: int = 1000,
                encoder: TextEncoder | None = None,
                cache: EmbeddingCache | bool | None = None) -> np.ndarray:
    """float32 (len(items), d) unit vectors of the catalogue rows, in row order.

    Texts come from ``item_texts(items, template, max_chars)``; ``template=None`` embeds the raw
    ``text`` column exactly (what the protocol's ILD metric uses)."""
    return embed_texts(item_texts(items, template, max_chars), encoder=encoder, cache=cache)
