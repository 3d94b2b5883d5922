"""Library side of ``longtail similar`` and ``longtail embed``: find a catalogue item by a loosely
typed title, list its nearest items by text embedding, and encode + cache a whole catalogue.

Title matching is strict on purpose: ``fuzz.ratio`` (normalised edit similarity) against a few
spellings of each title — as stored, without the year, without alternative-language titles in
parentheses, with a trailing article moved to the front ("Matrix, The" -> "The Matrix") or dropped,
and the series part before a colon ("Star Wars"). Partial-match scorers such as ``WRatio`` rate
"amelie" 90 against "M (1931)", so they only serve the suggestions shown when nothing matches.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.table import Table

from longtail.errors import ConfigError
from longtail.common.topk import topk
from longtail.text.item_text import DEFAULT_TEMPLATE

if TYPE_CHECKING:
    from longtail.text.cache import EmbeddingCache
    from longtail.text.encoder import TextEncoder

MIN_TITLE_SCORE = 85.0  # ~ one typo in a short title (fuzz.ratio is 0..100)
_YEAR = re.compile(r"\s*\(\d{4}(?:[-–]\d{0,4})?\)\s*$")
_ARTICLE = re.compile(r"^(?P<main>.+),\s*(?P<article>the|a|an|les|la|le|l'|il|die|der|das|el)$", re.I)


class TitleNotFoundError(ConfigError):
    """No catalogue title is close enough to the one asked for; carries the closest ones."""

    def __init__(self, query: str, suggestions: list[str]) -> None:
        self.query = query
        self.suggestions = suggestions
        closest = "; ".join(repr(s) for s in suggestions) or "none (empty catalogue)"
        super().__init__(f"no such title: {query!r} matches no item well enough. Closest titles: {closest}")


@dataclass(frozen=True)
class TitleMatch:
    """The catalogue row (index order) a query resolved to, and the match score (0..100)."""

    index: int
    title: str
    score: float
    item_id: str = ""


@dataclass(frozen=True)
class Neighbour:
    item_id: str
    title: str
    score: float  # cosine similarity of the item texts' embeddings


def title_variants(title: str) -> list[str]:
    """Spellings of one title a person might type (see the module docstring)."""
    bare = _YEAR.sub("", title).strip()
    main = bare.split(" (")[0].strip() or bare
    variants = [title, bare, main]
    article = _ARTICLE.match(main)
    if article:
        variants += [f"{article['article']} {article['main']}", article["main"]]
    if ":" in main:
        variants.append(main.split(":")[0].strip())
    return variants


def _match_scores(titles: list[str], query: str) -> np.ndarray:
    """Best ``fuzz.ratio`` of ``query`` over each title's variants, (n_titles,) float64."""
    from rapidfuzz import fuzz, process, utils

    variants = [title_variants(t) for t in titles]
    owner = np.repeat(np.arange(len(titles)), [len(v) for v in variants])  # (n_variants,)
    flat = [v for group in variants for v in group]
    ratio = process.cdist([query], flat, scorer=fuzz.ratio, processor=utils.default_process,
                          dtype=np.float32)[0]  # (n_variants,)
    best = np.zeros(len(titles), dtype=np.float64)
    np.maximum.at(best, owner, ratio)
    return best


def suggest_titles(titles: list[str], query: str, n: int = 5) -> list[str]:
    """The ``n`` titles a lenient partial-match scorer finds closest to ``query``."""
    from rapidfuzz import fuzz, process, utils

    return [t for t, _, _ in process.extract(query, titles, scorer=fuzz.WRatio,
                                             processor=utils.default_process, limit=n)]


def match_title(titles: list[str], query: str, *, min_score: float = MIN_TITLE_SCORE,
                popularity: np.ndarray | None = None) -> TitleMatch:
    """The title best matching ``query``; equal scores go to the more popular item (``popularity``,
    e.g. interaction counts), then the first row. ``TitleNotFoundError`` below ``min_score``."""
    scores = _match_scores(titles, query) if titles and query.strip() else np.zeros(len(titles))
    if not len(scores) or scores.max() < min_score:
        raise TitleNotFoundError(query, suggest_titles(titles, query))
    pop = np.zeros(len(titles)) if popularity is None else np.asarray(popularity, np.float64)
    best = int(np.lexsort((np.arange(len(titles)), -pop, -scores))[0])
    return TitleMatch(best, titles[best], float(scores[best]))


