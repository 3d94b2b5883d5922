"""The field's baselines (issue 15): ItemKNN's weightings are implicit's, and weight as documented;
RP3beta is the formula of Paudel et al. / Dacrema et al. and its beta pushes the tail; BPR's fold-in
is deterministic, reads the history as a set of warm items and recovers implicit's trained users.
Batch independence, save/load and explanations of every registered model: test_estimator_api.py."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from model_helpers import MovieSlice

from longtail.common.scores import scored_mask
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models import make_model
from longtail.models.bpr import BPR
from longtail.models.rp3beta import rp3beta_similarity


def interactions(rows: list[list[int]], n_items: int) -> Interactions:
    users = np.repeat(np.arange(len(rows)), [len(r) for r in rows]).astype(np.int32)
    items = np.concatenate([np.asarray(r, np.int32) for r in rows])
    return Interactions(users, items, np.arange(len(items), dtype=np.int64), len(rows), n_items)


def top_popularity(movies: MovieSlice, name: str, **params: object) -> float:
    """Mean training popularity of the top-20 items recommended to the slice's users."""
    items, _ = movies.fit(name, **params).recommend(movies.queries(), k=20)
    return float(movies.counts[items[items >= 0]].mean())


# -- ItemKNN --------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # implicit's recommenders pass it COO
@pytest.mark.parametrize("weighting", ["cosine", "tfidf", "bm25"])
def test_itemknn_similarity_is_implicits(weighting: str, movies: MovieSlice) -> None:
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

    library = {"cosine": CosineRecommender, "tfidf": TFIDFRecommender, "bm25": BM25Recommender}[weighting]
    reference = library(K=30, num_threads=1)
    reference.fit(sp.csr_matrix(movies.X.csr, dtype=np.float64), show_progress=False)
    model = make_model("itemknn", weighting=weighting, k=30).fit(movies.X)
    np.testing.assert_allclose(model.similarity_.toarray(), reference.similarity.toarray(), rtol=1e-6, atol=1e-7)
    # and the score is implicit's recommend: history (binary) @ similarity
    user = movies.queries(movies.users[[3]])
    ids, expected = reference.recommend(0, user.csr(dtype=np.float64), N=movies.X.n_items,
                                        filter_already_liked_items=False)
    scores = model.score(user)[0]
    np.testing.assert_allclose(scores[ids], expected, rtol=1e-5)
    untouched = np.setdiff1d(np.flatnonzero(movies.counts > 0), ids)
    assert len(ids) > 50 and (scores[untouched] == 0).all()


def test_itemknn_idf_weightings_count_short_histories_more() -> None:
    """Item 0 co-occurs with item 1 in a short history and with item 2 in a long one, otherwise
    alike: cosine cannot tell them apart, tfidf and bm25 (idf of the history) prefer item 1."""
    rows = [[0, 1], [0, 2, 3, 4, 5, 6, 7], [1, 8], [2, 9], [3, 4, 5, 6, 7, 8, 9]]
    data = interactions(rows, 10)
    sims = {w: make_model("itemknn", weighting=w, k=10).fit(data).similarity_ for w in ("cosine", "tfidf", "bm25")}
    assert sims["cosine"][0, 1] == pytest.approx(sims["cosine"][0, 2])
    for weighting in ("tfidf", "bm25"):
        assert sims[weighting][0, 1] > 1.2 * sims[weighting][0, 2]


def test_itemknn_bm25_recommends_less_popular_items_than_cosine(movies: MovieSlice) -> None:
    """BM25 damps popular items (their length norm) and leaves the columns unnormalised."""
    cosine = top_popularity(movies, "itemknn", weighting="cosine", k=50)
    bm25 = top_popularity(movies, "itemknn", weighting="bm25", k=50)
    assert bm25 < 0.7 * cosine


def test_itemknn_rejects_unknown_weighting(movies: MovieSlice) -> None:
    with pytest.raises(ConfigError, match="weighting"):
        make_model("itemknn", weighting="jaccard").fit(movies.X)


# -- RP3beta --------------------------------------------------------------------------------------
def dense_rp3beta(X: np.ndarray, alpha: float, beta: float, k: int) -> np.ndarray:
    """The formula written out densely (Dacrema et al.'s RP3betaRecommender)."""
    p_ui = (X / np.maximum(X.sum(1, keepdims=True), 1)) ** alpha
    p_iu = (X.T / np.maximum(X.T.sum(1, keepdims=True), 1)) ** alpha
    popularity = X.sum(0)
    W = p_iu @ p_ui * np.where(popularity > 0, np.maximum(popularity, 1) ** -beta, 0.0)[None, :]
    np.fill_diagonal(W, 0.0)
    for row in W:
        row[np.argsort(-row, kind="stable")[k:]] = 0.0
    return W / np.maximum(W.sum(1, keepdims=True), 1e-300)


