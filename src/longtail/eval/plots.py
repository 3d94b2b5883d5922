"""Plots a person would rather look at than read (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from longtail.common.files import atomic_writer  # noqa: E402

BUCKET_COLOURS = {"head": "#d95f02", "tail": "#1b9e77", "cold": "#7570b3"}


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_writer(path) as handle:
            fig.savefig(handle, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def plot_long_tail(curve: np.ndarray, path: str | Path, *, title: str, head_share: float = 0.2) -> Path:
    """Interactions per item against popularity rank (log y), head shaded, plus the Lorenz curve."""
    curve = np.asarray(curve, dtype=float)
    n = len(curve)
    n_head = int(np.floor(head_share * n))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    ranks = np.arange(1, n + 1)
    left.fill_between(ranks[:n_head], curve[:n_head], color=BUCKET_COLOURS["head"], alpha=0.6,
                      label=f"head (top {head_share:.0%} of items)")
    left.fill_between(ranks[n_head:], curve[n_head:], color=BUCKET_COLOURS["tail"], alpha=0.6,
                      label="tail")
    left.set_yscale("log")
    left.set_xlabel("item popularity rank")
    left.set_ylabel("interactions (log)")
    left.set_title(title)
    left.legend()
    share_items = ranks / n
    share_inter = np.cumsum(curve) / curve.sum()
    right.plot(share_items, share_inter, color="black")
    right.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    right.axvline(head_share, color=BUCKET_COLOURS["head"], lw=0.8)
    top = share_inter[max(n_head - 1, 0)]
    right.annotate(f"top {head_share:.0%} items: {top:.0%} of interactions", (head_share, top),
                   xytext=(0.3, 0.3), arrowprops={"arrowstyle": "->"})
    right.set_xlabel("share of items (most popular first)")
    right.set_ylabel("share of interactions")
    right.set_title("concentration")
    return _save(fig, Path(path))


def plot_metrics_by_bucket(payload: dict, path: str | Path, *, k: int = 20) -> Path:
    """Grouped bars: ndcg@k and recall@k of every model in every bucket present."""
    models = payload["models"]
    groups = [g for g in ("overall", "head", "tail", "cold") if any(g in m for m in models.values())]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(groups))
    for ax, metric in zip(axes, (f"ndcg@{k}", f"recall@{k}")):
        for offset, (name, entry) in enumerate(models.items()):
            values = [entry.get(g, {}).get(metric) or 0.0 for g in groups]
            ax.bar(x + offset * width - 0.4 + width / 2, values, width, label=name)
        ax.set_xticks(x, groups)
        ax.set_ylabel(metric)
        ax.set_title(f"{payload['dataset']}: {metric} by popularity bucket")
    axes[0].legend(fontsize=8)
    return _save(fig, Path(path))


def plot_recommendation_long_tail(
    item_counts: np.ndarray, lists_by_model: dict[str, np.ndarray], path: str | Path, *, title: str
) -> Path:
    """How often each item is recommended, items ordered by training popularity (most popular
    first): a model that only serves the head is a spike on the left."""
    order = np.lexsort((np.arange(len(item_counts)), -item_counts))
    fig, ax = plt.subplots(figsize=(8, 4))
    n_head = int(np.floor(0.2 * (item_counts > 0).sum()))
    ax.axvspan(0, n_head, color=BUCKET_COLOURS["head"], alpha=0.08, label="head")
    ax.axvspan((item_counts > 0).sum(), len(item_counts), color=BUCKET_COLOURS["cold"], alpha=0.08,
               label="cold")
    for name, lists in lists_by_model.items():
        freq = np.bincount(lists[lists >= 0], minlength=len(item_counts))[order]
        share = np.cumsum(freq) / max(freq.sum(), 1)
        ax.plot(np.arange(1, len(share) + 1), share, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("item popularity rank in train+valid (log)")
    ax.set_ylabel("cumulative share of recommendations")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, Path(path))


def plot_tradeoff(
    rows: list[dict], path: str | Path, *, title: str, split: str = "test", k: int = 20,
    chosen: dict[str, float] | None = None,
) -> Path:
    """ndcg@k against aplt@k, ild@k and coverage@k as the diversity knob λ goes 0 -> 1, one curve per
    re-ranker (rows as in ``tradeoff.json``). λ = 0 (the base model) is the black star; the λ chosen
    on valid is ringed; the dotted line is 90% of the base model's ndcg@k."""
    rows = [r for r in rows if r["split"] == split]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    base = next((r for r in rows if r["diversity"] == 0.0), None)
    for ax, metric in zip(axes, (f"aplt@{k}", f"ild@{k}", f"coverage@{k}")):
        for method in methods:
            part = sorted((r for r in rows if r["method"] == method), key=lambda r: r["diversity"])
            (line,) = ax.plot([r[metric] for r in part], [r[f"ndcg@{k}"] for r in part], marker="o", ms=3,
                              label=method)
            pick = next((r for r in part if chosen and r["diversity"] == chosen.get(method)), None)
            if pick is not None:
                ax.scatter([pick[metric]], [pick[f"ndcg@{k}"]], s=110, facecolors="none",
                           edgecolors=line.get_color(), linewidths=1.5)
                ax.annotate(f"λ={pick['diversity']:g}", (pick[metric], pick[f"ndcg@{k}"]), fontsize=7,
                            xytext=(4, 4), textcoords="offset points", color=line.get_color())
        if base is not None:
            ax.scatter([base[metric]], [base[f"ndcg@{k}"]], marker="*", s=150, color="black", zorder=5,
                       label="base model (λ=0)")
            ax.axhline(0.9 * base[f"ndcg@{k}"], color="grey", ls=":", lw=0.8, label="90% of base ndcg")
        ax.set_xlabel(metric)
        ax.set_ylabel(f"ndcg@{k}")
        ax.set_title(f"ndcg@{k} vs {metric}")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, Path(path))


def plot_gate_curve(item_counts: np.ndarray, curves: dict[str, np.ndarray], path: str | Path, *,
                    title: str) -> Path:
    """The hybrid's learned weight of semantics against item popularity, one line per kind of user
    (``curves``: label -> weight at each item count of ``item_counts``)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, weights in curves.items():
        ax.plot(np.asarray(item_counts), weights, label=label)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("item interactions in training (log)")
    ax.set_ylabel("weight of semantics (gate)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))