def nearest_items(vectors: np.ndarray, index: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of unit ``vectors`` (n, d) most similar to row ``index`` (itself excluded),
    ties by row; (rows int32 (k,), cosine float32 (k,))."""
    scores = (vectors @ vectors[index])[None, :].astype(np.float32)  # (1, n)
    scores[0, index] = -np.inf
    rows, values = topk(scores, k)
    keep = rows[0] >= 0
    return rows[0][keep], values[0][keep]


def similar_to_title(items: pd.DataFrame, query: str, *, k: int = 10,
                     min_score: float = MIN_TITLE_SCORE, popularity: np.ndarray | None = None,
                     vectors: np.ndarray | None = None, encoder: TextEncoder | None = None
                     ) -> tuple[TitleMatch, list[Neighbour]]:
    """Resolve ``query`` to a catalogue row of ``items`` and list its ``k`` nearest items by the
    row-aligned embeddings ``vectors`` (n_items, d; None: ``embed_items(items, encoder=encoder)``, cached). The title
    is matched first, so a typo is reported before any encoding."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    titles = items["title"].fillna("").astype(str).tolist()
    match = match_title(titles, query, min_score=min_score, popularity=popularity)
    if vectors is None:
        from longtail.text import embed_items

        vectors = embed_items(items, encoder=encoder)
    rows, scores = nearest_items(vectors, match.index, k)
    ids = items["item_id"].astype(str).to_numpy()
    match = TitleMatch(match.index, match.title, match.score, str(ids[match.index]))
    return match, [Neighbour(str(ids[r]), titles[r], float(s)) for r, s in zip(rows, scores, strict=True)]


def similar_payload(query: str, match: TitleMatch, neighbours: list[Neighbour]) -> dict[str, Any]:
    """The ``--json`` form of a ``similar_to_title`` result."""
    return {"query": query, "match": asdict(match), "similar": [asdict(n) for n in neighbours]}


def similar_table(dataset: str, match: TitleMatch, neighbours: list[Neighbour]) -> Table:
    """The on-screen form of a ``similar_to_title`` result."""
    table = Table(title=f"{dataset}: most similar to {match.title!r} (title match {match.score:.0f})")
    table.add_column("rank", justify="right")
    table.add_column("item_id")
    table.add_column("title")
    table.add_column("cosine", justify="right")
    for rank, n in enumerate(neighbours, start=1):
        table.add_row(str(rank), n.item_id, n.title, f"{n.score:.3f}")
    return table


@dataclass(frozen=True)
class EmbedReport:
    """What ``embed_catalogue`` did: sizes, cache hits, time."""

    items: int
    from_cache: int  # items whose text was already cached
    encoded: int  # distinct texts sent to the encoder
    dim: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3),
                "items_per_second": round(self.items_per_second, 1)}

    def summary(self) -> str:
        return (f"{self.items:,} items ({self.dim}-d) in {self.seconds:.1f} s "
                f"({self.items_per_second:,.0f} items/s); {self.from_cache:,} from cache, "
                f"{self.encoded:,} texts encoded")


def embed_catalogue(items: pd.DataFrame, *, encoder: TextEncoder | None = None,
                    cache: EmbeddingCache | None = None, template: str | None = DEFAULT_TEMPLATE,
                    max_chars: int = 1000) -> tuple[np.ndarray, EmbedReport]:
    """Encode ``items`` (by default: the default template, encoder and on-disk cache), counting
    cache hits first so the report says how much work the cache saved."""
    from longtail.text import EmbeddingCache, TextEncoder, embed_texts, item_texts
    from longtail.text.cache import text_key

    start = time.perf_counter()
    texts = item_texts(items, template, max_chars)
    encoder = TextEncoder() if encoder is None else encoder
    cache = EmbeddingCache() if cache is None else cache
    keys = [text_key(t) for t in texts]
    found, _ = cache.get(encoder.fingerprint, keys)
    vectors = embed_texts(texts, encoder=encoder, cache=cache)
    seconds = time.perf_counter() - start
    encoded = len({k for k, hit in zip(keys, found, strict=True) if not hit})
    report = EmbedReport(len(texts), int(found.sum()), encoded, int(vectors.shape[1]), seconds)
    return vectors, report
