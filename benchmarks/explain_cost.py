"""What a faithful explanation costs: per user, the flagship's scoring + top-k against explaining
that top-k (occlusion, ``models/occlusion.py``), measured in the same run, median over users.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/explain_cost.py [--dataset ml-latest-small]
        [--model longtail] [--saved DIR] [--users 20] [--k 10] [--json out.json]

``--saved``: a model written by ``longtail.models.save_model`` (skips the fit); else the model is
fitted on train+valid with its default parameters (the flagship: ~5 min on ml-latest-small).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from longtail.data import load_dataset
from longtail.data.history import HistoryBatch
from longtail.models import load_model, make_model
from longtail.text import embed_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--model", default="longtail")
    parser.add_argument("--saved", type=Path, default=None)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    ds = load_dataset(args.dataset)
    if args.saved is not None:
        model = load_model(args.saved)
    else:
        model = make_model(args.model).fit(ds.train_valid, item_embeddings=embed_items(ds.items))
    rank_ms, explain_ms, empty = [], [], 0
    for user in ds.test_users[: args.users]:
        query = HistoryBatch.from_interactions(ds.train_valid, [user])
        started = time.perf_counter()
        items, _ = model.recommend(query, k=args.k)
        rank_ms.append(1000 * (time.perf_counter() - started))
        started = time.perf_counter()
        why = model.explain(query, items)[0]
        explain_ms.append(1000 * (time.perf_counter() - started))
        empty += sum(not e.evidence for e in why)
    row = {"dataset": ds.name, "model": model.name, "users": len(rank_ms), "k": args.k,
           "rank_ms_median": round(float(np.median(rank_ms)), 1),
           "explain_ms_median": round(float(np.median(explain_ms)), 1),
           "ratio": round(float(np.median(np.asarray(explain_ms) / np.asarray(rank_ms))), 2),
           "items_without_evidence": empty}
    print(f"{row['model']} on {row['dataset']}: score + top-{args.k} {row['rank_ms_median']} ms, explain "
          f"{row['explain_ms_median']} ms per user (median ratio {row['ratio']}x); "
          f"{empty}/{len(rank_ms) * args.k} items without evidence")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
