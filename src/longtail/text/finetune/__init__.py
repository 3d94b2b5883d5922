"""Adapt the sentence encoder to behaviour: full or LoRA fine-tuning on (item, next item) and
(recent history, next item) pairs from TRAIN, in-batch negatives with an optional popularity
correction, tail over-sampling, early stopping on a validation callback, resumable checkpoints.

>>> pairs = behaviour_pairs(ds.train, titles)                           # doctest: +SKIP
>>> finetune(pairs, texts, "out/ft", FinetuneConfig(mode="lora"))        # doctest: +SKIP
>>> TextEncoder("out/ft")  # the adapted encoder, anywhere an encoder is taken
"""

from longtail.text.finetune.config import MODES, FinetuneConfig
from longtail.text.finetune.pairs import Pairs, behaviour_pairs
from longtail.text.finetune.trainer import FinetuneResult, Validate, finetune

__all__ = ["MODES", "FinetuneConfig", "FinetuneResult", "Pairs", "Validate", "behaviour_pairs", "finetune"]
