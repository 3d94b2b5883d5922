"""What a fine-tuning run shows: the loss and validation curves as a PNG, and the frozen vs
adapted encoder on valid (overall / tail / cold ndcg@20) as rows for a table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longtail.common.figures import save_figure
from longtail.text.finetune.trainer import CRITERION, FinetuneResult

GROUPS = (CRITERION, "tail", "cold")


def before_after(result: FinetuneResult) -> list[dict[str, Any]]:
    """Rows frozen (step 0), adapted (the kept encoder: best on valid) with each group's ndcg@20
    and the relative change; empty without validations."""
    if not result.validations:
        return []
    frozen = result.validations[0]
    kept = max(result.validations, key=lambda v: (v[CRITERION], -v["step"]))  # first best, as saved
    rows = [{"encoder": "frozen", "step": 0, **{g: frozen.get(g) for g in GROUPS}},
            {"encoder": "adapted" if kept.get("alpha", 1.0) == 1.0 else f"adapted (mix {kept['alpha']:g})",
             "step": kept["step"], **{g: kept.get(g) for g in GROUPS}}]
    change = {g: (kept[g] / frozen[g] - 1.0) if frozen.get(g) else None for g in GROUPS}
    rows.append({"encoder": "relative change", "step": None, **change})
    return rows


def plot_training(result: FinetuneResult, path: Path, *, title: str) -> Path:
    """Mean loss every few steps and valid ndcg@20 (overall, tail, cold) against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    if result.losses:
        left.plot(*zip(*result.losses), marker=".")
    left.set(xlabel="step", ylabel="in-batch contrastive loss", title="training loss")
    for group in GROUPS:
        points = [(v["step"], v[group]) for v in result.validations
                  if v.get(group) == v.get(group) and v.get("alpha", 1.0) == 1.0]
        if points:
            right.plot(*zip(*points), marker="o", label=group if group != CRITERION else "overall")
    right.set(xlabel="step", ylabel="valid ndcg@20 (semantic-attn)", title="validation")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
