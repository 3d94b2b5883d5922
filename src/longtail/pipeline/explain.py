"""Explanations as one short sentence a person can read (titles instead of indices)."""

from __future__ import annotations

from collections.abc import Sequence

from longtail.models.explain import Explanation


def _titles(explanation: Explanation, titles: Sequence[str], top: int = 2) -> str:
    names = [f"\u201c{titles[e.item][:60]}\u201d" for e in explanation.evidence[:top]]
    return " and ".join(names)


def describe(explanation: Explanation, titles: Sequence[str]) -> str:
    """``explanation`` in words, e.g. 'because you liked "Heat" (0.42)'."""
    e = explanation
    because = _titles(e, titles)
    if e.kind == "popular":
        return f"popular: {int(e.detail.get('count', 0))} interactions"
    if e.kind == "text":
        age = "new item" if e.detail.get("new") else "item without interactions"
        return f"{age}, similar to {because}" if because else age
    if e.kind == "parts":
        shares = {k: v for k, v in e.detail.items() if k not in ("gate", "cold")}
        driver = max(shares, key=lambda k: abs(shares[k])) if shares else e.model
        text = f"{e.model}: mostly {driver}"
        return f"{text}, because you liked {because}" if because else text
    if e.kind == "history" and because:
        return f"{e.model}: because you liked {because}"
    return f"{e.model} score"
