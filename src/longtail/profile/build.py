"""Profiles of a batch of histories (vectorised over users) and of one history (the service).

Everything but the k-means is a sparse product over the whole batch: histories (users x items)
times item vectors, item words, item labels and item buckets. The k-means runs per user on a few
vectors (``interests.py``); every group's keywords and label are again one product over all groups.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp

from longtail.data.buckets import BUCKET_NAMES, COLD, HEAD, TAIL
from longtail.data.history import HistoryBatch
from longtail.errors import ConfigError
from longtail.profile.context import ProfileContext
from longtail.profile.interests import interest_count, spherical_kmeans, unit_rows
from longtail.profile.keywords import top_keywords
from longtail.profile.profile import Interest, UserProfile
from longtail.profile.topk import sparse_topk


def _distinct_in_order(histories: HistoryBatch) -> tuple[np.ndarray, np.ndarray]:
    """(items, indptr) of each row's distinct items, in history order (a repeat keeps its first
    place). Without ``repeats`` that is the batch itself."""
    if not histories.repeats:
        return histories.items, histories.indptr
    rows = histories.rows
    key = rows * max(histories.n_items, 1) + histories.items
    _, first = np.unique(key, return_index=True)
    first = np.sort(first)  # back to (row, time) order
    indptr = np.zeros(len(histories) + 1, np.int64)
    np.cumsum(np.bincount(rows[first], minlength=len(histories)), out=indptr[1:])
    return histories.items[first], indptr


def _membership(items: np.ndarray, indptr: np.ndarray, n_items: int) -> sp.csr_matrix:
    """(rows, n_items) binary CSR from flattened rows of distinct items."""
    data = np.ones(len(items), np.float32)
    matrix = sp.csr_matrix((data, items.astype(np.int64), indptr.astype(np.int64)), shape=(len(indptr) - 1, n_items))
    matrix.sort_indices()
    return matrix


def _label_shares(ctx: ProfileContext, members: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top labels per row by share: each item spreads one unit over its labels, shares of the
    row's total. Returns sparse_topk's (indptr, label indices, shares)."""
    labels = ctx.labels.matrix
    per_item = np.asarray(labels.sum(axis=1)).ravel()  # (n_items,)
    spread = sp.diags(1.0 / np.maximum(per_item, 1.0)).astype(np.float32) @ labels
    weights = (members @ spread).tocsr()  # (rows, n_labels)
    totals = np.asarray(weights.sum(axis=1)).ravel()
    shares = sp.diags(1.0 / np.maximum(totals, 1e-12)).astype(np.float32) @ weights
    return sparse_topk(shares.tocsr(), ctx.top_genres)


def _top_label(ctx: ProfileContext, members: sp.csr_matrix) -> list[str | None]:
    """The label most of each row's items carry (ties: the first label by name); None if none."""
    counts = (members @ ctx.labels.matrix).tocsr()
    indptr, columns, _ = sparse_topk(counts, 1)
    names: list[str | None] = [None] * members.shape[0]
    for r in np.flatnonzero(np.diff(indptr)):
        names[r] = str(ctx.labels.names[columns[indptr[r]]])
    return names


