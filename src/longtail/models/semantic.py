"""Text-only recommenders: a user is the texts of the items they liked, and every catalogue item —
cold ones included, known only by their text — is scored by embedding similarity to that history.

Both models keep each user's time-ordered history (the order the protocol defines: timestamp, then
item id), so recency can weigh recent tastes more, and ``partial_fit`` only appends events: there is
no learned parameter to retrain.

- ``semantic``: the user profile is the recency-weighted mean of the history's item vectors; the score
  is ``cos(profile, item)``. One vector per user: fast, but a user with two tastes gets a profile that
  sits between them and matches neither well.
- ``semantic-attn``: every candidate attends over the user's history (``softmax(sim / temperature)``,
  times recency), so a candidate is scored by the history items it resembles. The temperature spans
  the mean profile (``None``: infinite temperature, the same ranking as ``semantic``) and the single
  nearest history item (temperature -> 0); ``param_grid`` lets valid decide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import Recommender

# Elements of one (history rows x catalogue) similarity block in semantic-attn: three float32 arrays
# of this size (similarities, attention logits, the gathered maxima) bound its working memory
# (~200 MB), whatever the batch size.
BLOCK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Histories:
    """Time-ordered histories of a block of users, flattened: entries of row ``r`` are
    ``indptr[r]:indptr[r + 1]``, oldest first."""

    items: np.ndarray  # (m,) int64 item indices
    age: np.ndarray  # (m,) int64 events after this one in the row's history (0 = most recent)
    indptr: np.ndarray  # (n_rows + 1,) int64

    @property
    def rows(self) -> np.ndarray:
        """(m,) row of each entry."""
        return np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))


def log_recency(age: np.ndarray, half_life: float | None) -> np.ndarray:
    """``log r`` with ``r = 0.5 ** (age / half_life)``: an event ``half_life`` positions back counts
    half as much as the newest; ``None`` weighs the whole history uniformly (0). float32 (m,)."""
    if half_life is None:
        return np.zeros(len(age), dtype=np.float32)
    return (-np.log(2.0) / float(half_life) * np.asarray(age, np.float64)).astype(np.float32)


def attention_pool(sim: np.ndarray, bias: np.ndarray, starts: np.ndarray,
                   temperature: float | None) -> np.ndarray:
    """Per segment of rows (one user's history), ``sum_j w_j sim_j`` with
    ``w = softmax_j(sim_j / temperature + bias_j)`` for every column (candidate) independently.

    ``sim`` (m, n) float32 is overwritten; ``bias`` (m,) is the log recency weight; ``starts`` (u,)
    are the first rows of the u non-empty segments. ``temperature=None`` is the infinite-temperature
    limit: ``w`` = normalised recency, the mean-profile score. Returns (u, n) float32.
    """
    counts = np.diff(np.append(starts, len(sim)))  # (u,)
    bias = bias - np.repeat(np.maximum.reduceat(bias, starts), counts)  # (m,) newest entry: 0
    if temperature is None:
        weights = np.exp(bias)  # (m,)
        sim *= weights[:, None]
        return np.add.reduceat(sim, starts, axis=0) / np.add.reduceat(weights, starts)[:, None]
    logits = sim / np.float32(temperature)  # (m, n)
    logits += bias[:, None]
    peak = np.maximum.reduceat(logits, starts, axis=0)  # (u, n)
    logits -= np.repeat(peak, counts, axis=0)
    np.exp(logits, out=logits)  # unnormalised attention, each column's max is 1
    norm = np.add.reduceat(logits, starts, axis=0)  # (u, n)
    logits *= sim
    return np.add.reduceat(logits, starts, axis=0) / norm


def attention_weights(sim: np.ndarray, bias: np.ndarray, temperature: float | None) -> np.ndarray:
    """``softmax(sim / temperature + bias)`` over one history (m,); the weights ``attention_pool``
    uses for one candidate. float64 (m,), sums to 1."""
    logits = np.asarray(bias, np.float64)
    if temperature is not None:
        logits = logits + np.asarray(sim, np.float64) / float(temperature)
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def _first_events(users: np.ndarray, items: np.ndarray, times: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One event per (user, item), its earliest (the protocol's duplicate rule)."""
    order = np.lexsort((times, items, users))
    u, i, t = users[order], items[order], times[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    return u[first], i[first], t[first]


class SemanticBase(Recommender):
    """Shared state of the text-only models: the item vectors and every user's ordered history."""

    needs_embeddings = True

    def __init__(self, *, half_life: float | None = None, max_history: int | None = None) -> None:
        self.half_life = half_life
        self.max_history = max_history

    def _check_params(self) -> None:
        if self.half_life is not None and float(self.half_life) <= 0:
            raise ConfigError(f"{self.name}: half_life must be > 0 or None, got {self.half_life}")
        if self.max_history is not None and int(self.max_history) < 1:
            raise ConfigError(f"{self.name}: max_history must be >= 1 or None, got {self.max_history}")

    # -- state --------------------------------------------------------------------------------
    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        vectors = np.ascontiguousarray(item_embeddings, dtype=np.float32)  # (n_items, d)
        if vectors.ndim != 2 or not np.all(np.isfinite(vectors)):
            raise ConfigError(f"{self.name}: item_embeddings must be a finite (n_items, d) array")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (n_items, 1)
        self.item_vectors_ = vectors / np.where(norms > 0, norms, 1.0)  # cosine = dot product
        self._set_events(X.users, X.items, X.timestamps, X.n_users)

    def _set_events(self, users: np.ndarray, items: np.ndarray, times: np.ndarray, n_users: int) -> None:
        """Store the events and derive ``position_`` (users x items, 1-based chronological rank of
        the event in its user's history, ties by item index) and ``user_items_``."""
        u, i, t = _first_events(np.asarray(users, np.int64), np.asarray(items, np.int64),
                                np.asarray(times, np.int64))
        self.events_ = {"users": u.astype(np.int32), "items": i.astype(np.int32), "times": t}
        order = np.lexsort((i, t, u))  # by user, then (timestamp, item)
        u, i = u[order], i[order]
        starts = np.searchsorted(u, u, side="left")
        rank = (np.arange(len(u)) - starts + 1).astype(np.float64)
        shape = (int(n_users), self.n_items_)
        self.position_ = sp.csr_matrix((rank, (u, i)), shape=shape)
        self.user_items_ = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=shape)

    def partial_fit(self, new_interactions: Interactions) -> SemanticBase:
        """Append new events to the histories (a new user may appear; the catalogue is fixed, as
        the item vectors are). Nothing is retrained: scores read the histories directly."""
        self._check_fitted()
        if new_interactions.n_items != self.n_items_:
            raise ConfigError(f"{self.name}: new interactions have {new_interactions.n_items} item "
                              f"columns, the model {self.n_items_}; refit with the new catalogue")
        ev = self.events_
        self._set_events(np.concatenate([ev["users"], new_interactions.users]),
                         np.concatenate([ev["items"], new_interactions.items]),
                         np.concatenate([ev["times"], new_interactions.timestamps]),
                         max(self.position_.shape[0], new_interactions.n_users))
        return self

    def _state(self) -> dict[str, np.ndarray]:
        ev = self.events_
        return {"item_vectors": self.item_vectors_, "events.users": ev["users"],
                "events.items": ev["items"], "events.times": ev["times"]}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_vectors_ = arrays["item_vectors"]
        self._set_events(arrays["events.users"], arrays["events.items"], arrays["events.times"],
                         int(arrays["user_items.shape"][0]))

    # -- histories ----------------------------------------------------------------------------
    def _histories(self, users: np.ndarray, history: sp.csr_matrix) -> Histories:
        """The items of each ``history`` row, oldest first, the ``max_history`` most recent kept.

        Order comes from the stored events; an item the model has no event for (a history passed
        in for a new user, or one not yet given to ``partial_fit``) counts as more recent than all
        known ones, ties by item index."""
        rows = sp.csr_matrix(history, dtype=np.float64, copy=True)
        rows.sum_duplicates()
        rows.eliminate_zeros()
        rows.data[:] = 1.0
        known = users < self.position_.shape[0]
        stored = self.position_[np.where(known, users, 0)]
        stored = sp.diags(known.astype(np.float64)) @ stored
        keyed = (rows + stored.multiply(rows)).tocsr()  # same pattern as rows: 1 + rank, 1 if unknown
        keyed.sort_indices()
        rank = np.rint(keyed.data - 1.0).astype(np.int64)
        row_of = np.repeat(np.arange(keyed.shape[0]), np.diff(keyed.indptr))
        unknown_key = np.int64(1 << 40) + keyed.indices  # after every known rank, by item index
        order = np.lexsort((np.where(rank > 0, rank, unknown_key), row_of))
        items = keyed.indices[order].astype(np.int64)
        lengths = np.diff(keyed.indptr)
        age = keyed.indptr[1:][row_of] - 1 - np.arange(len(items))  # row_of is sorted already
        if self.max_history is not None:
            keep = age < int(self.max_history)
            items, age = items[keep], age[keep]
            lengths = np.minimum(lengths, int(self.max_history))
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Histories(items=items, age=age.astype(np.int64), indptr=indptr)


class SemanticRecommender(SemanticBase):
    """Score = ``cos(profile_u, v_i)``, ``profile_u = sum_j r_j v_j`` over the user's history,
    ``r_j = 0.5 ** (age_j / half_life)`` (``age`` = events since, 0 = newest; None = uniform).

    Parameters
    ----------
    half_life : recency half-life in events (None: uniform mean).
    max_history : use only the most recent events (None: all of them).

    Examples
    --------
    >>> model = SemanticRecommender(half_life=20).fit(train, item_embeddings=vectors)  # doctest: +SKIP
    >>> items, scores = model.recommend([0, 1], k=20)  # cold items are candidates  # doctest: +SKIP
    """

    name = "semantic"
    param_grid = {"half_life": [None, 5.0, 20.0]}

    def _profiles(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Unit-norm user profiles (n, d); zero for users without history."""
        h = self._histories(users, history)
        weights = sp.csr_matrix((np.exp(log_recency(h.age, self.half_life)), (h.rows, h.items)),
                                shape=(len(users), self.n_items_))
        profile = np.asarray(weights @ self.item_vectors_, dtype=np.float32)  # (n, d)
        norms = np.linalg.norm(profile, axis=1, keepdims=True)
        return profile / np.where(norms > 0, norms, 1.0)

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return self._profiles(users, history) @ self.item_vectors_.T  # (n, n_items)


@dataclass(frozen=True)
class Attribution:
    """One history item behind a recommendation: its attention weight, its cosine similarity to
    the candidate, and its age (events since; 0 = newest). ``dataclasses.asdict`` makes it JSON."""

    item: int
    weight: float
    similarity: float
    age: int


class SemanticAttentionRecommender(SemanticBase):
    """Each candidate ``i`` attends over the user's history ``j``:

    ``score(u, i) = sum_j w_ij s_ij``, ``s_ij = cos(v_i, v_j)``,
    ``w_ij = softmax_j(s_ij / temperature + log r_j)`` (``r_j`` recency as in ``semantic``).

    Why this form: the score is a convex combination of the candidate's similarities to the history,
    so it lies in [-1, 1] and is comparable across users; infinite temperature gives back the
    recency-weighted mean similarity, i.e. the ``semantic`` ranking, and a small one the
    similarity to the closest history item, so a user with several tastes is matched on each of
    them. The weights ``w_ij`` are what ``explain`` reports. A log-sum-exp pooling
    (``temperature * log sum_j r_j exp(s_ij / temperature)``) has the same limits and these weights
    as its gradient, but its value also grows with how many history items match, so it is no longer
    a similarity; on ml-latest-small valid both reach the same ndcg@20 (0.034 vs 0.033 at their best
    temperatures), so the form that explains itself was kept.

    Cost: ``(history entries x n_items)`` similarities per block of users, computed as one matrix
    product per block of at most ``BLOCK_ELEMENTS`` entries (or one user's capped history): memory
    stays bounded whatever the batch. ``max_history`` keeps the 200 most recent events by default
    (ml-latest-small users have up to ~1000 positives; the oldest are the least telling of today's
    taste and cost the most).

    Parameters
    ----------
    temperature : softmax temperature over cosine similarities (None: infinite, uniform attention).
    half_life : recency half-life in events (None: no recency prior).
    max_history : most recent events attended over.
    """

    name = "semantic-attn"
    param_grid = {"temperature": [0.05, 0.1, 0.2, None], "half_life": [None, 5.0, 20.0]}

    def __init__(self, *, temperature: float | None = 0.1, half_life: float | None = None,
                 max_history: int | None = 200) -> None:
        super().__init__(half_life=half_life, max_history=max_history)
        self.temperature = temperature

    def _check_params(self) -> None:
        super()._check_params()
        if self.temperature is not None and float(self.temperature) <= 0:
            raise ConfigError(f"semantic-attn: temperature must be > 0 or None, got {self.temperature}")

    def _score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        h = self._histories(users, history)
        E = self.item_vectors_  # (n_items, d)
        scores = np.zeros((len(users), self.n_items_), dtype=np.float32)
        bias = log_recency(h.age, self.half_life)  # (m,)
        rows_per_block = max(1, BLOCK_ELEMENTS // max(self.n_items_, 1))
        lengths = np.diff(h.indptr)
        first = 0
        while first < len(users):  # blocks of whole users, ~rows_per_block history rows each
            stop = int(np.searchsorted(h.indptr, h.indptr[first] + rows_per_block, side="right")) - 1
            last = max(stop, first + 1)
            block = np.arange(first, last)[lengths[first:last] > 0]
            if len(block):
                lo, hi = h.indptr[block[0]], h.indptr[block[-1] + 1]
                sim = E[h.items[lo:hi]] @ E.T  # (rows, n_items)
                starts = h.indptr[block] - lo
                scores[block] = attention_pool(sim, bias[lo:hi], starts, self.temperature)
            first = last
        return scores

    def explain(self, user: int, item: int, *, top: int = 3,
                history: sp.csr_matrix | None = None) -> list[Attribution]:
        """The ``top`` history items with the most attention when scoring ``item`` for ``user``
        (indices), heaviest first. Weights are over the whole (capped) history and sum to 1 there.
        ``history`` (users x items rows, as in ``recommend``) replaces the fitted histories."""
        self._check_fitted()
        users = np.asarray([user], dtype=np.int64)
        h = self._histories(users, self._history(users, history))
        if len(h.items) == 0:
            return []
        sim = self.item_vectors_[h.items] @ self.item_vectors_[int(item)]  # (m,)
        weights = attention_weights(sim, log_recency(h.age, self.half_life), self.temperature)
        order = np.lexsort((h.items, -weights))[:top]
        return [Attribution(int(h.items[j]), float(weights[j]), float(sim[j]), int(h.age[j]))
                for j in order]

