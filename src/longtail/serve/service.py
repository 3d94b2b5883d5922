"""The service's core, without HTTP: store + live state + keys + metrics, the two write paths,
and the artifact swap.

Writes (events, items) take ``write_lock`` across "commit to the store, then apply to the state",
so the state never holds what the store does not, and a reload can catch up exactly: it builds the
new state beside the serving one (slow: load + replay, no lock), then, under the lock, applies the
few writes committed meanwhile and swaps the reference. Requests read ``service.state`` once and
keep that object, so each sees one whole state, old or new, and none waits for the swap.

Errors carry reasons in words, never exception text, SQL or paths (those go to the log): a client
cannot act on them, and they tell an attacker about the host.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from anyio import CapacityLimiter

from longtail.errors import LongtailError
from longtail.models.artifact import one_line
from longtail.serve.applier import Applier
from longtail.serve.faults import (RELOAD_RUNNING, Conflict, NotFound, ReloadFailed, ReloadRunning, Unavailable,
                                   not_stored, why_unloadable)
from longtail.serve.keys import KeyChecker
from longtail.serve.memory import settle_later
from longtail.serve.metrics import Metrics
from longtail.serve.schemas import EventIn, EventsStored, ItemIn, ItemsCreated
from longtail.serve.state import EVENTS_REASON, ITEMS_REASON, LiveState, Setback
from longtail.serve.store import DuplicateKey, EventIdConflict, NewEvent, StoreUnavailable, open_store

if TYPE_CHECKING:
    from longtail.text import TextEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of one service process. ``watch_s``: poll the artifact link every that many
    seconds and swap in a new version (None: only ``POST /admin/reload``). ``refit_every``: after
    that many events applied since the served artifact, refit it in the background
    (``serve.refit``), write the result as a new version and swap it in. ``apply_every_ms``: see
    ``serve.applier`` (0, the default, applies in the request: the strict mode)."""

    artifact: Path
    store: str
    max_body_bytes: int = 1 << 20
    watch_s: float | None = None
    refit_every: int | None = None  # refit in the background after this many new events (None: never)
    apply_every_ms: int = 0  # > 0: events are applied in the background (``serve.applier``); 0: in the request
    apply_every: int | None = None  # with apply_every_ms: also apply as soon as this many are pending


