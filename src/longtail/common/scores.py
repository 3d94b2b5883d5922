"""The score conventions every layer shares: what "no opinion" is and how to test for it."""

from __future__ import annotations

import numpy as np

# A model's "no opinion" on an item (a CF model on an item without interactions): it ranks after
# every scored item, ties by item id, like Cornac's ``default_score``. Never returned by top-k
# as a real score when enough scored items exist.
UNSCORED = np.float32(-1e30)
# Anything at or below this counts as unscored: arithmetic on UNSCORED (a weighted sum, a
# float64 round trip) must not turn "no opinion" into a very bad opinion.
_UNSCORED_FLOOR = np.float32(UNSCORED / 2)


def scored_mask(scores: np.ndarray) -> np.ndarray:
    """True where a model gave a real score (not ``UNSCORED``, not NaN)."""
    return np.asarray(scores) > _UNSCORED_FLOOR


__all__ = ["UNSCORED", "scored_mask"]
