"""Per-interaction sentiment in [-1, 1] and the weight of a positive it gives.

Why: a 4-star "good, but the second half drags" and a 5-star "the best album I own" are both
positives, yet they say different things about what to recommend next. ``sentiment_weight`` lets
the models that weigh history events (``semantic``, ``semantic-attn``, ``neural``; the flagship
through its parts) count a warmly reviewed positive more than a lukewarm one.

- Source: the review written with the interaction (``reviews.csv[.gz]``, joined on ``(user_id,
  item_id, timestamp)``, ``data.reviews``), scored by VADER (``vaderSentiment``: a lexicon and rules
  tuned for short social-media text; offline, ~600 reviews/s on one core) — the default — or
  TextBlob (pattern's lexicon, shipped in the package; dev extra only).
  ``benchmarks/sentiment_check.py`` compares the two against the star ratings of
  amazon-digital-music-sample (ROC-AUC for rating >= 4: VADER 0.67, TextBlob 0.68-0.69). A dataset with ratings
  but no reviews falls back to ``(rating - 3) / 2`` (a 5-star scale: 4 -> 0.5, 5 -> 1); one with
  neither has no sentiment (every weight 1).
- Weight of a positive with sentiment ``s`` at ``sentiment_weight = a``: ``max(MIN_WEIGHT, 1 + a s)``
  — monotone in ``s``, 1 at ``s = 0`` or ``a = 0``; an event without a review weighs 1.
- Only readable events get weights: ``with_sentiment`` weights a dataset's train and valid
  positives (the histories models fit on and score from); test positives are never looked up.
  ``a = 0`` returns the dataset itself, so the default is bit-identical to no sentiment at all.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from longtail.data.dataset import Dataset
from longtail.data.interactions import Interactions
from longtail.data.reviews import event_keys, event_values, find_reviews, read_reviews
from longtail.errors import ConfigError

METHODS = ("vader", "textblob")
MIN_WEIGHT = 0.05  # the floor of a weight: a very negative review still counts a little (and stays > 0)
_TAGS = re.compile(r"<[^>]+>")
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def _clean(text: str) -> str:
    """Amazon review text carries HTML entities (``&quot;``) and the odd tag."""
    return _TAGS.sub(" ", html.unescape(str(text)))


def _scorer(method: str) -> Callable[[str], float]:
    """The scoring function of ``method``, built per call (no global state)."""
    if method == "vader":
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        analyzer = SentimentIntensityAnalyzer()  # loads its lexicon (~0.1 s)

        def vader(text: str) -> float:
            sentences = [s for s in _SENTENCES.split(text) if s.strip()]
            return float(np.mean([analyzer.polarity_scores(s)["compound"] for s in sentences]))

        return vader
    if method == "textblob":
        try:
            from textblob import TextBlob
        except ImportError as exc:  # only in the dev extra
            raise ConfigError("sentiment method 'textblob' needs the textblob package "
                              "(pip install -e '.[dev]')") from exc
        return lambda text: TextBlob(text).sentiment.polarity
    raise ConfigError(f"unknown sentiment method {method!r}; choose one of {', '.join(METHODS)}")


def sentiment_scores(texts: Sequence[str], method: str = "vader") -> np.ndarray:
    """Sentiment of each text in [-1, 1]; an empty text scores 0. (len(texts),) float64.

    ``vader``: the mean of VADER's ``compound`` over the text's sentences — on a whole review the
    compound saturates near +-1 (it normalises a sum that grows with length): scored whole,
    ``summary. text`` reached ROC-AUC 0.63 against the star ratings of amazon-digital-music-sample,
    0.67 sentence by sentence (measured while choosing; ``benchmarks/sentiment_check.py`` keeps the
    sentence form). ``textblob``: TextBlob's ``polarity``."""
    score = _scorer(method)
    out = np.zeros(len(texts), dtype=np.float64)
    for n, text in enumerate(texts):
        cleaned = _clean(text).strip()
        out[n] = float(score(cleaned)) if cleaned else 0.0
    return np.clip(out, -1.0, 1.0)


def review_sentiment(reviews: pd.DataFrame, method: str = "vader") -> np.ndarray:
    """Sentiment of each review (``summary``, ``text`` columns): the mean of its summary's and its
    text's, either alone when the other is empty. Why not one text: the summary is the verdict
    ("Awful", "Best album ever") and, as one sentence among a review's dozen, it was drowned out —
    on amazon-digital-music-sample the mean of the two scores 71% of the 1-star reviews with a
    damning summary negative, against 36% for ``summary. text`` (same ROC-AUC, 0.67;
    ``benchmarks/sentiment_check.py``). (len(reviews),) float64."""
    summaries = [str(v) for v in reviews["summary"]]
    texts = [str(v) for v in reviews["text"]]
    has_summary = np.asarray([bool(v.strip()) for v in summaries], dtype=bool)
    has_text = np.asarray([bool(v.strip()) for v in texts], dtype=bool)
    summary, text = sentiment_scores(summaries, method), sentiment_scores(texts, method)
    return np.where(has_summary & has_text, (summary + text) / 2.0, np.where(has_summary, summary, text))


