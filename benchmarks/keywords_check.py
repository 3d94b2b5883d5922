"""Labelled check of interest keywords: KeyBERT's ranking against TF-IDF (issue 17).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/keywords_check.py \
        [--k 5] [--datasets a,b] [--out benchmarks/results/keywords_check.json]

Keywords are taken from a user's history items' text; labels are item labels that are NOT in that
text, so a method scores only by naming what the labels name:

* ml-latest-small: text = title + genres (the encoder's item text); labels = the user-written tags
  of those items (the ``tags`` column, aggregated from ``raw/tags.csv``; never part of the item text).
* amazon-digital-music-sample: text = title + description; labels = the held-out categories.
* amazon-scientific-seqorder: text = title + brand; labels = the held-out category path.

Each history is cut to its labelled items (a keyword from an unlabelled item could not hit), users
with at least 2 such items are kept. The item vectors KeyBERT reads are re-encoded from the reduced
text (cached on disk), so the held-out labels cannot leak through the user vector. Labels and
keywords are compared as tokens of the keyword analyser with a light plural fold ("rolls" = "roll");
label tokens on more than half the catalogue's items ("music", "industrial") are dropped.

precision@k: share of a user's top-k keywords that are label tokens of the user's items;
recall@k: share of the user's findable label tokens (those among the user's candidate words) in
the top k. Two references: ``tf`` (word count only, no IDF) and ``random`` (a seeded random order of
the same candidates): chance level. The default method of ``longtail.profile`` is the one with the
best precision@k averaged over the three datasets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from rich.console import Console
from rich.table import Table

from longtail.data import HistoryBatch, load_dataset
from longtail.profile import KEYBERT, TFIDF, ProfileContext
from longtail.profile.keywords import KeywordIndex, keyword_scores
from longtail.profile.topk import sparse_topk
from longtail.text import TextEncoder, embed_items

ROOT = Path(__file__).resolve().parent
# dataset -> (columns the keywords read, label column, labels pipe-separated)
SETTINGS: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "ml-latest-small": (("title", "genres"), "tags", True),
    "amazon-digital-music-sample": (("title", "description"), "categories", True),
    "amazon-scientific-seqorder": (("title", "brand"), "categories", False),
}
METHODS = (KEYBERT, TFIDF, "tf", "random")
MIN_LABELLED = 2
UBIQUITOUS = 0.5


def fold(token: str) -> str:
    """A light plural fold for matching: "rolls" -> "roll", "glass" and "bus" stay."""
    return token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token


def reduced_items(items: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The catalogue with only ``columns`` to read: title kept, the rest joined into ``text``."""
    frame = pd.DataFrame({"item_id": items["item_id"], "title": items["title"].fillna("")})
    rest = [c for c in columns if c != "title" and c in items.columns]
    if rest == ["genres"]:  # ml: the encoder's own item text (title + genres) is already free of tags
        frame["genres"] = items["genres"]
        frame["text"] = items["text"]
        return frame
    frame["text"] = items[rest].fillna("").astype(str).agg(". ".join, axis=1).str.strip(". ")
    return frame


def label_matrix(items: pd.DataFrame, column: str, piped: bool, index: KeywordIndex
                 ) -> tuple[sp.csr_matrix, dict[str, int]]:
    """(n_items, n_tokens) binary: the folded label tokens of each item, ubiquitous ones dropped."""
    tokens: dict[str, int] = {}
    rows, cols = [], []
    for r, value in enumerate(items[column].fillna("").astype(str).tolist()):
        parts = value.split("|") if piped else [value]
        for token in {fold(t) for part in parts for t in index.analyze(part)}:
            rows.append(r)
            cols.append(tokens.setdefault(token, len(tokens)))
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(items), len(tokens)))
    share = np.asarray(matrix.sum(axis=0)).ravel() / len(items)
    kept = np.flatnonzero(share <= UBIQUITOUS)
    names = sorted(tokens, key=tokens.get)
    return matrix[:, kept].tocsr(), {names[c]: i for i, c in enumerate(kept)}


