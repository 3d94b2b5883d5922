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
    """The live state's data as of now; take it under ``state.lock``."""
    vectors, n = state.catalogue.snapshot()
    users, items, ts, weights = state.histories.positives()
    positives = Interactions(users.astype(np.int32), items.astype(np.int32), ts, len(state.histories), n,
                             weights=weights)
    return Snapshot(state.bundle, state.model.spec(), list(state.histories.ids), list(state.catalogue.ids[:n]),
                    list(state.catalogue.titles[:n]), list(state.catalogue.texts[:n]), vectors.copy(), positives,
                    state.last_event_seq, state.last_item_seq)


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
