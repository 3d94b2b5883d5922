"""Background refit: the live state's data (the artifact's positives, the events applied since and
the items posted since) fitted from scratch, written as a new artifact version and swapped in.

Between refits the model follows every event through ``partial_fit`` (``serve.state``); a refit
catches up what an update leaves approximate (EASE's new items, neighbour lists of unchanged items,
the gate). The new version records the last event and item sequence numbers it contains
(``manifest["through"]``): loading it replays only the store's later writes, so nothing it
contains is counted twice and nothing posted during the fit is lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from longtail.data.interactions import Interactions
from longtail.models.registry import build
from longtail.serve.bundle import Bundle, bundle_encoder, encoder_files
from longtail.serve.state import LiveState


@dataclass(frozen=True)
class Snapshot:
    """What a refit fits on, copied under the state's lock (the fit runs without it)."""

    bundle: Bundle  # the artifact being served (manifest, encoder, spec of the model)
    spec: dict[str, Any]
    user_ids: list[str]
    item_ids: list[str]
    titles: list[str]
    texts: list[str]
    vectors: np.ndarray
    positives: Interactions
    event_seq: int
    item_seq: int


def snapshot(state: LiveState) -> Snapshot:
    """The live state's data as of now; take it under ``state.writing`` and ``state.lock``. The stored writes the live
    state set aside (``state.unindexed``, ``state.unapplied``) are folded in: the refit learns
    them, and its ``through`` (the state's last sequence numbers) covers them."""
    vectors, n = state.catalogue.snapshot()
    item_ids, titles, texts = (list(x[:n]) for x in (state.catalogue.ids, state.catalogue.titles, state.catalogue.texts))
    extra = [r for r in state.unindexed if r[1] not in state.catalogue.positions and np.all(np.isfinite(r[4]))]
    if extra:
        item_ids += [r[1] for r in extra]
        titles += [r[2] for r in extra]
        texts += [r[3] for r in extra]
        vectors = np.concatenate([vectors, np.stack([r[4] for r in extra]).astype(np.float32)])
    user_ids = list(state.histories.ids)
    users, items, ts, weights = state.histories.positives()
    if state.unapplied:
        users, items, ts, weights = _with_unapplied(state, user_ids, users, items, ts, weights)
    positives = Interactions(users.astype(np.int32), items.astype(np.int32), ts, len(user_ids), len(item_ids),
                             weights=weights)
    return Snapshot(state.bundle, state.model.spec(), user_ids, item_ids, titles, texts, vectors.copy(), positives,
                    state.last_event_seq, state.last_item_seq)


def _with_unapplied(state: LiveState, user_ids: list[str], users: np.ndarray, items: np.ndarray, ts: np.ndarray,
                    weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The positives plus the events the live model refused (new users appended to ``user_ids``),
    each (user, item) pair once, the first kept: what the histories would hold had they applied."""
    positions = dict(state.histories.positions)
    rows = []
    for _, user_id, item, t in state.unapplied:
        if user_id not in positions:
            positions[user_id] = len(user_ids)
            user_ids.append(user_id)
        rows.append((positions[user_id], item, t))
    extra = np.asarray(rows, np.int64).reshape(-1, 3)
    users, items, ts = (np.concatenate([a, extra[:, j]]) for j, a in enumerate((users, items, ts)))
    weights = None if weights is None else np.concatenate([weights, np.ones(len(extra), np.float32)])
    _, first = np.unique(users * (int(items.max()) + 1) + items, return_index=True)
    keep = np.sort(first)
    return users[keep], items[keep], ts[keep], None if weights is None else weights[keep]


def refit(data: Snapshot) -> Bundle:
    """A new artifact: the same model (spec, parameters) fitted on the snapshot, the same
    pipeline settings and encoder, and the sequence numbers it contains."""
    model = build(data.spec)
    started = time.perf_counter()
    model.fit(data.positives, item_embeddings=data.vectors)
    old = data.bundle
    manifest = {**old.manifest, "fit_seconds": round(time.perf_counter() - started, 3),
                "through": {"event_seq": int(data.event_seq), "item_seq": int(data.item_seq)},
                "refit_of": old.version}
    folder = bundle_encoder(old)
    categories = None if old.categories is None else \
        old.categories + [""] * (len(data.item_ids) - len(old.categories))  # posted items carry none here
    from longtail.text import TextEncoder

    return Bundle(manifest, model, data.user_ids, data.item_ids, data.titles, data.texts, data.vectors,
                  data.positives, categories=categories,
                  encoder_files=None if folder is None else encoder_files(TextEncoder(folder)))
