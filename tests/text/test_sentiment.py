"""Review sentiment: the scorers on real review text, the weight function, and the protocol's rule
that a test review never reaches a model (only train / valid events are looked up and scored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import longtail.text.sentiment as sentiment_module
from longtail.data import load_dataset
from longtail.data.reviews import read_reviews
from longtail.errors import ConfigError
from longtail.eval.evaluator import Evaluator
from longtail.text.sentiment import (
    MIN_WEIGHT,
    check_sentiment_weight,
    dataset_sentiment,
    rating_sentiment,
    review_sentiment,
    sentiment_scores,
    sentiment_weights,
    with_sentiment,
)

MUSIC = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon-digital-music-sample"
PRAISING = r"\b(?:best|great|excellent|love|amazing|wonderful)\b"
CONDEMNING = r"\b(?:worst|awful|terrible|waste|boring|disappoint\w*|horrible|garbage)\b"


@pytest.fixture(scope="module")
def music_reviews() -> pd.DataFrame:
    """The music sample's reviews with the star rating of their interaction."""
    if not MUSIC.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    reviews = read_reviews(MUSIC / "reviews.csv.gz")
    ratings = pd.read_csv(MUSIC / "interactions.csv", dtype={"user_id": str, "item_id": str})
    return reviews.merge(ratings, on=["user_id", "item_id", "timestamp"])


def test_vader_agrees_in_sign_with_clear_star_ratings(music_reviews: pd.DataFrame) -> None:
    """Clear by a rule on the data, not on the scorer: 5 stars and a praising summary, 1 star and
    a damning one (14 reviews); and 1-star reviews score lower than 5-star ones on average."""
    five = music_reviews[music_reviews["rating"] == 5]
    praised = five[five["summary"].str.contains(PRAISING, case=False)].head(150)
    one = music_reviews[music_reviews["rating"] == 1]
    damned = one[one["summary"].str.contains(CONDEMNING, case=False)]
    assert len(praised) == 150 and len(damned) >= 10
    assert (review_sentiment(praised) > 0).mean() >= 0.95
    assert (review_sentiment(damned) < 0).mean() >= 0.6  # measured 71%: music reviews praise other albums
    assert review_sentiment(one).mean() < review_sentiment(five.head(150)).mean() - 0.3


def test_scores_lie_in_range_and_read_html_entities() -> None:
    scores = sentiment_scores(["&quot;Great&quot; album. I love it!", "Awful. A waste of money.", "", "   "])
    assert scores[0] > 0.5 and scores[1] < -0.3 and scores[2] == scores[3] == 0.0
    assert sentiment_scores(["&quot;Great&quot;"])[0] == sentiment_scores(['"Great"'])[0]
    reviews = pd.DataFrame({"summary": ["Superb", "", "Terrible"], "text": ["Fine.", "Bad, bad, bad.", ""]})
    halves = review_sentiment(reviews)
    summary, text = sentiment_scores(["Superb", "Terrible"]), sentiment_scores(["Fine.", "Bad, bad, bad."])
    assert np.allclose(halves, [(summary[0] + text[0]) / 2, text[1], summary[1]])


def test_textblob_is_the_alternative() -> None:
    pytest.importorskip("textblob")
    scores = sentiment_scores(["A wonderful, beautiful record.", "A terrible, boring record."], "textblob")
    assert scores[0] > 0 > scores[1]
    with pytest.raises(ConfigError, match="unknown sentiment method"):
        sentiment_scores(["x"], "bert")


