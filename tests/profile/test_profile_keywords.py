"""Interest keywords: they come from the history's own item text, and the vectorised KeyBERT
ranking is KeyBERT's (``KeyBERT.extract_keywords`` with precomputed embeddings)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from longtail.data import HistoryBatch
from longtail.profile import KEYBERT, TFIDF, ProfileContext, build_profiles
from longtail.profile.keywords import build_keyword_index, keyword_scores
from longtail.profile.topk import sparse_topk

# every 25th user with a history: short and long histories alike, no hand-picked id
SAMPLE = slice(0, None, 25)


def occurs(word: str, text: str) -> bool:
    """``word`` as a whole token of ``text`` (case-insensitive)."""
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text.lower()) is not None


@pytest.mark.parametrize("method", [KEYBERT, TFIDF])
def test_top_keywords_come_from_the_history_items_text(ctx: ProfileContext, histories: HistoryBatch,
                                                       method: str) -> None:
    sample = histories[np.arange(len(histories))[SAMPLE]]
    profiles = build_profiles(ctx if method == ctx.keyword_method else _with_method(ctx, method), sample)
    assert all(p.keywords for p in profiles)
    for r, profile in enumerate(profiles):
        texts = [ctx.texts[i] for i in sample.row(r)]
        for word, _ in profile.keywords:
            assert any(occurs(word, text) for text in texts), (profile.user, word)
        scores = [score for _, score in profile.keywords]
        assert scores == sorted(scores, reverse=True)
        for interest in profile.interests:  # a group's keywords come from the group's items
            for word, _ in interest.keywords:
                assert any(occurs(word, ctx.texts[i]) for i in interest.items), (profile.user, word)


def _with_method(ctx: ProfileContext, method: str) -> ProfileContext:
    from dataclasses import replace

    return replace(ctx, keyword_method=method)


def test_template_labels_and_catalogue_wide_words_are_not_keywords(ctx: ProfileContext) -> None:
    words = set(ctx.keywords.words.tolist())
    assert "genres" not in words  # in every item text of the template: not an interest
    assert {"horror", "animation", "sci-fi"} <= words
    assert not any(w.isdigit() for w in words)  # years are not interests


@pytest.mark.slow  # importing keybert imports sentence-transformers: ~12 s here
def test_vectorised_keybert_equals_keybert(ctx: ProfileContext, histories: HistoryBatch) -> None:
    """The same keywords and scores as ``KeyBERT.extract_keywords(docs, doc_embeddings=...,
    word_embeddings=...)`` over the same vocabulary (its per-document loop, here one product)."""
    keybert = pytest.importorskip("keybert")
    from keybert.backend import BaseEmbedder

    class Precomputed(BaseEmbedder):  # every embedding is passed in: nothing to encode
        def embed(self, documents: list[str], verbose: bool = False) -> np.ndarray:
            raise AssertionError("KeyBERT should not encode anything here")

    sample = histories[np.arange(len(histories))[SAMPLE][:8]]
    docs = [" ".join(ctx.texts[i] for i in sample.row(r)) for r in range(len(sample))]
    members = sample.csr()
    vectors = members @ ctx.vectors
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectorizer = ctx.keywords.vectorizer
    expected = keybert.KeyBERT(model=Precomputed()).extract_keywords(
        docs, vectorizer=type(vectorizer)(**{**vectorizer.get_params(), "vocabulary": list(ctx.keywords.words)}),
        doc_embeddings=vectors, word_embeddings=ctx.keywords.word_vectors, top_n=5)
    scores = keyword_scores(ctx.keywords, (members @ ctx.keywords.item_terms).tocsr(), vectors, KEYBERT)
    indptr, columns, values = sparse_topk(scores, 5)
    for r, theirs in enumerate(expected):
        ours = dict(zip(ctx.keywords.words[columns[indptr[r]:indptr[r + 1]]], values[indptr[r]:indptr[r + 1]],
                        strict=True))
        assert sorted(ours) == sorted(word for word, _ in theirs)
        for word, score in theirs:
            assert ours[word] == pytest.approx(score, abs=1e-3)


def test_tfidf_scores_are_counts_times_idf() -> None:
    index = build_keyword_index(["red apple apple", "green apple", "red car", "blue car"], embed_words=False,
                                min_df=1, max_df=1.0)
    counts = sp.csr_matrix(np.asarray(index.item_terms[[0, 2]].sum(axis=0)))
    scores = keyword_scores(index, counts, None, TFIDF).toarray().ravel()
    words = list(index.words)
    n, df = 4, {"apple": 2, "red": 2, "car": 2}
    for word, count in (("apple", 2), ("red", 2), ("car", 1)):
        assert scores[words.index(word)] == pytest.approx(count * (np.log((1 + n) / (1 + df[word])) + 1), rel=1e-5)


def test_sparse_topk_breaks_ties_by_column() -> None:
    scores = sp.csr_matrix(np.array([[0.5, 0.9, 0.5, 0.0, 0.5], [0, 0, 0, 0, 0], [0.1, 0, 0, 0, 0]], np.float32))
    indptr, columns, values = sparse_topk(scores, 3)
    assert indptr.tolist() == [0, 3, 3, 4]
    assert columns.tolist() == [1, 0, 2, 0]
    assert values.tolist() == pytest.approx([0.9, 0.5, 0.5, 0.1])


def test_a_catalogue_too_small_for_the_document_frequency_rules_keeps_its_words() -> None:
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["Red Apple", "Green Pear"], "text": ["", ""]})
    vectors = np.eye(2, 4, dtype=np.float32)
    ctx = ProfileContext.from_catalogue(items, vectors, np.array([1, 0]), method=TFIDF)
    assert set(ctx.keywords.words) == {"red", "apple", "green", "pear"}
