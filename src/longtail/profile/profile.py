"""`UserProfile`: what a history says about a person, as plain data (JSON through ``to_dict``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Scored = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Interest:
    """One group of similar history items (a k-means cluster of their vectors)."""

    items: tuple[int, ...]  # catalogue indices, in history order
    item_ids: tuple[str, ...]
    representative: int  # the member closest to the centroid
    representative_id: str
    representative_title: str
    keywords: Scored  # the group's own keywords (its items' words, ranked for the group)
    genre: str | None  # the label most of the group's items carry (None: catalogue has none)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": len(self.items),
            "items": list(self.items),
            "item_ids": list(self.item_ids),
            "representative": self.representative,
            "representative_id": self.representative_id,
            "representative_title": self.representative_title,
            "keywords": [{"keyword": word, "score": score} for word, score in self.keywords],
            "genre": self.genre,
        }


@dataclass(frozen=True)
class Activity:
    """How much the person interacts, against the dataset's users (see ``context.activity_cuts``)."""

    level: str  # "light" | "regular" | "heavy"
    percentile: float | None  # share of the dataset's users with a shorter history (None: unknown)
    cuts: tuple[int, int]  # history lengths where "regular" and "heavy" begin

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "percentile": self.percentile, "regular_from": self.cuts[0],
                "heavy_from": self.cuts[1]}


@dataclass(frozen=True)
class UserProfile:
    """A person's profile from their history: interest keywords, label (genre / category) mix,
    head / tail / cold mix, activity and multi-interest centroids."""

    user: int  # the history's user index (-1: unknown)
    n_items: int  # distinct items in the history
    activity: Activity
    keywords: Scored
    keyword_method: str
    genres: Scored  # (label, share of the history's label weight), largest first; shares sum to 1
    mix: dict[str, float]  # share of history items per popularity bucket: head / tail / cold
    interests: tuple[Interest, ...]
    first_time: int | None = None
    last_time: int | None = None

    @property
    def level(self) -> str:
        return self.activity.level

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (ints, floats, strings, lists)."""
        return {
            "user": self.user,
            "n_items": self.n_items,
            "activity": self.activity.to_dict(),
            "keywords": [{"keyword": word, "score": score} for word, score in self.keywords],
            "keyword_method": self.keyword_method,
            "genres": [{"genre": name, "share": share} for name, share in self.genres],
            "mix": dict(self.mix),
            "interests": [interest.to_dict() for interest in self.interests],
            "first_time": self.first_time,
            "last_time": self.last_time,
        }
