"""Live state = a loaded artifact + the items and events stored since, replayed in commit order.

Built completely before it is used (startup, or a reload beside the serving state), then only
appended to. Two locks, taken in this order: ``writing`` serialises the mutations (one writer
computes at a time: the request path, or the deferred applier of ``serve.applier``), ``lock`` is
held only to publish one (and by readers copying a history), so a slow model update never makes a
reader wait. Replaying the store from sequence 0 over the same artifact yields the same state,
which is what makes a restart lose nothing that was stored.

Apply, then publish: an update (events, items) is computed aside (staged histories, the updated
model copy, the index add) and published only when all of it succeeded. A stored write the model
or the index refuses (EASE past ``max_items``, a faiss fault) leaves the state as it was; it is
set aside (``unapplied``, ``unindexed``: counted, logged in one line per apply, folded into the
next refit by ``serve.refit``) and never retried in a loop, so no stored write can stop a start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from longtail.data.buckets import popularity_buckets
from longtail.data.interactions import Interactions
from longtail.errors import LongtailError
from longtail.models.artifact import ArtifactError, one_line
from longtail.models.base import Recommender
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
MAX_FAILED_TRIES = 16  # failed updates one apply bisects through before it sets the rest aside whole
EVENTS_REASON = ("the live model could not learn these events now (details in the server log); they are "
                 "stored and the next refit learns them")
ITEMS_REASON = ("the items could not be added to the live catalogue now (details in the server log); they "
                "are stored and the next refit or restart adds them")


@dataclass
class Setback:
    """Stored writes an apply set aside (their sequence numbers), and the first failure's text for
    the log; the client gets ``EVENTS_REASON`` / ``ITEMS_REASON``, never that text."""

    event_seqs: list[int] = field(default_factory=list)
    item_seqs: list[int] = field(default_factory=list)
    detail: str = ""

    def __bool__(self) -> bool:
        return bool(self.event_seqs or self.item_seqs)

    def extend(self, other: Setback) -> None:
        self.event_seqs += other.event_seqs
        self.item_seqs += other.item_seqs
        self.detail = self.detail or other.detail

    def log(self, during: str) -> None:
        """One warning line per kind for the whole apply, however many writes it set aside."""
        if self.event_seqs:
            logger.warning("%d stored events not applied to the live model (%s: %s); kept for the next refit",
                           len(self.event_seqs), during, self.detail)
        if self.item_seqs:
            logger.warning("%d stored items not indexed in the live catalogue (%s: %s); kept for the next refit",
                           len(self.item_seqs), during, self.detail)


class LiveState:
    """What requests read: model, catalogue (+ indexes), users and histories."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.catalogue = Catalogue(bundle.item_ids, bundle.titles, bundle.texts, bundle.embeddings,
                                   bundle.popularity)
        self.histories = Histories(bundle.user_ids, bundle.train)
        self.lock = self.histories.lock  # publishing (and reading a history): held briefly
        self.writing = threading.RLock()  # one mutation at a time, for its whole computation
        # a refit artifact already holds the store's writes up to these (``serve.refit``)
        through = bundle.manifest.get("through", {})
        self.last_event_seq = int(through.get("event_seq", 0))
        self.last_item_seq = int(through.get("item_seq", 0))
        self.events_skipped = 0
        self.items_skipped = 0
        self.model_updates = 0  # partial_fit updates since the artifact
        # stored writes set aside (``Setback``): (seq, user_id, item index, ts), (seq, id, title, text, vector)
        self.unapplied: list[tuple[int, str, int, int]] = []
        self.unindexed: list[tuple[int, str, str, str, np.ndarray]] = []
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

    # -- replay ---------------------------------------------------------------------------------
    def catch_up(self, store: Store, encode: Encode | None = None, through: int | None = None) -> Setback:
        """Apply the store's items and events committed after the ones already applied (events up to
        ``through`` when given: one bounded apply, not a chase of what commits meanwhile); what the
        state cannot take is set aside and logged in one line (a start never dies on a write)."""
        with self.writing:
            setback = self._catch_up(store, encode, through)
        setback.log("catching up with the store")
        return setback

    def _catch_up(self, store: Store, encode: Encode | None, through: int | None) -> Setback:
        setback = Setback()
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
                vectors = np.concatenate([np.asarray([r.embedding for r in same], np.float32).reshape(-1, self.catalogue.dim),
                                          again[:len(other)]])
                setback.extend(self._index_items([r.seq for r in ordered], [r.item_id for r in ordered],
                                                 [r.title for r in ordered], [r.text for r in ordered],
                                                 vectors.astype(np.float32)))
            if rows:
                self.last_item_seq = max(self.last_item_seq, rows[-1].seq)
        for batch in store.events_since(self.last_event_seq):
            n = len(batch.seq) if through is None else int(np.searchsorted(batch.seq, through, side="right"))
            setback.extend(self._apply_events(batch.seq[:n], batch.user_ids[:n], batch.item_ids[:n], batch.ts[:n]))
            if n < len(batch.seq):
                break  # (the generator is closed when dropped: its read ends)
        return setback

    # -- writes (callers have committed them to the store first) ------------------------------
    def apply_events(self, seqs: np.ndarray | list[int], user_ids: list[str], item_ids: list[str],
                     ts: np.ndarray | list[int]) -> Setback:
        """Apply committed events in order: all the model takes; the others are set aside, and the
        state stays as it was for them. Events on items this catalogue does not have (e.g. dropped
        by a newer artifact) are skipped and counted."""
        with self.writing:
            setback = self._apply_events(seqs, user_ids, item_ids, ts)
        setback.log("posted events")
        return setback

    def add_items(self, seqs: list[int], ids: list[str], titles: list[str], texts: list[str],
                  vectors: np.ndarray) -> Setback:
        """Index committed items (all or none of them); a refused batch is set aside."""
        with self.writing, self.lock:
            setback = self._index_items(seqs, ids, titles, texts, vectors)
            self.last_item_seq = max(self.last_item_seq, max(seqs, default=0))
        setback.log("posted items")
        return setback

    # -- staged updates: the model follows (``Recommender.updated``: the library's ``partial_fit``)
    def _apply_events(self, seqs: np.ndarray | list[int], user_ids: list[str], item_ids: list[str],
                      ts: np.ndarray | list[int]) -> Setback:
        """``apply_events`` under ``writing``. A failing group is split in halves to keep what can be
        applied (up to ``MAX_FAILED_TRIES`` failures, so a bad replay costs a bounded number of
        tries); each event ends up applied or set aside, and ``last_event_seq`` passes both."""
        rows: list[tuple[int, str, int, int]] = []  # (seq, user_id, item, ts)
        for seq, user_id, item_id, t in zip(seqs, user_ids, item_ids, ts, strict=True):
            if int(seq) <= self.last_event_seq:
                continue
            self.last_event_seq = int(seq)
            item = self.catalogue.index_of(item_id)
            if item is None:
                self.events_skipped += 1
            else:
                rows.append((int(seq), user_id, item, int(t)))
        setback, tries = Setback(), MAX_FAILED_TRIES

        def apply(group: list[tuple[int, str, int, int]]) -> None:
            nonlocal tries
            try:
                self._apply_group(group)
                return
            except Exception as exc:  # any failure: the group left no trace
                setback.detail = setback.detail or one_line(exc)
                tries -= 1
                if len(group) == 1 or tries <= 0:
                    setback.event_seqs += [r[0] for r in group]
                    self.unapplied += group
                    return
            half = len(group) // 2
            apply(group[:half])
            apply(group[half:])

        if rows:
            apply(rows)
        return setback

    def _apply_group(self, rows: list[tuple[int, str, int, int]]) -> None:
        """Stage the events and update a model copy (the slow part: under ``writing`` only, readers
        go on), then publish histories, popularity and model together under ``lock``; raises with
        nothing changed."""
        staged = self.histories.stage([r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])
        model = self.model
        if staged.positives:
            model = self._updated(staged.positives, len(self.histories) + len(staged.new_users), len(self.catalogue))
        with self.lock:
            self.histories.commit(staged)
            np.add.at(self.catalogue.popularity, np.asarray([p[1] for p in staged.positives], np.int64), 1)
            if model is not self.model:
                self.model = model
                self.model_updates += 1

    def _index_items(self, seqs: list[int], ids: list[str], titles: list[str], texts: list[str],
                     vectors: np.ndarray) -> Setback:
        """New items join the model (by their text) and the catalogue, under the lock: the model
        copy first, the catalogue's all-or-nothing add next, the model swapped in last."""
        try:
            model = self._updated([], len(self.histories), len(self.catalogue) + len(ids), vectors)
            self.catalogue.add(ids, titles, texts, vectors)
        except Exception as exc:  # nothing published: set the batch aside
            self.unindexed += list(zip(seqs, ids, titles, texts, vectors, strict=True))
            return Setback(item_seqs=list(seqs), detail=one_line(exc))
        self.model = model
        self.model_updates += 1
        return Setback()

    def _updated(self, positives: list[tuple[int, int, int]], n_users: int, n_items: int,
                 vectors: np.ndarray | None = None) -> Recommender:
        """The model updated with ``positives`` and the new items' ``vectors``, as a copy: requests
        that hold the current model finish with it (``updated`` never writes into it)."""
        rows = np.asarray(positives, np.int64).reshape(-1, 3)
        new = Interactions(rows[:, 0].astype(np.int32), rows[:, 1].astype(np.int32), rows[:, 2], n_users, n_items)
        return self.model.updated(new, vectors)
