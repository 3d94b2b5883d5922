"""How good an encoder is for recommending, measured the protocol's way: fit semantic-attn (text
only, so the score moves with the encoder alone) on TRAIN with the encoder's item vectors and rank
the VALID users. ``longtail finetune`` early-stops on it; it never reads test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from longtail.data.dataset import Dataset
from longtail.eval.evaluator import Evaluator
from longtail.eval.tuning import OFF, pipeline_for
from longtail.models.registry import make_model
from longtail.text import DEFAULT_TEMPLATE, item_texts

# semantic-attn's parameters while the encoder changes: the model's own defaults, fixed, so a
# validation gain is the encoder's (tuning them on valid afterwards is ``evaluate``'s job)
PROBE_MODEL = "semantic-attn"
METRIC = "ndcg@20"


def valid_scorer(dataset: Dataset, *, template: str = DEFAULT_TEMPLATE, model: str = PROBE_MODEL,
                 params: dict[str, Any] | None = None
                 ) -> tuple[list[str], Callable[[Callable[[Sequence[str]], np.ndarray]], dict[str, float]]]:
    """(the item texts, a function scoring an encoding function on valid): overall, tail and cold
    ndcg@20 of ``model`` fitted on train with the vectors of the catalogue's texts."""
    texts = item_texts(dataset.items, template)
    evaluator = Evaluator(dataset, split="valid")

    def score(encode: Callable[[Sequence[str]], np.ndarray]) -> dict[str, float]:
        vectors = np.asarray(encode(texts), dtype=np.float32)  # (n_items, d)
        fitted = make_model(model, **(params or {})).fit(dataset.train, item_embeddings=vectors)
        result = evaluator.evaluate(pipeline_for(fitted, evaluator.view.item_counts, vectors, OFF))
        out = {METRIC: result.headline(METRIC)}
        for group in ("tail", "cold"):
            value = result.metrics.get(group, {}).get(METRIC)
            out[group] = float("nan") if value is None else float(value)
        return out

    return texts, score
