"""Live state = a loaded artifact + the items and events stored since, replayed in commit order.

Built completely before it is used (startup, or a reload beside the serving state), then only
appended to; every mutation happens under ``lock``. Replaying the store from sequence 0 over the
same artifact yields the same state, which is what makes a restart lose nothing that was stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from longtail.data.buckets import popularity_buckets
from longtail.data.interactions import Interactions
from longtail.errors import LongtailError
from longtail.models.artifact import ArtifactError, one_line
from longtail.pipeline import RowCache, TextFallback
from longtail.serve.bundle import Bundle, load_bundle
from longtail.serve.catalogue import Catalogue
from longtail.serve.histories import Histories
from longtail.serve.profiles import Portraits
from longtail.serve.store import Store

logger = logging.getLogger(__name__)
# (state, titles, texts, categories) -> (n, d) unit vectors with the state's encoder and template;
# raises a LongtailError when this process cannot produce them
Encode = Callable[["LiveState", list[str], list[str], list[str]], np.ndarray]


class LiveState:
    """What requests read: model, catalogue (+ indexes), users and histories."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.catalogue = Catalogue(bundle.item_ids, bundle.titles, bundle.texts, bundle.embeddings,
                                   bundle.popularity)
        self.histories = Histories(bundle.user_ids, bundle.train)
        self.lock = self.histories.lock
        # a refit artifact already holds the store's writes up to these (``serve.refit``)
        through = bundle.manifest.get("through", {})
        self.last_event_seq = int(through.get("event_seq", 0))
        self.last_item_seq = int(through.get("item_seq", 0))
        self.events_skipped = 0
        self.items_skipped = 0
        self.model_updates = 0  # partial_fit updates since the artifact
        # head / tail / cold per artifact item, for the calibration and xQuAD re-rankers
        self.buckets = popularity_buckets(bundle.popularity)
        # the text fallback chosen for this model on valid (``longtail evaluate``), stored by ``train``
        self.fallback = TextFallback(**bundle.manifest.get("pipeline", {}).get("fallback", {}))
        self.row_cache = RowCache()  # the fallback's item vectors, gathered once per catalogue size
        self.portraits = Portraits()  # profile context of this artifact, built on the first profile

    @property
    def encoder_fingerprint(self) -> str:
        return str(self.bundle.manifest.get("encoder", {}).get("fingerprint", ""))

    @property
    def template(self) -> str | None:
        return self.bundle.manifest.get("encoder", {}).get("template")

    @classmethod
    def load(cls, artifact: str | Path, store: Store, encode: Encode | None = None) -> LiveState:
        """Read the artifact ``artifact`` points to now and replay ``store`` over it.

        ``load_bundle`` checks the artifact; indexing it should not fail, but if it does, that is
        still the artifact's fault: an ``ArtifactError`` (one line at start-up, 503 on reload)."""
        bundle = load_bundle(artifact)
        try:
            state = cls(bundle)
        except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
            raise ArtifactError(f"{bundle.source}: cannot index the artifact ({one_line(exc)})") from exc
        state.catch_up(store, encode)
        logger.info("state ready: artifact %s, %d items, %d users, events up to #%d",
                    state.bundle.version, len(state.catalogue), len(state.histories), state.last_event_seq)
        return state

    # -- replay -------------------------------------------------------------------------------
    def catch_up(self, store: Store, encode: Encode | None = None) -> None:
        """Apply the store's items and events committed after the ones already applied."""
        rows = store.items(self.last_item_seq)
        with self.lock:
            fresh = [r for r in rows if self.catalogue.index_of(r.item_id) is None]
            self.items_skipped += len(rows) - len(fresh)  # the artifact has them now: it wins
            if fresh:
                same, other = [], []
                for r in fresh:
                    ok = r.encoder == self.encoder_fingerprint and len(r.embedding) == self.catalogue.dim
                    (same if ok else other).append(r)
                again = np.zeros((0, self.catalogue.dim), dtype=np.float32)
                if other:  # embedded by another encoder than this artifact's: embed them again
                    try:
                        if encode is None:
                            raise LongtailError("no encoder given")
                        again = encode(self, [r.title for r in other], [r.text for r in other],
                                       [r.categories for r in other])
                    except LongtailError as exc:
                        logger.warning("%d stored items skipped: %s", len(other), exc)
                        self.items_skipped += len(other)
                        other = []
                ordered = same + other
                vectors = np.concatenate([np.stack([r.embedding for r in same]).reshape(-1, self.catalogue.dim),
                                          again[:len(other)]])
                self._index_items([r.item_id for r in ordered], [r.title for r in ordered],
                                  [r.text for r in ordered], vectors.astype(np.float32))
            if rows:
                self.last_item_seq = max(self.last_item_seq, rows[-1].seq)
        for batch in store.events_since(self.last_event_seq):
            self.apply_events(batch.seq, batch.user_ids, batch.item_ids, batch.ts)

    # -- writes (callers have committed them to the store first) ------------------------------
    def apply_events(self, seqs: np.ndarray | list[int], user_ids: list[str], item_ids: list[str],
                     ts: np.ndarray | list[int]) -> int:
        """Apply committed events in order; returns how many were applied (events on items this
        catalogue does not have, e.g. dropped by a newer artifact, are skipped and counted)."""
        applied = 0
        positives: list[tuple[int, int, int]] = []  # (user, item, ts) new to the histories
        with self.lock:
            catalogue, histories = self.catalogue, self.histories
            for seq, user_id, item_id, t in zip(seqs, user_ids, item_ids, ts, strict=True):
                if int(seq) <= self.last_event_seq:
                    continue
                self.last_event_seq = int(seq)
                item = catalogue.index_of(item_id)
                if item is None:
                    self.events_skipped += 1
                    continue
                u = histories.ensure_user(user_id)
                if histories.add(u, item, int(t)):
                    catalogue.popularity[item] += 1
                    positives.append((u, item, int(t)))
                applied += 1
            if positives:
                self._update_model(positives)
        return applied

    def add_items(self, seqs: list[int], ids: list[str], titles: list[str], texts: list[str],
                  vectors: np.ndarray) -> np.ndarray:
        with self.lock:
            new = self._index_items(ids, titles, texts, vectors)
            self.last_item_seq = max(self.last_item_seq, max(seqs, default=0))
        return new

    # -- the model follows (``Recommender.updated``: the library's ``partial_fit``) -------------
    def _index_items(self, ids: list[str], titles: list[str], texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """New items join the catalogue and the model (by their text), under the lock."""
        new = self.catalogue.add(ids, titles, texts, vectors)
        self._update_model([], vectors)
        return new

    def _update_model(self, positives: list[tuple[int, int, int]], vectors: np.ndarray | None = None) -> None:
        """Swap in the model updated with ``positives`` and the new items' ``vectors``: requests
        that hold the previous model finish with it (``updated`` copies, never writes into it)."""
        rows = np.asarray(positives, np.int64).reshape(-1, 3)
        new = Interactions(rows[:, 0].astype(np.int32), rows[:, 1].astype(np.int32), rows[:, 2],
                           len(self.histories), len(self.catalogue))
        self.model = self.model.updated(new, vectors)
        self.model_updates += 1