def evaluate(name: str, k: int, console: Console) -> dict:
    columns, label_column, piped = SETTINGS[name]
    ds = load_dataset(name)
    items = reduced_items(ds.items, columns)
    start = time.perf_counter()
    vectors = embed_items(items, encoder=TextEncoder(show_progress=True))
    ctx = ProfileContext.from_catalogue(items, vectors, ds.item_counts, method=KEYBERT,
                                        encoder=TextEncoder(show_progress=True))
    prepare = time.perf_counter() - start
    labels, token_of = label_matrix(ds.items, label_column, piped, ctx.keywords)
    labelled = np.asarray(labels.sum(axis=1)).ravel() > 0
    members = HistoryBatch.from_interactions(ds.train_valid).csr()
    members = (members @ sp.diags(labelled.astype(np.float32))).tocsr()
    members.eliminate_zeros()
    users = np.flatnonzero(np.diff(members.indptr) >= MIN_LABELLED)
    members = members[users]
    members.data[:] = 1.0
    user_labels = ((members @ labels) > 0).astype(np.float32).tocsr()  # (users, tokens)
    term_counts = (members @ ctx.keywords.item_terms).tocsr()  # (users, V) candidate words
    queries = members @ ctx.vectors
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    word_token = np.array([token_of.get(fold(w), -1) for w in ctx.keywords.words], np.int64)  # (V,)
    to_token = sp.csr_matrix((np.ones(int((word_token >= 0).sum()), np.float32),
                              (np.flatnonzero(word_token >= 0), word_token[word_token >= 0])),
                             shape=(len(word_token), len(token_of)))
    findable = ((term_counts > 0).astype(np.float32) @ to_token > 0).multiply(user_labels)
    n_findable = np.diff(findable.tocsr().indptr)
    label_keys = set((user_labels.nonzero()[0] * len(token_of) + user_labels.nonzero()[1]).tolist())
    rng = np.random.default_rng(0)
    results = {}
    for method in METHODS:
        if method in (KEYBERT, TFIDF):
            scores = keyword_scores(ctx.keywords, term_counts, queries, method)
        else:
            scores = term_counts.copy()
            if method == "random":
                scores.data = rng.random(len(scores.data)).astype(np.float32)
        indptr, words, _ = sparse_topk(scores, k)
        rows = np.repeat(np.arange(len(users)), np.diff(indptr))
        tok = word_token[words]
        hit = np.array([t >= 0 and r * len(token_of) + t in label_keys for r, t in zip(rows, tok, strict=True)])
        hits = np.bincount(rows, weights=hit, minlength=len(users))
        returned = np.maximum(np.diff(indptr), 1)
        has = n_findable > 0
        results[method] = {"precision@k": round(float(np.mean(hits / returned)), 4),
                           "recall@k": round(float(np.mean(hits[has] / n_findable[has])), 4)}
    console.print(f"{name}: {len(users):,} users, {len(token_of):,} label tokens, "
                  f"{len(ctx.keywords.words):,} candidate words; encoding + vocabulary {prepare:.1f} s")
    return {"users": len(users), "keyword_text": list(columns), "labels": label_column,
            "label_tokens": len(token_of), "vocabulary": len(ctx.keywords.words),
            "users_with_findable_labels": int((n_findable > 0).sum()), "methods": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--datasets", default=",".join(SETTINGS))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "keywords_check.json")
    args = parser.parse_args(argv)
    console = Console(width=150)
    start = time.perf_counter()
    per_dataset = {name: evaluate(name, args.k, console) for name in args.datasets.split(",")}
    macro = {m: {key: round(float(np.mean([d["methods"][m][key] for d in per_dataset.values()])), 4)
                 for key in ("precision@k", "recall@k")} for m in METHODS}
    winner = max((KEYBERT, TFIDF), key=lambda m: (macro[m]["precision@k"], m == TFIDF))
    table = Table(title=f"interest keywords against held-out labels, @{args.k}")
    for column in ("dataset", "users", "method", f"precision@{args.k}", f"recall@{args.k}"):
        table.add_column(column, justify="left" if column in ("dataset", "method") else "right")
    rows = [*per_dataset.items(), ("mean of the datasets", {"users": None, "methods": macro})]
    for name, figures in rows:
        for i, m in enumerate(METHODS):
            users = "" if i or figures["users"] is None else f"{figures['users']:,}"
            cells = [f"{figures['methods'][m][key]:.3f}" for key in ("precision@k", "recall@k")]
            table.add_row("" if i else name, users, m, *cells, end_section=i == len(METHODS) - 1)
    console.print(table)
    console.print(f"default keyword method by mean precision@{args.k}: [bold]{winner}[/]")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"k": args.k, "min_labelled_items": MIN_LABELLED, "datasets": per_dataset,
                                    "mean": macro, "winner": winner,
                                    "seconds": round(time.perf_counter() - start, 1)}, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