@contextmanager
def _progress(show: bool, total: int) -> Iterator[Any]:
    """Yields ``advance(n)``; a rich bar when ``show``."""
    if not show:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("[bold]profiles"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task("profiles", total=total)
        yield lambda n: bar.advance(task, n)


def _interests(ctx: ProfileContext, items: np.ndarray, indptr: np.ndarray, user_vectors: np.ndarray,
               advance: Any) -> tuple[list[list[tuple[np.ndarray, int]]], np.ndarray]:
    """Per row: [(member items in history order, representative item)] and all groups' centroids
    (n_groups, d), rows' groups consecutive."""
    groups: list[list[tuple[np.ndarray, int]]] = []
    centroids: list[np.ndarray] = []
    for r in range(len(indptr) - 1):
        history = items[indptr[r]:indptr[r + 1]]
        vectors = ctx.vectors[history]  # (n, d)
        k = interest_count(len(history), ctx.max_interests)
        if k == 1:
            labels, centres = np.zeros(len(history), np.int64), user_vectors[r:r + 1]
        else:
            labels, centres = spherical_kmeans(vectors, k, seed=ctx.seed)
        similarity = np.einsum("nd,nd->n", vectors, centres[labels])  # (n,) to its own centroid
        row = []
        for g in range(len(centres)):
            inside = np.flatnonzero(labels == g)
            row.append((history[inside], int(history[inside[np.argmax(similarity[inside])]])))
        groups.append(row)
        centroids.append(centres)
        if r % 256 == 255:
            advance(256)
    advance((len(indptr) - 1) % 256)
    d = ctx.vectors.shape[1]
    return groups, np.concatenate(centroids) if centroids else np.zeros((0, d), np.float32)


def _profiles(ctx: ProfileContext, histories: HistoryBatch, *, with_times: bool, progress: bool) -> list[UserProfile]:
    if len(histories.items) and int(histories.items.max()) >= ctx.n_items:
        raise ConfigError(f"history item index {int(histories.items.max())} is outside the profile context's "
                          f"catalogue of {ctx.n_items} items; build the context from the current catalogue")
    if len(histories) == 0:
        return []
    items, indptr = _distinct_in_order(histories)
    lengths = np.diff(indptr)
    if (lengths == 0).any():
        row = int(np.flatnonzero(lengths == 0)[0])
        raise ConfigError(f"empty history (row {row}, user {int(histories.users[row])}; "
                          f"{int((lengths == 0).sum())} empty): a profile needs at least one item")
    members = _membership(items, indptr, ctx.n_items)  # (n, n_items)
    user_vectors = unit_rows(members @ ctx.vectors)  # (n, d): direction of the mean item vector
    term_counts = (members @ ctx.keywords.item_terms).tocsr()  # (n, V)
    keywords = top_keywords(ctx.keywords, term_counts, user_vectors, ctx.keyword_method, ctx.top_keywords)
    g_indptr, g_columns, g_shares = _label_shares(ctx, members)
    bucket_hits = np.stack([np.bincount(np.repeat(np.arange(len(lengths)), lengths),
                                        weights=(ctx.buckets[items] == b).astype(np.float64), minlength=len(lengths))
                            for b in (HEAD, TAIL, COLD)], axis=1) / lengths[:, None]  # (n, 3)
    times = histories.times
    first = np.minimum.reduceat(times, histories.indptr[:-1]) if with_times else None
    last = np.maximum.reduceat(times, histories.indptr[:-1]) if with_times else None

    with _progress(progress, len(lengths)) as advance:
        groups, centroids = _interests(ctx, items, indptr, user_vectors, advance)
    group_items = [inside for row in groups for inside, _ in row]
    group_indptr = np.concatenate([[0], np.cumsum([len(g) for g in group_items])]).astype(np.int64)
    group_matrix = _membership(np.concatenate(group_items), group_indptr, ctx.n_items)
    group_terms = (group_matrix @ ctx.keywords.item_terms).tocsr()
    group_keywords = top_keywords(ctx.keywords, group_terms, centroids, ctx.keyword_method, ctx.interest_keywords)
    group_genres = _top_label(ctx, group_matrix)

    profiles = []
    g = 0
    ids, titles, names = ctx.item_ids, ctx.titles, ctx.labels.names
    for r, n in enumerate(lengths.tolist()):
        interests = []
        for members_r, representative in groups[r]:
            interests.append(Interest(
                tuple(members_r.tolist()), tuple(ids[members_r].tolist()), representative,
                str(ids[representative]), str(titles[representative]), tuple(group_keywords[g]), group_genres[g]))
            g += 1
        lo, hi = g_indptr[r], g_indptr[r + 1]
        genres = tuple(zip(names[g_columns[lo:hi]].tolist(), np.round(g_shares[lo:hi].astype(np.float64), 4).tolist(),
                           strict=True))
        mix = {BUCKET_NAMES[b]: round(float(bucket_hits[r, c]), 4) for c, b in enumerate((HEAD, TAIL, COLD))}
        profiles.append(UserProfile(
            user=int(histories.users[r]), n_items=int(n), activity=ctx.activity(int(n)),
            keywords=tuple(keywords[r]), keyword_method=ctx.keyword_method, genres=genres, mix=mix,
            interests=tuple(interests),
            first_time=None if first is None else int(first[r]), last_time=None if last is None else int(last[r]),
        ))
    return profiles


def build_profiles(ctx: ProfileContext, histories: HistoryBatch, *, progress: bool = False) -> list[UserProfile]:
    """One profile per row of ``histories`` (indices of ``ctx``'s catalogue), in row order.

    An empty row is a ``ConfigError`` naming it: drop users without a history first."""
    return _profiles(ctx, histories, with_times=True, progress=progress)


def profile_user(ctx: ProfileContext, items: Sequence[int], times: Sequence[int] | None = None) -> UserProfile:
    """The profile of one history (item indices, oldest first; ``times`` optional): what
    ``build_profiles`` gives for the same history, for the service's one-user requests."""
    items = [int(i) for i in items]
    if not items:
        raise ConfigError("empty history: a profile needs at least one item")
    if times is not None and len(times) != len(items):
        raise ConfigError(f"{len(items)} items but {len(times)} times")
    batch = HistoryBatch.from_lists([items], ctx.n_items, times=None if times is None else [list(times)])
    return _profiles(ctx, batch, with_times=times is not None, progress=False)[0]
