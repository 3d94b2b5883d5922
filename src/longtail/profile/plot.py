"""A profile as a picture: the person's genre mix, and where their items sit on the catalogue's
popularity curve (a head-heavy person's marks crowd the left, a tail-leaning one's spread right)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from longtail.common.figures import save_figure  # noqa: E402
from longtail.profile.profile import UserProfile  # noqa: E402


def plot_profile(profile: UserProfile, item_counts: np.ndarray, history: np.ndarray, path: Path,
                 title: str = "") -> Path:
    """Two panels into ``path`` (PNG, written atomically): genre shares; the catalogue's items by
    popularity rank (log count) with the history's items marked."""
    counts = np.asarray(item_counts, np.float64)
    order = np.argsort(-counts, kind="stable")
    rank = np.empty(len(counts), np.int64)
    rank[order] = np.arange(len(counts))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    genres = profile.genres[:10]
    if genres:
        names = [name for name, _ in genres][::-1]
        left.barh(names, [share for _, share in genres][::-1], color="#4c72b0")
        left.set_xlabel("share of the history")
    else:
        left.text(0.5, 0.5, "no genres or categories in this catalogue", ha="center", va="center")
        left.set_axis_off()
    left.set_title("genres / categories")
    right.plot(np.arange(len(counts)), counts[order] + 1, color="#999999", lw=1, label="catalogue")
    items = np.unique(np.asarray(history, np.int64))
    right.scatter(rank[items], counts[items] + 1, s=12, color="#dd8452", zorder=3,
                  label=f"this person's {len(items)} items")
    right.set_yscale("log")
    right.set_xlabel("items by popularity rank")
    right.set_ylabel("interactions + 1")
    mix = ", ".join(f"{share:.0%} {bucket}" for bucket, share in profile.mix.items())
    right.set_title(f"popularity curve ({mix})")
    right.legend(loc="upper right")
    fig.suptitle(title or f"profile: {profile.n_items} items, {profile.level}")
    fig.tight_layout()
    return save_figure(fig, path)
