"""Interest keywords of histories: KeyBERT's scoring, vectorised over users, or TF-IDF.

Candidates of a history are the words of its items' text (one ``CountVectorizer`` over the
catalogue, English stop words, the item-text template's labels such as "Genres" dropped, words in
one item only or in more than half the catalogue dropped: the first name a single item, not an
interest, and the second say nothing about a person). Each method ranks a history's candidates:

* ``keybert`` — KeyBERT's cosine ranking (``KeyBERT.extract_keywords`` with ``doc_embeddings`` and
  ``word_embeddings``, no MMR): cosine(word vector, history vector), the history vector being the
  normalised mean of its item vectors. The word vectors come from the same sentence encoder as the
  items', computed once per catalogue and kept in the on-disk embedding cache. One matrix product
  per chunk of users replaces KeyBERT's loop over documents;
  ``tests/profile/test_profile_keywords.py`` checks both give the same keywords.
* ``tfidf`` — scikit-learn's TF-IDF: the count of the word in the history's items times its
  smoothed inverse document frequency over the catalogue's items.

Which one is the default was decided by ``benchmarks/keywords_check.py`` (docs/results.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import (
    ENGLISH_STOP_WORDS,
    CountVectorizer,
    TfidfTransformer,
)

from longtail.errors import ConfigError
from longtail.profile.topk import sparse_topk
from longtail.text import EmbeddingCache, TextEncoder, embed_texts
from longtail.text.item_text import LABELS

KEYBERT, TFIDF = "keybert", "tfidf"
METHODS = (KEYBERT, TFIDF)
DEFAULT_METHOD = KEYBERT  # by benchmarks/keywords_check.py: see docs/results.md "Profiles and keywords"
# Words of letters (two at least, hyphenated parts allowed), or digits and one letter: "sci-fi",
# "adhesive-backed", "3d" and "1970s" stay; numbers, sizes and part codes ("1995", "100mm",
# "m5x10mm", "ne555n") and the "s" of "Schindler's" are not interests.
TOKEN_PATTERN = r"(?u)\b(?:[^\W\d_]{2,}|\d+[^\W\d_])(?:-[^\W\d_]+)*\b"
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | {label.lower() for label in LABELS.values()})
_CHUNK_CELLS = 1 << 23  # dense (users x vocabulary) scores per chunk: 32 MB of float32


@dataclass(frozen=True, eq=False)
class KeywordIndex:
    """The catalogue's keyword vocabulary, computed once: ``item_terms`` (n_items, V) counts,
    ``idf`` (V,), ``word_vectors`` (V, d) unit rows (None when only TF-IDF is needed)."""

    words: np.ndarray  # (V,) str, sorted
    item_terms: sp.csr_matrix
    idf: np.ndarray
    word_vectors: np.ndarray | None
    vectorizer: CountVectorizer | None  # None: the catalogue's text has no usable word

    def analyze(self, text: str) -> list[str]:
        """The candidate words of one text (lower-cased tokens, stop words removed)."""
        return [] if self.vectorizer is None else self.vectorizer.build_analyzer()(text)


def _vectorizer(min_df: int, max_df: float) -> CountVectorizer:
    return CountVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN, stop_words=STOP_WORDS,
                           min_df=min_df, max_df=max_df, dtype=np.float32)


def build_keyword_index(texts: Sequence[str], *, embed_words: bool = True, encoder: TextEncoder | None = None,
                        cache: EmbeddingCache | bool | None = None, min_df: int = 2,
                        max_df: float = 0.5) -> KeywordIndex:
    """Fit the vocabulary on the item texts and (``embed_words``) embed each word once
    (``cache``: as ``embed_texts``; None = the default on-disk cache).

    A catalogue too small for ``min_df`` / ``max_df`` (nothing survives) keeps every non-stop word."""
    if min_df < 1 or not 0.0 < max_df <= 1.0:
        raise ConfigError(f"keyword min_df must be >= 1 and max_df in (0, 1], got {min_df}, {max_df}")
    texts = list(texts)
    vectorizer: CountVectorizer | None = None
    for low, high in ((min_df, max_df), (1, 1.0)):
        try:
            vectorizer = _vectorizer(low, high)
            counts = vectorizer.fit_transform(texts).tocsr()
            break
        except ValueError:  # "no terms remain" / "max_df < min_df" on a tiny or stop-word catalogue
            vectorizer = None
    if vectorizer is None:
        return KeywordIndex(np.zeros(0, dtype=object), sp.csr_matrix((len(texts), 0), dtype=np.float32),
                            np.zeros(0, np.float32), np.zeros((0, 0), np.float32) if embed_words else None, None)
    words = vectorizer.get_feature_names_out().astype(object)
    idf = TfidfTransformer(norm=None, smooth_idf=True).fit(counts).idf_.astype(np.float32)
    vectors = embed_texts(list(words), encoder=encoder, cache=cache) if embed_words else None
    return KeywordIndex(words, counts, idf, vectors, vectorizer)


def keyword_scores(index: KeywordIndex, term_counts: sp.csr_matrix, queries: np.ndarray | None,
                   method: str) -> sp.csr_matrix:
    """(r, V) scores of each row's candidate words (the stored entries of ``term_counts``, the
    summed counts of the words in the row's items). ``queries`` (r, d): the rows' unit vectors,
    read by ``keybert`` only."""
    term_counts = term_counts.tocsr()
    if method == TFIDF:
        return sp.csr_matrix(term_counts.multiply(index.idf[None, :]), dtype=np.float32)
    if method != KEYBERT:
        raise ConfigError(f"unknown keyword method {method!r}; choose one of {', '.join(METHODS)}")
    if index.word_vectors is None or queries is None:
        raise ConfigError("keybert keywords need word vectors and history vectors")
    scores = term_counts.copy().astype(np.float32)
    step = max(1, _CHUNK_CELLS // max(len(index.words), 1))
    for start in range(0, term_counts.shape[0], step):
        stop = min(start + step, term_counts.shape[0])
        lo, hi = term_counts.indptr[start], term_counts.indptr[stop]
        if lo == hi:
            continue
        dense = queries[start:stop] @ index.word_vectors.T  # (chunk, V) cosine: unit rows
        local = np.repeat(np.arange(stop - start), np.diff(term_counts.indptr[start:stop + 1]))
        scores.data[lo:hi] = dense[local, term_counts.indices[lo:hi]]
    return scores


def top_keywords(index: KeywordIndex, term_counts: sp.csr_matrix, queries: np.ndarray | None, method: str,
                 k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` best candidate words of each row, best first (ties by word order), with scores."""
    scores = keyword_scores(index, term_counts, queries, method)
    indptr, columns, values = sparse_topk(scores, k)
    words = index.words[columns].tolist()
    rounded = np.round(values.astype(np.float64), 4).tolist()
    pairs = list(zip(words, rounded, strict=True))
    return [pairs[indptr[r]:indptr[r + 1]] for r in range(len(indptr) - 1)]