@pytest.mark.parametrize(("alpha", "beta", "k"), [(1.0, 0.0, 40), (0.5, 0.6, 40), (0.8, 0.3, 5)])
def test_rp3beta_is_the_formula(alpha: float, beta: float, k: int) -> None:
    rng = np.random.default_rng(0)
    X = (rng.random((60, 40)) < 0.15).astype(np.float64)
    X[:, 7] = 0.0  # an item nobody has: never reached, never a neighbour
    expected = dense_rp3beta(X, alpha, beta, k)
    got = rp3beta_similarity(sp.csr_matrix(X), alpha, beta, k, block=7).toarray()  # several blocks
    assert (got[:, 7] == 0).all() and (got[7] == 0).all()
    assert ((got > 0).sum(1) <= k).all()
    for g, e in zip(got, expected, strict=True):  # ties at the k-th place may keep other items
        np.testing.assert_allclose(np.sort(g[g > 0]), np.sort(e[e > 0]), rtol=1e-5)
    if k >= 39:  # nothing cut: the same matrix
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-12)


def test_rp3beta_beta_pushes_the_tail(movies: MovieSlice) -> None:
    walk = top_popularity(movies, "rp3beta", alpha=1.0, beta=0.0, k=100)
    damped = top_popularity(movies, "rp3beta", alpha=1.0, beta=0.6, k=100)
    assert damped < 0.7 * walk


def test_rp3beta_leaves_cold_items_unscored(movies: MovieSlice) -> None:
    scores = movies.fit("rp3beta").score(movies.queries(movies.users[:5]))
    assert not scored_mask(scores[:, movies.cold]).any()
    assert scored_mask(scores[:, movies.counts > 0]).all()


# -- BPR ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bpr(movies: MovieSlice) -> BPR:
    model = movies.fit("bpr", factors=16, iterations=30)
    assert isinstance(model, BPR)
    return model


def test_bpr_fold_in_is_deterministic_and_reads_a_set_of_warm_items(bpr: BPR, movies: MovieSlice) -> None:
    users = movies.users[:8]
    batch = movies.queries(users)
    first = bpr.score(batch)
    np.testing.assert_array_equal(bpr.score(batch), first)
    refit = movies.fit("bpr", factors=16, iterations=30)  # one thread, fixed seed: the same model
    np.testing.assert_array_equal(refit.score(batch), first)
    # order does not matter, and items without a training interaction carry nothing
    lists = [batch.row(r)[::-1].tolist() + [int(movies.cold[r])] for r in range(len(batch))]
    reordered = HistoryBatch.from_lists(lists, movies.X.n_items)
    np.testing.assert_allclose(bpr.score(reordered), first, rtol=1e-5, atol=1e-6)
    assert not scored_mask(first[:, movies.cold]).any()


def test_bpr_fold_in_recovers_the_trained_users(bpr: BPR, movies: MovieSlice) -> None:
    """The folded-in vector of a training user points where implicit's own one does."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    reference = BayesianPersonalizedRanking(factors=16, learning_rate=bpr.learning_rate,
                                            regularization=bpr.regularization, iterations=30,
                                            num_threads=1, random_state=bpr.seed)
    reference.fit(sp.csr_matrix(movies.X.csr, dtype=np.float32), show_progress=False)
    np.testing.assert_array_equal(np.asarray(reference.item_factors), bpr.item_factors_)
    users = movies.users[np.diff(movies.X.csr.indptr)[movies.users] >= 10][:40]
    folded, _, _ = bpr.fold_in(movies.queries(users))
    trained = np.asarray(reference.user_factors)[users, :-1]
    cosine = (folded * trained).sum(1) / np.linalg.norm(folded, axis=1) / np.linalg.norm(trained, axis=1)
    assert np.median(cosine) > 0.6


def test_bpr_explanations_add_up_the_history_terms(bpr: BPR, movies: MovieSlice) -> None:
    """Each history item's weight is its term share_i * v_i . v_item of the score."""
    user = movies.queries(movies.users[[5]])
    items, _ = bpr.recommend(user, k=3)
    _, events, shares = bpr.fold_in(user)
    V = bpr.item_factors_[:, :-1]
    for item in items[0]:
        terms = shares * (V[user.items[events]] @ V[item])
        why = bpr.explain(user, np.array([[item]]))[0][0]
        top = np.argsort(-terms, kind="stable")[: len(why.evidence)]
        assert [e.item for e in why.evidence] == user.items[events][top].tolist()
        assert [e.weight for e in why.evidence] == pytest.approx(terms[top].tolist(), rel=1e-5)
