"""Descriptive statistics of a dataset: the counts a dataset README states, and the popularity curve."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from longtail.data.buckets import COLD, HEAD, TAIL
from longtail.data.dataset import Dataset


def gini(values: np.ndarray) -> float:
    """Gini coefficient, sorted-ascending Lorenz form: ``sum((2i - n - 1) x_(i)) / (n sum x)``."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(np.sum((2 * ranks - n - 1) * x) / (n * x.sum()))


def _utc(seconds: int) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _describe(counts: pd.Series) -> dict[str, float]:
    return {
        "min": int(counts.min()),
        "median": float(counts.median()),
        "mean": float(counts.mean()),
        "max": int(counts.max()),
    }


def raw_stats(dataset: Dataset, *, timestamps_are_positions: bool | None = None) -> dict:
    """Counts over the raw interactions (every row, before the positives rule), in the layout of
    the shared datasets' ``stats.json``."""
    inter = dataset.raw.interactions
    per_item = inter.groupby("item_id").size().sort_values(ascending=False)
    per_user = inter.groupby("user_id").size()
    n_inter, n_users, n_items = len(inter), len(per_user), len(per_item)
    share = per_item.cumsum().to_numpy() / n_inter
    top20 = int(np.ceil(0.2 * n_items))
    ratings = inter["rating"].dropna()
    ts = inter["timestamp"]
    if timestamps_are_positions is None:
        timestamps_are_positions = bool(ts.max() < 10_000_000)
    interacted = dataset.raw.items[dataset.raw.items["item_id"].isin(per_item.index)]
    n_head20 = int(np.searchsorted(share, 0.2 - 1e-12) + 1)
    top_share = float(share[top20 - 1]) if top20 else 0.0
    out = {
        "users": n_users,
        "items_interacted": n_items,
        "items_in_items_csv": dataset.n_items,
        "interactions": n_inter,
        "duplicate_user_item_pairs": int(inter.duplicated(["user_id", "item_id"]).sum()),
        "items_with_text (interacted)": int((interacted["text"].str.strip() != "").sum()),
        "items_with_title (interacted)": int((interacted["title"].str.strip() != "").sum()),
        "density": n_inter / (n_users * n_items),
        "rating_values": sorted(float(r) for r in ratings.unique()),
        "time_min_utc": None if timestamps_are_positions else _utc(ts.min()),
        "time_max_utc": None if timestamps_are_positions else _utc(ts.max()),
        "timestamp_is_sequence_position": timestamps_are_positions,
        "interactions_per_user": _describe(per_user),
        "interactions_per_item": _describe(per_item),
        "head_items_covering_20pct_interactions": n_head20,
        "head_items_share_of_catalog": n_head20 / n_items,
        "top20pct_items_share_of_interactions": top_share,
        "tail80pct_items_share_of_interactions": 1.0 - top_share,
        "items_lt5_interactions": int((per_item < 5).sum()),
        "items_lt5_share": float((per_item < 5).mean()),
        "items_eq1_interaction": int((per_item == 1).sum()),
        "gini_item_popularity": gini(per_item.to_numpy()),
    }
    if timestamps_are_positions:
        out["sequence_position_max"] = int(ts.max())
    return out


def protocol_stats(dataset: Dataset) -> dict:
    """The protocol's view: positives, split sizes, bucket sizes and their share of train+valid."""
    counts = dataset.item_counts
    total = max(int(counts.sum()), 1)
    buckets = {}
    for code, name in ((HEAD, "head"), (TAIL, "tail"), (COLD, "cold")):
        mask = dataset.buckets == code
        buckets[name] = {
            "items": int(mask.sum()),
            "share_of_catalogue": float(mask.mean()),
            "share_of_positives": float(counts[mask].sum() / total),
        }
    return {
        "protocol": dataset.protocol,
        "keep_seen": dataset.keep_seen,
        "min_rating": dataset.min_rating,
        "split": dataset.summary(),
        "buckets": buckets,
        "gini_train_valid": gini(counts[counts > 0]),
    }


def popularity_curve(dataset: Dataset) -> np.ndarray:
    """Raw interaction counts per interacted item, most popular first (the long-tail curve)."""
    return dataset.raw.interactions.groupby("item_id").size().sort_values(ascending=False).to_numpy()
