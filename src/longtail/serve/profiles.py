"""Portraits of users for ``GET /users/{id}/profile``: ``longtail.profile`` over the live history.

The profile context (keyword vocabulary and its word vectors, labels, buckets) is built once per
live state, on first use, from the artifact's catalogue, with the server's encoder (the one the
artifact's vectors came from: words and items must share one space). Items posted since the
artifact are in the history the endpoint lists but not in the portrait (``left_out``) until the
next artifact: rebuilding the vocabulary on every posted item would cost seconds per write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd

from longtail.profile import ProfileContext, UserProfile, profile_user
from longtail.serve.bundle import Bundle
from longtail.text import TextEncoder


class Portraits:
    """The profile context of one artifact (one per live state), built once (thread-safe), shared."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._context: ProfileContext | None = None

    def context(self, bundle: Bundle, encoder: Callable[[], TextEncoder]) -> ProfileContext:
        """The context over the artifact's items (``encoder()`` is asked for only the first time)."""
        with self._lock:
            if self._context is None:
                n = len(bundle.item_ids)
                items = pd.DataFrame({"item_id": bundle.item_ids, "title": bundle.titles, "text": bundle.texts})
                if bundle.categories is not None:
                    items["categories"] = bundle.categories
                self._context = ProfileContext.from_catalogue(
                    items, bundle.embeddings[:n], bundle.popularity, encoder=encoder(),
                    user_lengths=np.diff(bundle.train.csr.indptr))
            return self._context

    def portrait(self, bundle: Bundle, encoder: Callable[[], TextEncoder], items: np.ndarray,
                 times: np.ndarray) -> tuple[UserProfile | None, int]:
        """The profile of a history (oldest first) and how many of its items it leaves out
        (posted since the artifact); None when none of the items is the artifact's."""
        context = self.context(bundle, encoder)
        known = items < context.n_items
        if not known.any():
            return None, int(len(items))
        return profile_user(context, items[known].tolist(), times[known].tolist()), int((~known).sum())
