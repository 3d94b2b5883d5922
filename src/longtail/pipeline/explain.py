"""Explanations as one short sentence a person can read (titles instead of indices)."""

from __future__ import annotations

from collections.abc import Sequence

from longtail.models.explain import Explanation


def _titles(explanation: Explanation, titles: Sequence[str], top: int = 2) -> str:
    names = [f"\u201c{titles[e.item][:60]}\u201d" for e in explanation.evidence[:top]]
    return " and ".join(names)


def shared_labels(explanation: Explanation, labels: Sequence[str] | None, top: int = 3) -> list[str]:
    """Genres / categories (``labels``: per item, "a|b|c") the recommended item shares with its
    evidence items, in the item's own order; none when the catalogue has no labels."""
    if labels is None or explanation.item >= len(labels):
        return []
    own = [label for label in str(labels[explanation.item]).split("|") if label]
    theirs = {label for e in explanation.evidence[:2] if e.item < len(labels)
              for label in str(labels[e.item]).split("|")}
    return [label for label in own if label in theirs][:top]


def describe(explanation: Explanation, titles: Sequence[str], labels: Sequence[str] | None = None) -> str:
    """``explanation`` in words, e.g. 'because you liked "Heat" (shared: Crime, Thriller)'.
    ``labels``: each item's genres / categories ("a|b|c"), to name what it shares with its evidence."""
    e = explanation
    because = _titles(e, titles)
    shared = shared_labels(e, labels)
    if because and shared:
        because += f" (shared: {', '.join(shared)})"
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
