"""`ProfileContext`: what every profile of one catalogue needs, computed once.

The keyword vocabulary with its word vectors and IDF, the item -> label matrix, the popularity
buckets and the activity cut points. Building it is the only step that may run the encoder (the
vocabulary's words, on-disk cached); every profile after that is array arithmetic.

Activity levels are relative to the dataset's users, because history lengths differ by an order of
magnitude between datasets (median 36 positives per user on ml-latest-small, 5 on
amazon-scientific-seqorder): below the median length a person is "light", from the median to the
90th percentile "regular", from the 90th percentile on "heavy" (the top decile, the "active users"
of user-fairness studies). Without the dataset's users, fixed cuts serve: "regular" from 5 items
(the 5-core rule by which the field drops users too sparse to learn from), "heavy" from 20 (the
least any MovieLens user was required to rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from longtail.data.buckets import popularity_buckets
from longtail.errors import ConfigError
from longtail.profile.interests import MAX_INTERESTS
from longtail.profile.keywords import (
    DEFAULT_METHOD,
    KEYBERT,
    METHODS,
    KeywordIndex,
    build_keyword_index,
)
from longtail.profile.labels import ItemLabels, item_labels
from longtail.profile.profile import Activity
from longtail.text import EmbeddingCache, TextEncoder, item_texts

if TYPE_CHECKING:
    from longtail.data.dataset import Dataset

FIXED_CUTS = (5, 20)
LEVELS = ("light", "regular", "heavy")


def activity_cuts(user_lengths: np.ndarray | None) -> tuple[int, int]:
    """History lengths where "regular" and "heavy" begin (module docstring): the median and the
    90th percentile of the users' lengths (users with no history left out), else ``FIXED_CUTS``."""
    lengths = None if user_lengths is None else np.asarray(user_lengths)
    lengths = None if lengths is None else lengths[lengths > 0]
    if lengths is None or len(lengths) == 0:
        return FIXED_CUTS
    regular = int(np.quantile(lengths, 0.5, method="higher"))
    heavy = int(np.quantile(lengths, 0.9, method="higher"))
    return regular, max(heavy, regular + 1)


@dataclass(frozen=True, eq=False)
class ProfileContext:
    """Catalogue-wide inputs of ``build_profiles`` / ``profile_user`` (see the module docstring)."""

    item_ids: np.ndarray  # (n_items,) str
    titles: np.ndarray  # (n_items,) str
    texts: tuple[str, ...]  # the item texts keywords are taken from (the encoder's item text)
    vectors: np.ndarray  # (n_items, d) float32 unit rows
    buckets: np.ndarray  # (n_items,) int8 HEAD / TAIL / COLD
    keywords: KeywordIndex
    labels: ItemLabels
    keyword_method: str = DEFAULT_METHOD
    cuts: tuple[int, int] = FIXED_CUTS
    user_lengths: np.ndarray | None = None  # sorted history lengths of the dataset's users
    top_keywords: int = 10
    top_genres: int = 10
    interest_keywords: int = 3
    max_interests: int = MAX_INTERESTS
    seed: int = 0

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @classmethod
    def from_catalogue(cls, items: pd.DataFrame, vectors: np.ndarray, item_counts: np.ndarray, *,
                       encoder: TextEncoder | None = None, method: str = DEFAULT_METHOD,
                       user_lengths: np.ndarray | None = None, cache: EmbeddingCache | bool | None = None,
                       min_df: int = 2, max_df: float = 0.5) -> ProfileContext:
        """From the catalogue in index order, its item vectors (``embed_items(items)``, same
        ``encoder``: words and items must share one space) and train(+valid) positives per item.
        ``user_lengths``: history lengths of the dataset's users, for relative activity levels;
        ``cache``: where the vocabulary's word vectors are cached (``embed_texts``'s argument)."""
        if method not in METHODS:
            raise ConfigError(f"unknown keyword method {method!r}; choose one of {', '.join(METHODS)}")
        vectors = np.asarray(vectors, dtype=np.float32)
        counts = np.asarray(item_counts)
        if vectors.ndim != 2 or len(vectors) != len(items) or len(counts) != len(items):
            raise ConfigError(f"profile context: {len(items)} items but vectors of shape {vectors.shape} "
                              f"and {len(counts)} item counts; all three must list the catalogue in index order")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, np.float32(1e-12))
        texts = item_texts(items)
        index = build_keyword_index(texts, embed_words=method == KEYBERT, encoder=encoder, cache=cache,
                                    min_df=min_df, max_df=max_df)
        titles = items["title"] if "title" in items.columns else items["item_id"]
        lengths = None if user_lengths is None else np.sort(np.asarray(user_lengths)[np.asarray(user_lengths) > 0])
        return cls(
            item_ids=items["item_id"].astype(str).to_numpy(dtype=object),
            titles=titles.fillna("").astype(str).to_numpy(dtype=object),
            texts=tuple(texts), vectors=vectors, buckets=popularity_buckets(counts),
            keywords=index, labels=item_labels(items), keyword_method=method,
            cuts=activity_cuts(lengths), user_lengths=lengths,
        )

    @classmethod
    def from_dataset(cls, ds: Dataset, vectors: np.ndarray, *, encoder: TextEncoder | None = None,
                     method: str = DEFAULT_METHOD, cache: EmbeddingCache | bool | None = None) -> ProfileContext:
        """``from_catalogue`` with the dataset's items, train+valid counts and users' lengths
        (distinct items, as ``UserProfile.n_items`` counts them)."""
        return cls.from_catalogue(ds.items, vectors, ds.item_counts, encoder=encoder, method=method,
                                  user_lengths=np.diff(ds.train_valid.csr.indptr), cache=cache)

    def activity(self, n: int) -> Activity:
        """The activity of a history of ``n`` distinct items."""
        regular, heavy = self.cuts
        level = LEVELS[0] if n < regular else LEVELS[1] if n < heavy else LEVELS[2]
        share = None
        if self.user_lengths is not None and len(self.user_lengths):
            share = round(float(np.searchsorted(self.user_lengths, n, side="left") / len(self.user_lengths)), 4)
        return Activity(level, share, self.cuts)
