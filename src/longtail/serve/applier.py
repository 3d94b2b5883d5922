"""Deferred events (``longtail serve --apply-every-ms T``): ``POST /events`` commits to the store and
answers 201 at once; this thread applies what is pending to the live state, off the request path.

Why: applying in the request costs what the model's update costs (EASE's exact update is
``O(n² u)``: ~100 ms per event at 6.3k warm items, 4x that at twice the items), and requests wait for
it in turn. Deferred, a request costs one store commit whatever the catalogue's size, and one apply
takes every event pending (EASE's cost grows with the users an update touches, not its events).

What stays true:
- nothing acknowledged is lost: the 201 follows the store's commit, and the applier replays the
  store by sequence number (``LiveState.catch_up``), so a crash leaves the pending events in the
  store and the restart's replay applies them;
- never half-applied: each apply is one ``catch_up``, i.e. the staged apply-then-publish of
  ``serve.state`` (histories, popularity and model published together, refused events set aside
  and counted in ``longtail_events_not_applied``, learned by the next refit);
- the bound: an event reaches the user's recommendations within ``T`` ms of its 201 plus the
  duration of up to two applies (the one running when ``T`` elapses, then the one that carries it);
  ``/metrics`` shows the last and longest apply and the longest ack-to-publish lag observed.

The thread runs at a lower CPU priority (nice +10 on Linux, per thread): an apply is bulk work that
can wait a few ms, a recommendation request cannot.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from longtail.models.artifact import one_line

logger = logging.getLogger(__name__)
NICE = 10  # the applier's niceness: requests get the cores first


class Applier:
    """One background thread applying pending events every ``every_ms`` ms, or as soon as
    ``every`` are pending; ``step`` applies everything the store holds past the live state."""

    def __init__(self, step: Callable[[int], None], every_ms: int, every: int | None = None) -> None:
        self.step = step
        self.every_s = every_ms / 1000.0
        self.every = every
        self._cond = threading.Condition()
        self._stop = False
        self.pending = 0  # acknowledged, not yet taken by an apply
        self._inflight = 0  # taken by the apply running now
        self._through = 0  # the last acknowledged sequence number: an apply goes up to it, no further
        self._oldest: float | None = None  # monotonic time of the oldest pending acknowledgement
        self.applies = 0
        self.failures = 0
        self.last_s = self.max_s = self.max_lag_s = 0.0
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name="event-applier", daemon=True)
        self._thread.start()

    def notify(self, n: int, last_seq: int) -> None:
        """``n`` events up to ``last_seq`` were committed and acknowledged: apply them within the bound."""
        with self._cond:
            self.pending += n
            self._through = max(self._through, last_seq)
            if self._oldest is None:
                self._oldest = time.monotonic()
            self._cond.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Stop after the apply in progress; what is pending stays in the store for the next start."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)

    def _due(self) -> bool:
        assert self._oldest is not None
        full = self.every is not None and self.pending >= self.every
        return full or time.monotonic() >= self._oldest + self.every_s

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)  # Linux: this thread only
        except (AttributeError, OSError):
            pass
        while True:
            with self._cond:
                while not self._stop and (self._oldest is None or not self._due()):
                    wait = None if self._oldest is None else self._oldest + self.every_s - time.monotonic()
                    self._cond.wait(None if wait is None else max(wait, 0.0))
                if self._stop:
                    return
                taken, oldest, through = self.pending, self._oldest, self._through
                self.pending, self._oldest, self._inflight = 0, None, taken
            began = time.monotonic()
            try:
                self.step(through)
            except Exception as exc:  # e.g. the store cannot be read now: the events wait in it
                self.failures += 1
                if one_line(exc) != self._error:
                    logger.warning("cannot apply %d pending events now (%s); will retry", taken, one_line(exc))
                self._error = one_line(exc)
                with self._cond:
                    self.pending, self._inflight = self.pending + taken, 0
                    self._oldest = min(t for t in (oldest, self._oldest) if t is not None)
                    self._cond.wait(self.every_s)  # not a busy loop
                continue
            self._error, self._inflight = None, 0
            done = time.monotonic()
            self.applies += 1
            self.last_s = done - began
            self.max_s = max(self.max_s, self.last_s)
            self.max_lag_s = max(self.max_lag_s, done - (oldest or began))

    def gauges(self) -> dict[str, tuple[str, float]]:
        return {
            "longtail_events_pending": ("Events acknowledged and not yet applied (--apply-every-ms).",
                                        self.pending + self._inflight),
            "longtail_applies_total": ("Background applies of pending events.", self.applies),
            "longtail_apply_failures_total": ("Background applies that could not run (retried).", self.failures),
            "longtail_apply_seconds": ("Duration of the last background apply.", self.last_s),
            "longtail_apply_seconds_max": ("Longest background apply since start.", self.max_s),
            "longtail_apply_lag_seconds_max": ("Longest time from an acknowledgement to its apply's publish.",
                                               self.max_lag_s),
        }
