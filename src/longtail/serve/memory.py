"""The serving state out of the garbage collector's way.

A loaded state is ~500,000 long-lived Python objects (ids, titles, vocabularies). Each full
collection scans them all: 250-400 ms with the GIL held, during which no request moves (a /health
probe waited that long while 32 portraits allocated their way into one). ``gc.freeze()`` moves the
objects alive now out of every later scan; they are still freed by reference counting.
"""

from __future__ import annotations

import gc
import threading

SETTLE_AFTER_SWAP_S = 5.0  # requests in flight on the old state have finished by then


def settle() -> None:
    """Collect what is garbage now, then freeze every live object (the state just loaded)."""
    gc.unfreeze()  # what an earlier settle froze may be garbage now (a swapped-out state)
    gc.collect()
    gc.freeze()


def settle_later(delay_s: float = SETTLE_AFTER_SWAP_S) -> None:
    """``settle`` in ``delay_s`` on a thread of its own: after a swap, once the requests still on the
    old state are done, so the old state is collected rather than frozen."""
    timer = threading.Timer(delay_s, settle)
    timer.daemon = True
    timer.start()