class Service:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.store = open_store(config.store, exclusive=True)  # one writer per store: refused if served
        try:
            self._start(config)
        except BaseException:
            self.store.close()  # releases the store's lock for the next try
            raise

    def _start(self, config: ServiceConfig) -> None:
        self.keys = KeyChecker(self.store)
        self.metrics = Metrics()
        self.write_lock = threading.RLock()
        self._reload_lock = threading.Lock()
        self._encoder_lock = threading.Lock()
        # encoder fingerprint -> (the artifact's encoder folder, its encoder): the served artifact's only
        self._encoders: dict[str, tuple[Path | None, TextEncoder]] = {}
        self.started = time.time()
        self.reloads = 0
        self.compute_limiter = CapacityLimiter(max(1, os.cpu_count() or 1))
        self.state = LiveState.load(config.artifact, self.store, self.encode)
        self.events_stored = self.store.count_events()
        if self.store.count_keys() == 0:
            logger.warning("no API keys in %s: every request but /health will get 401; "
                           "create one with `longtail keys create --store ... --scope admin`", self.store.name)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._bad_target: Path | None = None  # the version the watcher failed to load (not retried)
        self._poll_error: str | None = None
        self._follower: threading.Thread | None = None
        self._follow_error: str | None = None
        self._refitter: threading.Thread | None = None
        self._refit_lock = threading.Lock()
        self._refit_failed_at = 0  # last_event_seq when a background refit last failed
        self.refits = 0
        self.applier: Applier | None = None
        if config.apply_every_ms > 0:
            self.applier = Applier(self.apply_pending, config.apply_every_ms, config.apply_every)

    # -- encoding new items -------------------------------------------------------------------
    def encoder_for(self, state: LiveState) -> TextEncoder:
        """The artifact's encoder (its own adapted one, else the bundled MiniLM; loaded on first
        use), refused (503) unless the artifact's vectors came from it: new items and profile
        keywords must live in the artifact's vector space."""
        from longtail.text import TextEncoder

        from longtail.serve.bundle import bundle_encoder

        folder = bundle_encoder(state.bundle)  # an artifact trained with an adapted encoder carries it
        wanted = state.encoder_fingerprint
        with self._encoder_lock:
            held = self._encoders.get(wanted)
            if held is None or held[0] != folder:  # each version carries its own copy: one model for all
                held = self._encoders[wanted] = (folder, TextEncoder(folder))
        if state is getattr(self, "state", None):  # (not yet set while the first state loads)
            self.keep_encoder_of(state)
        encoder = held[1]
        if encoder.fingerprint != state.encoder_fingerprint:
            raise Unavailable(f"cannot embed text: the artifact's vectors come from encoder "
                              f"{state.encoder_fingerprint!r}, this server has {encoder.fingerprint!r}; "
                              "retrain with this encoder")
        return encoder

    def keep_encoder_of(self, state: LiveState) -> None:
        """Forget the encoders of artifacts no longer served and free their models (~100 MB each:
        one per reload would grow without bound); called at a swap and when the served state encodes."""
        with self._encoder_lock:
            for fingerprint in [f for f in self._encoders if f != state.encoder_fingerprint]:
                self._encoders.pop(fingerprint)[1].release()

    def encode(self, state: LiveState, titles: list[str], texts: list[str], categories: list[str]) -> np.ndarray:
        """Unit vectors of new items with ``state``'s template; refused (503) unless this server's
        encoder is the one the artifact's vectors came from. No disk cache: API input must not
        grow the cache without bound. The encoder loads on first use (seconds), not at start."""
        import pandas as pd

        from longtail.text import embed_texts, item_texts

        encoder = self.encoder_for(state)
        frame = pd.DataFrame({"title": titles, "text": texts, "categories": categories})
        rendered = item_texts(frame, state.template) if state.template else texts
        return embed_texts(rendered, encoder=encoder, cache=False)

    # -- writes -------------------------------------------------------------------------------
    def record_events(self, events: list[EventIn], *, key_id: str | None = None) -> EventsStored:
        """Commit then apply (or queue, with ``apply_every_ms``); the answer says how many were stored
        and whether the live model learned them all (a refused event is set aside for the next refit,
        not an error: the client must not send it again). ``key_id``: the API key that sent them, stored with each
        event (who wrote what)."""
        unknown = self._unknown_items(events)
        if unknown and self.store.shared:  # posted to another process, not followed yet
            self.follow_step()
            unknown = self._unknown_items(events)
        if unknown:
            raise NotFound(f"unknown item_id: {', '.join(repr(i) for i in unknown[:5])}"
                           + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
        now = int(time.time())
        rows = [NewEvent(e.user_id, e.item_id, now if e.timestamp is None else e.timestamp, e.event_id,
                         client_ts=e.timestamp is not None, key_id=key_id) for e in events]
        with self.write_lock:
            try:
                seqs = self.store.append_events(rows)  # durable from here on
            except EventIdConflict as exc:  # stored before, or earlier in this batch (one transaction)
                raise Conflict(f"event_id {exc.event_id!r} was already used (stored, or earlier in this batch) "
                               "with another user_id, item_id or timestamp; nothing from this batch was stored") from None
            except StoreUnavailable as exc:
                raise not_stored(exc) from exc
            kept = [(s, r) for s, r in zip(seqs, rows, strict=True) if s is not None]
            self.events_stored += len(kept)
            setback = Setback()
            if kept and self.applier is None and self.store.shared:  # others' commits may sit before ours
                setback = self.state.catch_up(self.store, self.encode)
            elif kept and self.applier is None:  # (deferred: the applier replays them from the store)
                setback = self.state.apply_events([s for s, _ in kept], [r.user_id for _, r in kept],
                                                  [r.item_id for _, r in kept], [r.ts for _, r in kept])
        last_seq = kept[-1][0] if kept else None
        if self.applier is not None:
            if kept:
                self.applier.notify(len(kept), kept[-1][0])
            return EventsStored(stored=len(kept), duplicates=len(rows) - len(kept), last_seq=last_seq,
                                model_updated=None, applied=False, apply_within_ms=self.config.apply_every_ms)
        self._maybe_refit()
        mine = len({s for s, _ in kept} & set(setback.event_seqs))
        return EventsStored(stored=len(kept), duplicates=len(rows) - len(kept), last_seq=last_seq,
                            model_updated=not mine, not_applied=mine, reason=EVENTS_REASON if mine else None)

    def apply_pending(self, through: int) -> None:
        """The applier's step: the stored writes past the live state, events up to ``through``, as
        one staged apply (not under ``write_lock``: commits go on meanwhile)."""
        self.state.catch_up(self.store, self.encode, through)
        self._maybe_refit()

    # -- background refit ---------------------------------------------------------------------
    def _maybe_refit(self) -> None:
        """Start a background refit when ``refit_every`` events were applied since the artifact
        (one at a time; requests keep being served by the current state meanwhile)."""
        every = self.config.refit_every
        through = int(self.state.bundle.manifest.get("through", {}).get("event_seq", 0))
        if every is None or self.state.last_event_seq - max(through, self._refit_failed_at) < every:
            return  # (after a failure: another ``every`` events before the next try)
        with self._refit_lock:
            if self._refitter is not None and self._refitter.is_alive():
                return
            self._refitter = threading.Thread(target=self._refit_quietly, name="refit", daemon=True)
            self._refitter.start()

    def _refit_quietly(self) -> None:
        try:
            self.refit_now()
        except Exception as exc:  # the current state keeps serving; ``refit_every`` events later, again
            self._refit_failed_at = self.state.last_event_seq
            logger.error("background refit failed (%s); still serving %s", one_line(exc), self.state.bundle.version)

    def refit_now(self) -> str:
        """Fit the live state's data from scratch, save it as a new artifact version and swap it in
        (``reload``); returns the new version. Writes go on during the fit: the reload replays
        the store after the sequence numbers the new version contains."""
        from longtail.serve.bundle import save_bundle
        from longtail.serve.refit import refit, snapshot

        with self.write_lock, self.state.writing, self.state.lock:
            data = snapshot(self.state)
        save_bundle(refit(data), self.config.artifact)
        _, version, _ = self.reload(force=False)
        self.refits += 1
        return version

    def _unknown_items(self, events: list[EventIn]) -> list[str]:
        catalogue = self.state.catalogue
        return sorted({e.item_id for e in events if catalogue.index_of(e.item_id) is None})

    def add_items(self, items: list[ItemIn]) -> ItemsCreated:
        """Embed, commit, then index new items; all or nothing, twice: nothing is stored unless all
        are, and the live catalogue takes all of them or none (a stored batch it cannot index is
        set aside for the next refit or restart, and the answer says so)."""
        ids = [i.item_id for i in items]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise Conflict(f"item_id repeated in the batch: {', '.join(map(repr, repeated[:5]))}")
        self._refuse_existing(ids)
        titles = [i.title for i in items]
        texts = [i.text.strip() for i in items]
        categories = ["|".join(c.strip() for c in i.categories if c.strip()) for i in items]
        state = self.state
        vectors = self.encode(state, titles, texts, categories)  # the slow part, outside the lock
        fingerprint = state.encoder_fingerprint
        with self.write_lock:
            self._refuse_existing(ids)
            if self.state.encoder_fingerprint != fingerprint:  # an artifact swap changed the encoder
                raise Unavailable("the artifact changed while the items were embedded; send them again")
            try:
                seqs = self.store.add_items(list(zip(ids, titles, texts, categories, strict=True)),
                                            fingerprint, vectors)
            except DuplicateKey as exc:  # stored meanwhile by another process (keys CLI, a test)
                logger.info("POST /items refused: %s", exc)
                raise Conflict("an item_id in the batch already exists in the store") from None
            except StoreUnavailable as exc:
                raise not_stored(exc) from exc
            if self.store.shared:  # others' items may sit before ours: apply all in order
                setback = self.state.catch_up(self.store, self.encode)
            else:
                setback = self.state.add_items(seqs, ids, titles, texts, vectors)
            size = len(self.state.catalogue)
        lost = bool(set(seqs) & set(setback.item_seqs))
        return ItemsCreated(added=ids, catalogue_size=size, indexed=not lost, reason=ITEMS_REASON if lost else None)

    def _refuse_existing(self, ids: list[str]) -> None:
        existing = [i for i in ids if self.state.catalogue.index_of(i) is not None]
        if existing:
            raise Conflict(f"item_id already in the catalogue: {', '.join(map(repr, existing[:5]))}")

    # -- artifact swap ------------------------------------------------------------------------
    def artifact_target(self) -> Path:
        return Path(os.path.realpath(self.config.artifact))

    def reload(self, *, force: bool = True, wait: bool = True) -> tuple[str, str, float]:
        """Build a state from the artifact's current version and swap it in; (previous, new, s).
        ``wait=False`` (``POST /admin/reload``): refused at once (``ReloadRunning``) while another
        reload runs, so repeated calls cannot pile up worker threads waiting for the first."""
        if not self._reload_lock.acquire(blocking=wait):
            raise ReloadRunning(RELOAD_RUNNING)
        try:
            return self._reload(force)
        finally:
            self._reload_lock.release()

    def reloading(self) -> bool:
        """Whether a reload (HTTP, watcher or refit) is running now."""
        return self._reload_lock.locked()

    def _reload(self, force: bool) -> tuple[str, str, float]:
        """The reload itself; the caller holds ``_reload_lock``."""
        started = time.perf_counter()
        previous = self.state.bundle.version
        target = self.artifact_target()
        if not force and target == self.state.bundle.source:
            return previous, previous, 0.0
        try:
            fresh = LiveState.load(self.config.artifact, self.store, self.encode)
            with self.write_lock:
                fresh.catch_up(self.store, self.encode)  # writes since the replay
                self.state = fresh
        except StoreUnavailable as exc:
            raise Unavailable(f"reload failed: {exc}; still serving {previous}",
                              retry_after=exc.retry_after) from exc
        except Exception as exc:  # any fault of the new version: keep serving the old one
            reason = why_unloadable(exc)
            if isinstance(exc, LongtailError):  # a message of ours: one line, traceback for debugging
                logger.error("cannot load artifact version %s: %s; still serving %s", target.name, exc, previous)
                logger.debug("artifact load failure", exc_info=exc)
            else:
                logger.error("cannot load artifact version %s; still serving %s", target.name, previous,
                             exc_info=exc)
            raise ReloadFailed(f"cannot load artifact version {target.name}: {reason}; "
                               f"still serving {previous}", target) from exc
        self.reloads += 1
        self.keep_encoder_of(fresh)
        settle_later()  # the new state out of the collector's scans, the old one collected
        seconds = time.perf_counter() - started
        logger.info("artifact swapped: %s -> %s in %.2fs", previous, fresh.bundle.version, seconds)
        return previous, fresh.bundle.version, seconds

    def start_watcher(self) -> None:
        if self.config.watch_s is None or self._watcher is not None:
            return

        def watch() -> None:
            while not self._stop.wait(self.config.watch_s):
                self.poll_artifact()

        self._watcher = threading.Thread(target=watch, name="artifact-watcher", daemon=True)
        self._watcher.start()

    def poll_artifact(self) -> None:
        """One watcher step: swap in a new version. A version that failed to load is logged once
        (by ``reload``) and not read again: a version directory never changes, only the link."""
        if self.artifact_target() == self._bad_target:
            return
        try:
            self.reload(force=False)
            self._bad_target = self._poll_error = None
        except ReloadFailed as exc:
            self._bad_target = exc.target
        except Exception as exc:  # e.g. the store cannot be read now: try again at the next poll
            if str(exc) != self._poll_error:  # one line per distinct failure, not one per poll
                logger.warning("artifact reload failed (%s); still serving %s", exc, self.state.bundle.version)
            self._poll_error = str(exc)

    # -- other processes' writes (a shared store) ----------------------------------------------
    def start_follower(self, poll_s: float = 5.0) -> None:
        """Apply what other processes commit to a shared store (PostgreSQL), as it commits."""
        if not self.store.shared or self._follower is not None:
            return
        self._follower = threading.Thread(target=self.store.follow, args=(self.follow_step, self._stop),
                                          kwargs={"poll_s": poll_s}, name="store-follower", daemon=True)
        self._follower.start()

    def follow_step(self) -> None:
        """Catch the live state up with the store; a fault is logged once and tried again later."""
        try:
            with self.write_lock:
                self.state.catch_up(self.store, self.encode)
            self._follow_error = None
        except Exception as exc:
            if str(exc) != self._follow_error:
                logger.warning("cannot follow the store's writes now (%s); will retry", exc)
            self._follow_error = str(exc)

    def close(self) -> None:
        if self.applier is not None:
            self.applier.close()
        self._stop.set()
        for thread in (self._watcher, self._follower):
            if thread is not None:
                thread.join(timeout=5)
        self.store.close()

    def gauges(self) -> dict[str, tuple[str, float]]:
        state = self.state
        return {
            "longtail_catalogue_items": ("Items in the live catalogue (artifact + posted).", len(state.catalogue)),
            "longtail_catalogue_items_posted": ("Items added through POST /items since the artifact.",
                                                len(state.catalogue) - state.catalogue.n_model),
            "longtail_users": ("Users known to the live state.", len(state.histories)),
            "longtail_events_stored": ("Events committed to the store.", self.events_stored),
            "longtail_events_skipped": ("Stored events on items the current artifact lacks.", state.events_skipped),
            "longtail_events_not_applied": ("Stored events the live model refused, kept for the next refit.",
                                            len(state.unapplied)),
            "longtail_items_not_indexed": ("Stored items the live catalogue could not take, kept for the next refit.",
                                           len(state.unindexed)),
            "longtail_artifact_reloads_total": ("Artifact swaps since start.", self.reloads),
            "longtail_refits_total": ("Background refits since start.", self.refits),
            "longtail_model_updates": ("partial_fit updates of the served model since its artifact.",
                                       state.model_updates),
            "longtail_uptime_seconds": ("Seconds since the service started.", time.time() - self.started),
            **(self.applier.gauges() if self.applier is not None else {}),
        }

