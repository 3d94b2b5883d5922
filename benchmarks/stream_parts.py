"""Where a hybrid's ``partial_fit`` falls short of a refit (issue 16): the stream replay of
``stream_replay.py`` for a hybrid (``longtail`` by default), scoring beside ``partial`` and ``refit``
the partial model with one of its parts taken from that chunk's refit (``cf_``, ``semantic_`` or the
gate). The part whose swap closes the gap is the one whose update lags.

    OPENBLAS_NUM_THREADS=1 python benchmarks/stream_parts.py --dataset amazon-digital-music-sample

Results: ``benchmarks/results/<dataset>/stream_parts_<model>_<share>x<chunks>.json``.
"""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np
from rich.console import Console
from rich.table import Table
from stream_replay import GROUPS, ROOT, Stream, chosen, chunk_scores, fitter, pooled, steps, windows

from longtail.data.dataset import load_dataset
from longtail.text import DEFAULT_TEMPLATE, embed_items

SWAPS = {"partial + refit's cf": "cf_", "partial + refit's text part": "semantic_", "partial + refit's gate": "gate_"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon-digital-music-sample")
    parser.add_argument("--model", default="longtail")
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--chunks", type=int, default=20)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    events = dataset.train + dataset.valid + dataset.test
    params, fallback = chosen(dataset.name, args.model)
    bounds = windows(events.timestamps, args.share, args.chunks)
    stream = Stream(events, embed_items(dataset.items, template=DEFAULT_TEMPLATE), bounds[0])
    fitted = fitter(args.model, params, stream)
    model = fitted(bounds[0], stream.n_start)
    scores: dict[str, list] = {name: [] for name in ("partial", "refit", *SWAPS)}
    for lo, hi, n, previous, new_items in steps(stream, bounds):
        model.partial_fit(previous, new_items=new_items)
        refit = fitted(lo, n)
        variants = {"partial": model, "refit": refit}
        for name, attribute in SWAPS.items():
            variants[name] = copy.copy(model)
            setattr(variants[name], attribute, getattr(refit, attribute))
        for name, variant in variants.items():
            scores[name].append(chunk_scores(variant, stream, lo, hi, fallback))
    table = Table(title=f"{dataset.name}, {args.model}: partial with one part of the refit (ndcg@20)")
    for column in ("variant", *GROUPS):
        table.add_column(column, justify="right")
    results = {name: {g: pooled(per_chunk, g) for g in GROUPS} for name, per_chunk in scores.items()}
    for name, row in results.items():
        table.add_row(name, *(f"{row[g]:.4f}" for g in GROUPS))
    Console().print(table)
    out = ROOT / "benchmarks" / "results" / dataset.name / f"stream_parts_{args.model}_{args.share:g}x{args.chunks}.json"
    out.write_text(json.dumps({"dataset": dataset.name, "model": args.model, "params": params, "share": args.share,
                               "chunks": args.chunks, "variants": results}, indent=2))
    print(f"user-chunks: {len([x for chunk in scores['partial'] for x in chunk['overall']])}; "
          f"{np.round([results[name]['overall'] for name in results], 4).tolist()}")


if __name__ == "__main__":
    main()
