"""Bayesian Personalized Ranking (Rendle et al. 2009) via `implicit`'s CPU build, with users folded
in from their history.

implicit learns item factors ``V`` (n_items, f + 1; the last column is an item bias, the user's
matching coordinate is fixed at 1) by SGD on ``log sigmoid(u . (v_i - v_j))``: i a positive, j a
negative drawn in proportion to item popularity (an item of the interaction array), skipped when
the user has it. Scores must come from the history alone, so every user, a training user too, is
folded in (``fold_in``): the same objective with ``V`` fixed, the user's positives against
``FOLD_NEGATIVES`` negatives drawn the same way (the generator seeded from the history itself: one
user's scores never depend on the batch), integrated as a gradient flow from 0 for the time SGD
gives a user, ``learning_rate * iterations * |history|`` (steps capped for stability). That budget is
the point: the flow run to the optimum (Newton) overfits small histories.

Measured on ml-latest-small (fit on train, valid ndcg@20 overall / tail, iterations 100, the same
item factors), implicit's own trained users vs this fold-in:

- factors 64, learning_rate 0.01, regularization 0.001: 0.0771 / 0.0030 vs 0.0768 / 0.0022
- factors 64, learning_rate 0.01, regularization 0.01: 0.0757 / 0.0020 vs 0.0757 / 0.0017
- factors 64, learning_rate 0.05, regularization 0.01: 0.0611 / 0.0161 vs 0.0680 / 0.0172
- over the 8 grid points the fold-in is -0.0003 to +0.0071 overall, -0.0008 to +0.0011 tail.

Newton to the optimum of the same objective gives 0.0650, 0.0717, 0.0601 on those three rows
(small histories overfit). Least squares on ``V`` (ALS's fold-in) with ridge 100 gives 0.0861 /
0.0004, 0.0898 / 0.0004, 0.0641 / 0.0148 (ridge 1 or 10: lower): more overall, no tail; it ranks
by the sum of the history's item vectors (the bias column adds popularity), not by BPR's user, so
it is not used. Cost: about 8 s per 600 users on one core (256 negatives x 50 steps).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.base import UNSCORED, Recommender
from longtail.models.explain import Explanation, top_evidence
from longtail.models.incremental import merged, pack_csr, unpack_csr

FOLD_NEGATIVES = 256  # negatives per folded-in user, each paired with every positive
FOLD_STEPS = 50  # gradient steps of the fold-in
FOLD_EVENTS = 32768  # history events folded in at once (memory: this x FOLD_NEGATIVES floats)


class BPR(Recommender):
    """Matrix factorisation trained on pairwise ranking (see the module docstring).

    Parameters
    ----------
    factors : latent dimensions (plus one item-bias column).
    learning_rate, regularization, iterations : implicit's SGD settings; the fold-in uses them too.
    seed : implicit's ``random_state`` and the fold-in's negative sampling seed. Fitting runs on
        one thread: implicit's multi-threaded SGD is not reproducible.

    Defaults: the point the grid picks on ml-latest-small (valid ndcg@20 0.0775; learning_rate
    0.05 trades overall for tail: about 0.065 overall, 0.018 tail).
    """

    name = "bpr"
    param_grid = {"factors": [64, 128], "learning_rate": [0.01, 0.05], "regularization": [0.001, 0.01]}

    def __init__(self, *, factors: int = 128, learning_rate: float = 0.01, regularization: float = 0.001,
                 iterations: int = 100, seed: int = 0) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed

    def _check_params(self) -> None:
        if int(self.factors) < 1 or int(self.iterations) < 1 or float(self.learning_rate) <= 0 \
                or float(self.regularization) < 0:
            raise ConfigError(f"bpr: need factors >= 1, iterations >= 1, learning_rate > 0, regularization >= 0; "
                              f"got {self.get_params()}")

    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            model = BayesianPersonalizedRanking(
                factors=int(self.factors), learning_rate=float(self.learning_rate),
                regularization=float(self.regularization), iterations=int(self.iterations),
                num_threads=1, random_state=int(self.seed),
            )
            model.fit(sp.csr_matrix(X.csr, dtype=np.float32), show_progress=False)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)  # (n_items, f + 1)
        self.item_counts_ = X.item_counts().astype(np.float64)
        self.warm_ = self.item_counts_ > 0
        self.seen_ = sp.csr_matrix(X.csr, dtype=np.float32)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)  # (n_users, f + 1), last = 1

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """SGD on the items with new events, as implicit's epochs see such an item: as the positive
        of each of its new events (the user folded in from their whole history) against a negative
        drawn by popularity, and as often as the negative of a random interaction of a user drawn
        by activity (implicit draws an item as a negative in proportion to its count), that user's
        factors from the fit. ``iterations`` passes at the fit's learning rate, users fixed; new
        items start at zero; other items keep their factors; updated users keep their new factors."""
        seen = merged(self.seen_, new)
        counts = np.zeros(new.n_items)
        counts[: len(self.item_counts_)] = self.item_counts_
        counts += new.item_counts()
        factors = np.zeros((new.n_items, self.item_factors_.shape[1]), np.float32)
        factors[: len(self.item_factors_)] = self.item_factors_
        # the grown state first (new arrays: an ``updated`` copy's original keeps its own): the fold-in reads it
        self.n_items_, self.item_factors_, self.item_counts_, self.warm_ = new.n_items, factors, counts, counts > 0
        users = np.unique(new.users)
        folded, _, _ = self.fold_in(HistoryBatch.from_lists([seen[u].indices for u in users], new.n_items))
        U = np.zeros((max(len(self.user_factors_), new.n_users), factors.shape[1]), np.float32)
        U[: len(self.user_factors_)] = self.user_factors_
        U[users, :-1], U[users, -1] = folded, 1.0  # bias slot fixed at 1
        rng = np.random.default_rng(int(self.seed))
        activity = np.diff(seen.indptr).astype(np.float64)
        activity[U[:, -1] == 0] = 0.0  # the negatives' side: users with factors (fitted or just folded in)
        mine = new.users
        lr, reg = float(self.learning_rate), float(self.regularization)
        popularity = counts / counts.sum()
        for _ in range(int(self.iterations)):
            # the new events' items as positives
            negatives = rng.choice(len(counts), len(mine), p=popularity)
            ok = np.asarray(seen[new.users, negatives]).ravel() == 0
            margin = np.einsum("mf,mf->m", U[mine], factors[new.items] - factors[negatives])
            step = np.where(ok, lr * expit(-margin), 0.0).astype(np.float32)[:, None]
            # the same items as negatives of random users' positives
            other = rng.choice(len(activity), len(mine), p=activity / activity.sum())  # users by activity
            start, length = seen.indptr[other], np.diff(seen.indptr)[other]
            theirs = seen.indices[start + (rng.random(len(other)) * length).astype(np.int64)]  # a random positive each
            ok_other = np.asarray(seen[other, new.items]).ravel() == 0
            margin_other = np.einsum("mf,mf->m", U[other], factors[theirs] - factors[new.items])
            step_other = np.where(ok_other, lr * expit(-margin_other), 0.0).astype(np.float32)[:, None]
            update = step * U[mine] - step_other * U[other] - 2 * lr * reg * factors[new.items]
            np.add.at(factors, new.items, update)
        self.seen_, self.user_factors_ = seen, U

    # -- fold-in ------------------------------------------------------------------------------
    def _negatives(self, history: np.ndarray) -> np.ndarray:
        """``FOLD_NEGATIVES`` items drawn as implicit draws them (by popularity, never a history
        item), from a generator seeded by the history's item set; empty when nothing is left."""
        weights = self.item_counts_.copy()
        weights[history] = 0.0
        total = weights.sum()
        if total <= 0:
            return np.zeros(0, np.int64)
        rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), *np.sort(history).tolist()]))
        return rng.choice(len(weights), FOLD_NEGATIVES, p=weights / total)

    def fold_in(self, queries: HistoryBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """User vectors (n, f) of the histories, and for the explanations each warm history event's
        share of its user vector: ``u = sum_i share_i v_i - (negatives' terms)``, exactly.
        Returns (users float32 (n, f), events int64 (m,) indices into ``queries.items``, shares (m,)).
        Rows go in chunks of about ``FOLD_EVENTS`` events: memory stays at (FOLD_EVENTS x
        FOLD_NEGATIVES) floats, and each row's arithmetic is its own whatever the chunk."""
        ends = np.searchsorted(queries.indptr, np.arange(FOLD_EVENTS, queries.indptr[-1], FOLD_EVENTS), "right")
        bounds = np.unique(np.concatenate([[0], ends, [len(queries)]]))  # at least one row a chunk
        parts = [self._fold_chunk(queries[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])] or \
            [self._fold_chunk(queries)]
        users = np.concatenate([p[0] for p in parts])
        events = np.concatenate([p[1] + queries.indptr[start] for p, start in zip(parts, bounds)])
        return users, events, np.concatenate([p[2] for p in parts])

    def _fold_chunk(self, queries: HistoryBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``fold_in`` of one chunk: every row's positives against its own negatives, all rows
        stepped together (m events, n rows, M = ``FOLD_NEGATIVES``, f factors)."""
        V = self.item_factors_
        f = V.shape[1] - 1
        keep = self.warm_[queries.items]  # items implicit never trained carry no factors
        events = np.flatnonzero(keep)
        rows, items = queries.rows[keep], queries.items[keep]
        n = len(queries)
        lengths = np.bincount(rows, minlength=n)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        pools = [self._negatives(items[s:s + h]) if h else np.zeros(0, np.int64) for s, h in zip(starts, lengths)]
        has = np.asarray([len(p) > 0 for p in pools]) & (lengths > 0)  # rows with anything to fold in
        negatives = np.stack([p if len(p) else np.zeros(FOLD_NEGATIVES, np.int64) for p in pools]) if n else \
            np.zeros((0, FOLD_NEGATIVES), np.int64)  # (n, M)
        pos, pos_bias = V[items, :f], V[items, f]  # (m, f), (m,)
        neg, neg_bias = V[negatives, :f], V[negatives, f]  # (n, M, f), (n, M)
        member = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))), shape=(n, len(rows)))
        pairs = np.maximum(lengths, 1).astype(np.float32) * FOLD_NEGATIVES  # (n,)
        # a safe step: 1 / (curvature bound) of the mean objective, and SGD's time budget
        mean_pos = (member @ pos) / np.maximum(lengths, 1)[:, None]  # (n, f)
        sq = (member @ (pos * pos).sum(1)) / np.maximum(lengths, 1) + (neg * neg).sum(2).mean(1) \
            - 2 * (mean_pos * neg.mean(1)).sum(1)
        reg = float(self.regularization)
        budget = float(self.learning_rate) * int(self.iterations) * lengths
        eta = np.where(has, np.minimum(budget / FOLD_STEPS, 1.0 / (0.25 * sq + reg + 1e-12)), 0.0).astype(np.float32)
        users = np.zeros((n, f), np.float32)
        shares = np.zeros(len(rows), np.float32)
        for _ in range(FOLD_STEPS):
            # weight = sigmoid(-margin) = d log sigmoid(margin) / d margin, margin = s_i - s_j; in place
            weight = (np.einsum("nf,nkf->nk", users, neg) + neg_bias)[rows]  # (m, M)
            weight -= (np.einsum("mf,mf->m", users[rows], pos) + pos_bias)[:, None]
            expit(weight, out=weight)
            row_weight = weight.sum(1) / pairs[rows]  # (m,)
            gradient = member @ (row_weight[:, None] * pos) \
                - np.einsum("nk,nkf->nf", (member @ weight) / pairs[:, None], neg) - reg * users
            shares = (1.0 - eta[rows] * reg) * shares + eta[rows] * row_weight
            users = users + eta[:, None] * gradient
        return users, events, shares

    def _score(self, queries: HistoryBatch) -> np.ndarray:
        users, _, _ = self.fold_in(queries)
        V = self.item_factors_
        scores = users @ V[:, :-1].T + V[:, -1]
        scores[:, ~self.warm_] = UNSCORED
        return scores.astype(np.float32, copy=False)

    def _explain_items(self, query: HistoryBatch, items: list[int]) -> list[Explanation]:
        """Each history item i's term ``share_i * v_i . v_item`` of the score (the rest: the
        negatives' terms and the item's bias)."""
        _, events, shares = self.fold_in(query)
        history = query.items[events]
        V = self.item_factors_[:, :-1]
        terms = shares[:, None] * (V[history] @ V[np.asarray(items, np.int64)].T)  # (h, k)
        return [Explanation(item, "history", self.name, top_evidence(history, terms[:, j]))
                for j, item in enumerate(items)]

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_, "item_counts": self.item_counts_, "user_factors": self.user_factors_,
                **pack_csr("seen", self.seen_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_factors_ = arrays["item_factors"]
        self.item_counts_ = arrays["item_counts"]
        self.warm_ = self.item_counts_ > 0
        self.seen_ = unpack_csr("seen", arrays, self.n_items_)
        self.user_factors_ = arrays["user_factors"]