def rating_sentiment(ratings: np.ndarray) -> np.ndarray:
    """The fallback without reviews: ``(rating - 3) / 2`` clipped to [-1, 1] (5-star scale); NaN
    (no rating) stays NaN. float64."""
    return np.clip((np.asarray(ratings, np.float64) - 3.0) / 2.0, -1.0, 1.0)


def sentiment_weights(sentiment: np.ndarray, sentiment_weight: float) -> np.ndarray:
    """``max(MIN_WEIGHT, 1 + sentiment_weight * s)`` per event; NaN (no sentiment) weighs 1.
    float32."""
    a = check_sentiment_weight(sentiment_weight)
    s = np.asarray(sentiment, np.float64)
    weights = np.maximum(MIN_WEIGHT, 1.0 + a * np.nan_to_num(s, nan=0.0))
    return weights.astype(np.float32)


def check_sentiment_weight(value: float) -> float:
    """``value`` as a float >= 0, or a ``ConfigError``."""
    try:
        a = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"sentiment_weight must be a number >= 0, got {value!r}") from None
    if not np.isfinite(a) or a < 0:
        raise ConfigError(f"sentiment_weight must be a finite number >= 0, got {value!r}")
    return a


@dataclass(frozen=True)
class DatasetSentiment:
    """Sentiment of each train and valid positive of a dataset (NaN: none) and where it came from
    (``"reviews"``, ``"ratings"`` or ``"none"``)."""

    train: np.ndarray  # (len(dataset.train),) float64
    valid: np.ndarray  # (len(dataset.valid),) float64
    source: str
    method: str

    def coverage(self) -> float:
        """Share of train + valid positives with a sentiment."""
        both = np.concatenate([self.train, self.valid])
        return float(np.isfinite(both).mean()) if len(both) else 0.0


def event_sentiment(dataset: Dataset, X: Interactions, method: str = "vader") -> tuple[np.ndarray, str]:
    """Sentiment of each positive of ``X`` (positives of ``dataset``'s vocabularies) and its
    source. Only the reviews of ``X``'s own events are read and scored; the caller decides which
    events are readable (``with_sentiment``: train and valid)."""
    reviews_path = find_reviews(dataset.raw.interactions_path.parent)
    if reviews_path is not None:
        reviews = read_reviews(reviews_path)
        users = dataset.users.index(reviews["user_id"], strict=False).astype(np.int64)
        items = dataset.item_vocab.index(reviews["item_id"], strict=False).astype(np.int64)
        keys = event_keys(X)
        readable = (_keys(users, items, reviews["timestamp"].to_numpy(np.int64))
                    .isin(_keys(keys["user"], keys["item"], keys["timestamp"])))
        mine = reviews[readable]
        scores = review_sentiment(mine, method)
        return event_values(X, dataset.users, dataset.item_vocab, mine, scores), "reviews"
    ratings = dataset.raw.interactions["rating"].to_numpy(np.float64)
    if np.isfinite(ratings).any():
        values = event_values(X, dataset.users, dataset.item_vocab, dataset.raw.interactions, ratings)
        return rating_sentiment(values), "ratings"
    return np.full(len(X), np.nan), "none"


def _keys(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray) -> pd.MultiIndex:
    """One hashable key per (user, item, timestamp) triple, for membership tests."""
    return pd.MultiIndex.from_arrays([np.asarray(users, np.int64), np.asarray(items, np.int64),
                                      np.asarray(timestamps, np.int64)])


def dataset_sentiment(dataset: Dataset, method: str = "vader") -> DatasetSentiment:
    """The sentiment of ``dataset``'s train and valid positives (computed once, reweighted many
    times by ``apply_sentiment``: a grid over ``sentiment_weight`` scores the reviews once)."""
    readable = dataset.train + dataset.valid
    values, source = event_sentiment(dataset, readable, method)
    n = len(dataset.train)
    return DatasetSentiment(values[:n], values[n:], source, method)


def apply_sentiment(dataset: Dataset, sentiment_weight: float, sentiment: DatasetSentiment) -> Dataset:
    """``dataset`` with its train and valid positives weighted (``sentiment_weights``); test
    positives untouched; ``sentiment_weight == 0`` gives ``dataset`` itself."""
    if check_sentiment_weight(sentiment_weight) == 0.0:
        return dataset
    if len(sentiment.train) != len(dataset.train) or len(sentiment.valid) != len(dataset.valid):
        raise ConfigError("the sentiment was computed for another split of the dataset")
    return replace(dataset,
                   train=dataset.train.with_weights(sentiment_weights(sentiment.train, sentiment_weight)),
                   valid=dataset.valid.with_weights(sentiment_weights(sentiment.valid, sentiment_weight)))


def with_sentiment(dataset: Dataset, sentiment_weight: float, method: str = "vader") -> Dataset:
    """``dataset`` with sentiment-weighted train and valid positives (see the module docstring);
    ``sentiment_weight == 0`` returns ``dataset`` without reading any review."""
    if check_sentiment_weight(sentiment_weight) == 0.0:
        return dataset
    return apply_sentiment(dataset, sentiment_weight, dataset_sentiment(dataset, method))


__all__ = ["METHODS", "MIN_WEIGHT", "DatasetSentiment", "apply_sentiment", "check_sentiment_weight",
           "dataset_sentiment", "event_sentiment", "rating_sentiment", "review_sentiment", "sentiment_scores",
           "sentiment_weights", "with_sentiment"]
