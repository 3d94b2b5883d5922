"""A small real dataset for tests that need the whole stack: ml-latest-small (shipped with the
package, so always there) cut to its most popular items, with their real titles and ratings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from longtail.data import resolve_dataset


def popular_slice(out: Path, n_items: int = 300) -> Path:
    """Write ``items.csv`` and ``interactions.csv`` of ml-latest-small's ``n_items`` most rated
    items into ``out``; returns ``out``."""
    source = resolve_dataset("ml-latest-small")
    items = pd.read_csv(next(source.glob("items.*")), dtype={"item_id": str})
    inter = pd.read_csv(next(source.glob("interactions.*")), dtype={"user_id": str, "item_id": str})
    keep = set(inter["item_id"].value_counts().index[:n_items])
    items[items["item_id"].isin(keep)].to_csv(out / "items.csv", index=False)
    inter[inter["item_id"].isin(keep)].to_csv(out / "interactions.csv", index=False)
    return out