def test_weight_is_monotone_floored_and_one_without_sentiment() -> None:
    s = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, np.nan])
    w = sentiment_weights(s, 2.0)
    assert w.dtype == np.float32 and np.all(np.diff(w[:5]) >= 0)
    assert w.tolist() == [MIN_WEIGHT, MIN_WEIGHT, 1.0, 2.0, 3.0, 1.0] or np.allclose(
        w, [MIN_WEIGHT, MIN_WEIGHT, 1.0, 2.0, 3.0, 1.0])
    assert np.array_equal(sentiment_weights(s, 0.0), np.ones(6, np.float32))
    assert np.allclose(rating_sentiment(np.array([1, 3, 4, 5, np.nan])), [-1, 0, 0.5, 1, np.nan], equal_nan=True)
    for bad in (-0.5, float("nan"), "much"):
        with pytest.raises(ConfigError, match="sentiment_weight"):
            check_sentiment_weight(bad)  # type: ignore[arg-type]


# -- a dataset whose every interaction has a review ------------------------------------------
def write_dataset(folder: Path, test_review: str, train_review: str = "A fine record.",
                  reviews: bool = True, ratings: bool = True) -> Path:
    """3 users x 5 positives (times 1..5): the protocol puts each user's 5th in test, 4th in valid."""
    folder.mkdir(parents=True)
    rows = [(f"u{u}", f"i{(u + t) % 7}", t, 4.0 + (t % 2)) for u in range(3) for t in range(1, 6)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    if not ratings:
        inter["rating"] = np.nan
    inter.to_csv(folder / "interactions.csv", index=False)
    pd.DataFrame({"item_id": [f"i{i}" for i in range(7)], "title": [f"t{i}" for i in range(7)],
                  "text": ["x"] * 7}).to_csv(folder / "items.csv", index=False)
    if reviews:
        text = [test_review if t == 5 else ("Wonderful, I love it." if t == 1 else train_review) for *_, t, _ in rows]
        frame = inter[["user_id", "item_id", "timestamp"]].assign(summary="", text=text)
        frame.to_csv(folder / "reviews.csv.gz", index=False)
    return folder


def test_test_reviews_never_reach_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scored: list[str] = []
    original = sentiment_module.sentiment_scores
    monkeypatch.setattr(sentiment_module, "sentiment_scores",
                        lambda texts, method="vader": scored.extend(texts) or original(texts, method))
    weighted = []
    for name, test_review in (("a", "TEST: the best album ever made, wonderful!"), ("b", "TEST: awful, hateful garbage.")):
        ds = load_dataset(write_dataset(tmp_path / name, test_review))
        weighted.append(with_sentiment(ds, 2.0))
    assert not any(text.startswith("TEST") for text in scored)  # never even scored
    first, second = weighted
    assert len(first.test) == 3 and first.test.weights is None and second.test.weights is None
    for part in ("train", "valid", "train_valid"):
        assert np.array_equal(getattr(first, part).weights, getattr(second, part).weights)
    for split in ("test", "valid"):  # the histories models score from
        a, b = (Evaluator(d, split=split).queries(d.test_users) for d in (first, second))
        assert a.weights is not None and np.array_equal(a.weights, b.weights)
    assert first.train.weights.max() > first.train.weights.min()  # the train reviews did count
    changed = with_sentiment(load_dataset(write_dataset(tmp_path / "c", "TEST", train_review="Awful.")), 2.0)
    assert not np.array_equal(changed.train.weights, first.train.weights)


def test_weight_zero_reads_nothing_and_keeps_the_dataset(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path / "d", "TEST"))
    assert with_sentiment(ds, 0.0) is ds and ds.train.weights is None


def test_ratings_are_the_fallback_without_reviews(tmp_path: Path) -> None:
    ds = load_dataset(write_dataset(tmp_path / "r", "", reviews=False))
    sentiment = dataset_sentiment(ds)
    assert sentiment.source == "ratings" and sentiment.coverage() == 1.0
    assert set(np.round(sentiment.train, 3)) <= {0.5, 1.0}
    bare = load_dataset(write_dataset(tmp_path / "n", "", reviews=False, ratings=False))
    assert dataset_sentiment(bare).source == "none"
    assert np.array_equal(with_sentiment(bare, 1.0).train.weights, np.ones(len(bare.train), np.float32))
