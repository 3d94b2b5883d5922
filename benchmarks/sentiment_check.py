"""Which review-sentiment scorer to use? VADER (``vaderSentiment``, the default) against TextBlob
(pattern's lexicon, dev extra), both offline, measured against the star ratings of every review of
amazon-digital-music-sample (the review joined to its interaction on user, item and timestamp):

- ROC-AUC of the score for "rating >= 4" (the protocol's positives) vs "< 4";
- Spearman correlation of the score with the rating;
- sign agreement on the clear cases: share of 5-star reviews scored > 0 and of 1-2-star ones < 0;
- speed in reviews per second (one process, one thread).

Two ways to read a review: ``halves`` (the library's: the mean of the summary's and the text's
scores, ``text.sentiment.review_sentiment``) and ``joined`` (one text, ``summary. text``). Also the
clear cases: 1-star reviews whose summary condemns (worst, awful, garbage, ...) scored < 0.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/sentiment_check.py \
        [--dataset amazon-digital-music-sample] [--out benchmarks/results/sentiment_check.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from longtail.data.io import find_table, read_table
from longtail.data.registry import resolve_dataset
from longtail.data.reviews import find_reviews, read_reviews, review_texts
from longtail.data.validate import validate_interactions
from longtail.text.sentiment import METHODS, review_sentiment, sentiment_scores

INPUTS = ("halves", "joined")
CONDEMNING = r"\b(?:worst|awful|terrible|waste|boring|disappoint\w*|horrible|garbage)\b"


def rated_reviews(dataset: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Every review with a rating, and that rating."""
    folder = resolve_dataset(dataset)
    path = find_reviews(folder)
    if path is None:
        raise SystemExit(f"{folder} has no reviews file")
    reviews = read_reviews(path)
    inter_path = find_table(folder, "interactions")
    inter = validate_interactions(read_table(inter_path, ("user_id", "item_id")), inter_path)
    keys = ["user_id", "item_id", "timestamp"]
    ratings = inter.groupby(keys, sort=False)["rating"].mean().rename("rating")
    joined = reviews.join(ratings, on=keys)
    joined = joined[np.isfinite(joined["rating"].to_numpy(np.float64))]
    return joined.reset_index(drop=True), joined["rating"].to_numpy(np.float64)


def measure(reviews: pd.DataFrame, ratings: np.ndarray, method: str, read: str) -> dict[str, float]:
    start = time.perf_counter()
    if read == "halves":
        scores = review_sentiment(reviews, method)
    else:
        scores = sentiment_scores(review_texts(reviews), method)
    seconds = time.perf_counter() - start
    positive = ratings >= 4
    five, low = ratings == 5, ratings <= 2
    damning = (ratings == 1) & reviews["summary"].str.contains(CONDEMNING, case=False).to_numpy()
    return {
        "roc_auc_rating_ge_4": round(float(roc_auc_score(positive, scores)), 4),
        "spearman_with_rating": round(float(spearmanr(scores, ratings).statistic), 4),
        "five_star_scored_positive": round(float((scores[five] > 0).mean()), 4),
        "one_two_star_scored_negative": round(float((scores[low] < 0).mean()), 4),
        "damning_one_star_scored_negative": round(float((scores[damning] < 0).mean()), 4),
        "damning_one_star_reviews": int(damning.sum()),
        "mean_score_five_star": round(float(scores[five].mean()), 4),
        "mean_score_one_two_star": round(float(scores[low].mean()), 4),
        "reviews_per_second": round(len(reviews) / seconds, 1),
        "seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="amazon-digital-music-sample")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sentiment_check.json"))
    args = parser.parse_args()
    reviews, ratings = rated_reviews(args.dataset)
    results = {f"{method}/{read}": measure(reviews, ratings, method, read)
               for method in args.methods.split(",") for read in INPUTS}
    counts = {str(int(r)): int((ratings == r).sum()) for r in np.unique(ratings)}
    payload = {"dataset": args.dataset, "reviews": len(reviews), "ratings": counts,
               "inputs": {"halves": "mean of the summary's and the text's scores (the library's)",
                          "joined": "one text, 'summary. text'"},
               "damning_summary": CONDEMNING, "machine": platform.machine(), "methods": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    table = Table(title=f"sentiment vs star rating: {args.dataset} ({len(reviews):,} reviews)")
    for column in ("method", "ROC-AUC (>=4)", "Spearman", "5* > 0", "1-2* < 0", "damning 1* < 0", "reviews/s"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for method, r in results.items():
        table.add_row(method, f"{r['roc_auc_rating_ge_4']:.3f}", f"{r['spearman_with_rating']:.3f}",
                      f"{r['five_star_scored_positive']:.1%}", f"{r['one_two_star_scored_negative']:.1%}",
                      f"{r['damning_one_star_scored_negative']:.0%} of {r['damning_one_star_reviews']}",
                      f"{r['reviews_per_second']:,.0f}")
    console = Console(width=120)
    console.print(table)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
