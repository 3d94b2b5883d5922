"""Item text from catalogue fields: one template, missing fields empty, nothing said twice.

Our shared catalogues already write ``text`` as "Title. Genres: ... ." (or "Categories: ... . Brand:
..."), so a template that also names ``{title}`` and ``{genres}`` would repeat them. The rules below
drop what ``text`` already says, so one default template serves catalogues whose ``text`` is a bare
description as well as ours.
"""

from __future__ import annotations

import re
import string
import pandas as pd

from longtail.errors import ConfigError

DEFAULT_TEMPLATE = "{title}. {genres}{category}{text}"
# Placeholders that read another column when theirs is absent (the protocol says ``category``, the
# Amazon files say ``categories``).
ALIASES: dict[str, tuple[str, ...]] = {
    "genres": ("genres", "genre"),
    "category": ("category", "categories"),
    "categories": ("categories", "category"),
    "tags": ("tags", "tag"),
}
# Labelled fields render as "Label: a, b. " (their own trailing separator); others render bare.
LABELS = {"genres": "Genres", "category": "Categories", "categories": "Categories", "tags": "Tags",
          "brand": "Brand"}
_LEADING = re.compile(r"^(?:[\s,;:|]|\.(?!\.))+")  # separators before the first field; keeps "..."
_LEADING_PUNCT = " .,;:-–—|"
_FREE_TEXT = {"title", "text", "description"}  # never split on "|"
_DOUBLE_STOP = re.compile(r"(?<!\.)([.!?])\s*\.(?!\.)")  # "Why?. " / "A. . B" left by empty fields
_PUNCT = tuple(",;:.!?")
_CLEANUP_MARKS = (". .", "?.", "!.", "..", ",.", ":.", ";.", ", .", ": .", "; .", "? .", "! .")
_LEADING_CHARS = tuple(" ,;:|.")
_DANGLING = re.compile(r"\s*[,;:]\s*(?=[.!?](?:\s|$))")  # "Title, ." when a field is empty


def _clean(value: str, free_text: bool) -> str:
    """Whitespace collapsed; for list-like fields "a|b" becomes "a, b"."""
    text = " ".join(value.split())
    if free_text or "|" not in text:
        return text
    return ", ".join(part.strip() for part in text.split("|") if part.strip())


def _column(items: pd.DataFrame, name: str) -> list[str]:
    """The field's text per row ('' when the column is absent or the value missing)."""
    for column in ALIASES.get(name, (name,)):
        if column in items.columns:
            series = items[column]
            missing = series.isna().tolist()
            free_text = name in _FREE_TEXT
            return ["" if gone else _clean(str(value), free_text)
                    for value, gone in zip(series.tolist(), missing, strict=True)]
    return [""] * len(items)


def _truncate(text: str, max_chars: int) -> str:
    """At most ``max_chars``, cut on the last word boundary (hard cut for one giant word)."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > max_chars // 2 else text[:max_chars]
    return cut.rstrip(" ,;:-–—(")


def _render(row: dict[str, str], pieces: list[tuple[str, str | None]]) -> str:
    """One item's text from its cleaned field values (``row``: placeholder -> value)."""
    title, body = row.get("title", ""), row.get("text", "")
    # ``text`` starting with the title: keep the template's title, drop the copy in the body.
    if title and "title" in row and body[: len(title)].lower() == title.lower():
        body = body[len(title):].lstrip(_LEADING_PUNCT)
    body_lower = body.lower()
    out = ""
    for position, (literal, name) in enumerate(pieces):
        out += literal
        if name is None:
            continue
        if name == "title":
            value = title
        elif name == "text":
            value = body
        else:
            value = row[name]
            if value and value.lower() in body_lower:  # already said by ``text``
                value = ""
            label = LABELS.get(name)
            value = f"{label}: {value}. " if value and label else value
        following = pieces[position + 1][0] if position + 1 < len(pieces) else ""
        if value:
            out += value
        elif following[:1] in _PUNCT:  # "by {brand}: x" with no brand -> "by: x", not "by : x"
            out = out.rstrip()
    text = " ".join(out.split())
    if any(mark in text for mark in _CLEANUP_MARKS):
        text = _DOUBLE_STOP.sub(r"\1", _DANGLING.sub("", text)).replace("....", "...")
    return _LEADING.sub("", text) if text[:1] in _LEADING_CHARS else text


def parse_template(template: str) -> list[tuple[str, str | None]]:
    """``template`` as (literal text, placeholder name or None) pieces; a clear error if malformed."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"bad item text template {template!r}: {exc}") from exc
    pieces: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (not name.isidentifier() or spec or conversion):
            raise ConfigError(f"bad placeholder {{{name}}} in template {template!r}: use plain {{column}}")
        pieces.append((literal, name))
    return pieces


def item_texts(items: pd.DataFrame, template: str | None = DEFAULT_TEMPLATE,
               max_chars: int = 1000) -> list[str]:
    """One text per catalogue row, in row order, for encoding.

    Placeholders name columns (``{title}``, ``{text}``, ``{genres}``, ``{category}``, ``{brand}``, any
    other); a missing column or value renders empty. ``genres``/``category``/``tags``/``brand`` render
    as "Genres: a, b. " (pipes become commas; ``category`` falls back to ``categories``) and are left
    out when ``text`` already contains them; when ``text`` starts with the title, that copy of the title
    is dropped. Whitespace is collapsed, empty separators removed, and the result cut on a word
    boundary at ``max_chars`` (~ all-MiniLM's 256-token window).

    ``template=None`` returns the raw ``text`` column exactly (no cleaning, no cut): the protocol's
    ILD metric embeds ``items.text`` as is.

    Examples
    --------
    >>> frame = pd.DataFrame({"title": ["Toy Story (1995)", "Dune"],
    ...     "text": ["Toy Story (1995). Genres: Adventure, Animation.", "Spice and sand."],
    ...     "genres": ["Adventure|Animation", "Sci-Fi"]})
    >>> item_texts(frame)
    ['Toy Story (1995). Genres: Adventure, Animation.', 'Dune. Genres: Sci-Fi. Spice and sand.']
    """
    if template is None:
        if "text" not in items.columns:
            raise ConfigError("items have no 'text' column")
        return items["text"].fillna("").astype(str).tolist()
    if max_chars < 1:
        raise ConfigError(f"max_chars must be >= 1, got {max_chars}")
    pieces = parse_template(template)
    names = list(dict.fromkeys(name for _, name in pieces if name is not None))
    columns = [_column(items, name) for name in names]
    return [_truncate(_render(dict(zip(names, values, strict=True)), pieces), max_chars)
            for values in zip(*columns, strict=True)] if names else [
            _truncate(_render({}, pieces), max_chars)] * len(items)
