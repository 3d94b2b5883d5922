"""Nest one dict of arrays inside another by key prefix (an ``npz`` file holds one flat dict).

The prefix carries its own separator (``"model."``, ``"cf/"``, ``"part0/"``): ``pack`` prepends it
to every key and ``unpack`` keeps only the keys that start with it, with the prefix removed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def pack(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{prefix + key: array}`` for every entry of ``arrays`` (the arrays themselves, not copies)."""
    return {f"{prefix}{key}": value for key, value in arrays.items()}


def unpack(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The entries of ``arrays`` whose key starts with ``prefix``, with the prefix stripped;
    the inverse of ``pack`` (keys under any other prefix are left out)."""
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}
