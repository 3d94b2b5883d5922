"""item_texts: template rendering, de-duplication against ``text``, truncation, the raw path."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longtail.data import resolve_dataset
from longtail.errors import ConfigError, LongtailError
from longtail.text import item_texts


def _shared_items(name: str) -> pd.DataFrame:
    try:
        folder = resolve_dataset(name)
    except LongtailError:
        pytest.skip(f"dataset {name} not available")
    return pd.read_csv(next(iter(sorted(folder.glob("items.*")))))


@pytest.mark.parametrize("name", ["ml-latest-small", "amazon-digital-music-sample",
                                  "amazon-scientific-seqorder"])
def test_default_template_on_shared_catalogues(name: str) -> None:
    items = _shared_items(name)
    texts = item_texts(items)
    assert len(texts) == len(items)
    for text, title, raw in zip(texts, items["title"], items["text"], strict=True):
        title, raw = " ".join(str(title).split()).rstrip(",;:"), " ".join(str(raw).split())
        assert text.startswith(title)
        assert text.count(title) <= raw.count(title)  # the title is not repeated
        assert len(text) <= 1000 and "  " not in text
    if name == "ml-latest-small":
        assert texts[0] == "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy."
        assert sum(t.count("Genres:") for t in texts) == items["text"].str.count("Genres:").sum()


def test_fields_are_added_when_text_lacks_them() -> None:
    items = pd.DataFrame({
        "title": ["Dune", "Heat", None],
        "text": ["A desert planet.", "Heat. Genres: Crime.", "Untitled thing."],
        "genres": ["Sci-Fi|Adventure", "Crime", math.nan],
        "categories": ["Books|Novels", None, "Misc"],
    })
    assert item_texts(items) == [
        "Dune. Genres: Sci-Fi, Adventure. Categories: Books, Novels. A desert planet.",
        "Heat. Genres: Crime.",
        "Categories: Misc. Untitled thing.",
    ]


def test_missing_columns_and_custom_template() -> None:
    items = pd.DataFrame({"title": ["Why?"], "text": ["   spaced\n\tout   text "]})
    assert item_texts(items) == ["Why? spaced out text"]
    assert item_texts(items, "{title} by {brand}: {text}") == ["Why? by: spaced out text"]
    assert item_texts(items, "{text}") == ["spaced out text"]
    with pytest.raises(ConfigError):
        item_texts(items, "{title!r}")
    with pytest.raises(ConfigError):
        item_texts(items, "{title")


def test_truncation_on_a_word_boundary() -> None:
    items = pd.DataFrame({"title": ["T"], "text": ["word " * 100]})
    (text,) = item_texts(items, max_chars=52)
    assert len(text) <= 52 and text.endswith("word") and text.startswith("T. word")


def test_raw_text_is_returned_exactly() -> None:
    items = pd.DataFrame({"title": ["A"], "text": ["A.  Two  spaces\nand a newline"]})
    assert item_texts(items, template=None) == ["A.  Two  spaces\nand a newline"]


@settings(max_examples=200, deadline=None)
@given(title=st.text(max_size=60), body=st.text(max_size=400), genres=st.text(max_size=40),
       max_chars=st.integers(1, 300))
def test_rendered_text_is_clean(title: str, body: str, genres: str, max_chars: int) -> None:
    items = pd.DataFrame({"title": [title], "text": [body], "genres": [genres]})
    (text,) = item_texts(items, max_chars=max_chars)
    assert len(text) <= max_chars
    assert text == text.strip() and "  " not in text and "\n" not in text
