"""Explanations in words name what a recommendation shares with its evidence (real ml genres)."""

from __future__ import annotations

from longtail.data import load_dataset
from longtail.models.explain import Evidence, Explanation
from longtail.pipeline.explain import describe, shared_labels


def test_shared_genres_come_from_the_item_and_its_evidence() -> None:
    ds = load_dataset("ml-latest-small")
    titles = ds.items["title"].tolist()
    genres = ds.items["genres"].fillna("").tolist()
    index = {title: i for i, title in enumerate(titles)}
    toy, bugs, heat = index["Toy Story (1995)"], index["Bug's Life, A (1998)"], index["Heat (1995)"]
    why = Explanation(toy, "history", "semantic-attn", (Evidence(bugs, 0.6), Evidence(heat, 0.2)))
    shared = shared_labels(why, genres)
    expected = [g for g in genres[toy].split("|") if g in set(genres[bugs].split("|")) | set(genres[heat].split("|"))]
    assert shared == expected[:3] and shared  # in Toy Story's own order, only genres an evidence item has
    sentence = describe(why, titles, genres)
    assert "Toy Story" not in sentence and "Bug's Life" in sentence and f"(shared: {', '.join(shared)})" in sentence
    assert "shared" not in describe(why, titles)  # no labels, no claim
    alone = Explanation(toy, "popular", "pop", detail={"count": 12})
    assert describe(alone, titles, genres) == "popular: 12 interactions"
