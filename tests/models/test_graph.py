"""Item graph recommender on real interactions: the ``movies`` slice of ml-latest-small (150 users,
3,000 items, a third of them cold), with random unit vectors standing in for the text (what the walk
does with edges does not depend on what the text says)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from model_helpers import MovieSlice

from longtail.data.dataset import Dataset
from longtail.data.history import HistoryBatch
from longtail.errors import ConfigError
from longtail.models import make_model
from longtail.models.graph import GraphRecommender, personalized_pagerank, transition_matrix


class Catalogue:
    def __init__(self, movies: MovieSlice, item_ids: np.ndarray) -> None:
        self.data, self.movies = movies.X, movies
        self.item_ids = item_ids[: self.data.n_items]
        self.vectors = movies.random_vectors(16)
        self.cold = movies.cold

    def with_twin(self, user: int) -> tuple[np.ndarray, int]:
        """Vectors where one cold item is a near-copy of ``user``'s first history item."""
        vectors = self.vectors.copy()
        seen = self.data.csr[user].indices
        twin = int(self.cold[0])
        vectors[twin] = vectors[seen[0]] + 1e-3
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), twin


@pytest.fixture(scope="module")
def catalogue(movies: MovieSlice, ml: Dataset) -> Catalogue:
    return Catalogue(movies, np.asarray(ml.item_vocab.ids))


@pytest.fixture(scope="module")
def model(catalogue: Catalogue) -> GraphRecommender:
    return GraphRecommender(k=20).fit(catalogue.data, item_embeddings=catalogue.vectors)


def test_cold_items_are_reached_through_semantic_edges(catalogue: Catalogue) -> None:
    user = 3
    vectors, twin = catalogue.with_twin(user)
    mixed = GraphRecommender(k=20, semantic_weight=0.5).fit(catalogue.data, item_embeddings=vectors)
    query = catalogue.movies.queries([user])
    scores = mixed.score(query)[0]
    assert scores[twin] > 0
    items, _ = mixed.recommend(query, k=100)
    assert twin in items[0]  # a cold item, known only by its text, is recommended
    assert np.any(scores[catalogue.cold] > 0)
    why = mixed.explain(query, np.array([[twin]]))[0][0]
    assert why.evidence[0].item == catalogue.data.csr[user].indices[0]  # the walk came from its twin
    cf_only = GraphRecommender(k=20, semantic_weight=0.0).fit(catalogue.data, item_embeddings=vectors)
    np.testing.assert_array_equal(cf_only.score(query)[0][catalogue.cold], 0.0)


def test_pagerank_rows_are_distributions(model: GraphRecommender, catalogue: Catalogue) -> None:
    users = catalogue.movies.users[:20]
    ranks = personalized_pagerank(catalogue.data.csr[users], model.transition_, restart=0.3, iterations=10)
    assert ranks.shape == (20, catalogue.data.n_items) and np.all(ranks >= 0)
    np.testing.assert_allclose(ranks.sum(axis=1), 1.0, rtol=1e-4)
    unpenalised = GraphRecommender(k=20, beta=0.0, restart=0.3).fit(
        catalogue.data, item_embeddings=catalogue.vectors)
    np.testing.assert_allclose(unpenalised.score(catalogue.movies.queries(users)), ranks, rtol=1e-5, atol=1e-9)
    empty = personalized_pagerank(sp.csr_matrix((1, catalogue.data.n_items)), model.transition_, 0.3, 5)
    assert not empty.any()


def test_dangling_items_send_their_mass_back_to_the_start() -> None:
    edges = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], np.float32))
    P = transition_matrix(edges, sp.csr_matrix((3, 3), dtype=np.float32), semantic_weight=1.0)
    np.testing.assert_allclose(np.asarray(P.sum(axis=1)).ravel(), [1, 1, 0])
    start = sp.csr_matrix(np.array([[0, 0, 1], [1, 0, 0]], np.float32))
    ranks = personalized_pagerank(start, P, restart=0.5, iterations=30)
    np.testing.assert_allclose(ranks[0], [0, 0, 1], atol=1e-6)  # isolated: all mass stays home
    np.testing.assert_allclose(ranks[1], [2 / 3, 1 / 3, 0], atol=1e-6)  # two-node PageRank


def test_edge_export_round_trips(model: GraphRecommender, catalogue: Catalogue, tmp_path) -> None:
    path = model.export_edges(tmp_path / "edges.csv", item_ids=catalogue.item_ids)
    table = pd.read_csv(path, dtype={"src_item_id": str, "dst_item_id": str})
    assert list(table.columns) == ["src_item_id", "dst_item_id", "weight", "kind"]
    assert set(table["kind"]) == {"semantic", "cooccurrence"}
    index = {item_id: i for i, item_id in enumerate(catalogue.item_ids)}
    n = catalogue.data.n_items
    for kind, expected in (("semantic", model.semantic_), ("cooccurrence", model.cooccurrence_)):
        part = table[table["kind"] == kind]
        rows, cols = part["src_item_id"].map(index), part["dst_item_id"].map(index)
        rebuilt = sp.csr_matrix((part["weight"].astype(np.float32), (rows, cols)), shape=(n, n))
        assert (rebuilt != expected).nnz == 0
        assert (expected != expected.T).nnz == 0  # undirected: both directions are listed
    cold_rows = table["src_item_id"].isin(set(catalogue.item_ids[catalogue.cold]))
    assert set(table.loc[cold_rows, "kind"]) == {"semantic"}


def test_new_events_need_no_refit(model: GraphRecommender, catalogue: Catalogue) -> None:
    """The query carries the history: an event appended to it (or a history nobody was fitted on)
    moves the walk's start, the graph stays as fitted."""
    user = catalogue.movies.queries([5])
    before = model.recommend(user, k=5)[0][0]
    longer = HistoryBatch.from_lists([[*user.row(0), before[0]], [7]], catalogue.data.n_items)
    after = model.recommend(longer, k=5)[0]
    assert before[0] not in after[0] and 7 not in after[1]
    assert not np.array_equal(after[0], before)


def test_grid_and_params_are_checked(catalogue: Catalogue) -> None:
    assert set(GraphRecommender.param_grid) == {"k", "semantic_weight", "restart", "beta"}
    with pytest.raises(ConfigError, match="restart"):
        make_model("graph", restart=0.0).fit(catalogue.data, item_embeddings=catalogue.vectors)
    with pytest.raises(ConfigError, match="item_embeddings"):
        make_model("graph").fit(catalogue.data)
