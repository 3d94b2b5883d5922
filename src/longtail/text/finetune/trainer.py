"""The training loop: in-batch contrastive steps on behaviour pairs, under a time budget, with
validation-based early stopping, atomic checkpoints and resume after a kill.

State lives in ``OUT/training/``: ``checkpoint.pt`` (trainable weights, optimiser, scheduler, step,
time spent, validations; written to a temporary file, then renamed) and ``report.json``. The best
encoder by validation is written to ``OUT/encoder/`` whenever it improves, so a kill never leaves
a half-written encoder. Batches are a function of (seed, epoch, step), so a resumed run draws the
batches the killed one would have drawn.
"""

from __future__ import annotations

import json
import math
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from longtail.common.files import atomic_write_text, temp_path
from longtail.errors import ConfigError
from longtail.text.adapter import base_record, load_sentence_transformer, save_encoder
from longtail.text.base_models import resolve_base
from longtail.text.finetune.config import FinetuneConfig
from longtail.text.finetune.loss import in_batch_loss
from longtail.text.finetune.pairs import Pairs

# (encode: texts -> (n, d) unit float32) -> {"ndcg@20": ..., "tail": ..., "cold": ...}; higher is better
Validate = Callable[[Callable[[Sequence[str]], np.ndarray]], dict[str, float]]
CRITERION = "ndcg@20"
LOSS_EVERY = 10  # steps per point of the loss curve
ENCODE_SEQ_LENGTH = 256  # what TextEncoder encodes with by default: validation sees those vectors


@dataclass
class FinetuneResult:
    encoder: Path  # the folder to pass as --encoder
    steps: int
    total_steps: int
    seconds: float
    stopped: str  # "done" | "early-stopping" | "budget"
    trainable: int
    parameters: int
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss since the last)
    validations: list[dict[str, Any]] = field(default_factory=list)  # {"step", metrics...}
    peak_rss_mb: float = 0.0

    @property
    def trainable_share(self) -> float:
        return self.trainable / max(self.parameters, 1)

    def as_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder.name, "steps": self.steps, "total_steps": self.total_steps,
                "seconds": round(self.seconds, 1), "stopped": self.stopped, "trainable": self.trainable,
                "parameters": self.parameters, "trainable_share": round(self.trainable_share, 5),
                "losses": [[step, round(x, 4)] for step, x in self.losses], "validations": self.validations,
                "peak_rss_mb": round(self.peak_rss_mb, 1)}


def _build(config: FinetuneConfig, device: str) -> tuple[Any, int, int]:
    """(model with the trainable part marked, trainable count, base parameter count)."""
    base_path, _ = resolve_base(config.base)
    model = load_sentence_transformer(base_path, device)
    total = sum(p.numel() for p in model.parameters())
    if config.mode == "lora":
        import torch
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(config.seed)  # LoRA's A matrices start random: the same run, the same start

        layers = None
        if config.lora_layers is not None:
            depth = int(model[0].model.config.num_hidden_layers)
            layers = list(range(max(depth - config.lora_layers, 0), depth))
        lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.lora_dropout,
                          target_modules=list(config.target_modules), layers_to_transform=layers)
        model[0].model = get_peft_model(model[0].model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, trainable, total


def _order(n: int, seed: int, epoch: int, weights: np.ndarray | None) -> np.ndarray:
    """The pairs of one epoch in draw order, a pure function of (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    return rng.permutation(n) if weights is None else rng.choice(n, size=n, p=weights)


class _Run:
    """One call of ``finetune``: the model, its optimiser and the bookkeeping a checkpoint keeps."""

    def __init__(self, pairs: Pairs, texts: Sequence[str], out: Path, config: FinetuneConfig) -> None:
        import torch

        self.torch = torch
        self.pairs, self.texts, self.out, self.config = pairs, list(texts), out, config
        self.device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.trainable, self.parameters = _build(config, self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr)
        steps_per_epoch = max(len(pairs) // config.batch_size, 1)
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = config.max_steps or max(int(math.ceil(config.epochs * steps_per_epoch)), 1)
        warmup = max(int(config.warmup * self.total_steps), 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min((s + 1) / warmup, max(0.0, (self.total_steps - s) / max(self.total_steps - warmup, 1))))
        self.weights = pairs.sampling_weights(config.tail_boost)
        self.log_q = torch.tensor(pairs.log_positive_share(), dtype=torch.float32, device=self.device)
        self.step, self.seconds, self.best, self.bad = 0, 0.0, -math.inf, 0
        self.losses: list[tuple[int, float]] = []
        self.validations: list[dict[str, Any]] = []
        self.window: list[float] = []
        self.best_weights: dict[str, Any] = {}  # trainable weights of the best validation (CPU)
        self.initial: dict[str, Any] = {}  # full mode: the frozen weights, for interpolation
        self.validation_seconds = 0.0
        self._epoch_order: tuple[int, np.ndarray] = (-1, np.zeros(0, np.int64))

    # -- checkpoints ---------------------------------------------------------------------------
    @property
    def checkpoint(self) -> Path:
        return self.out / "training" / "checkpoint.pt"

    def save_checkpoint(self, stopped: str | None = None) -> None:
        state = {"identity": self.config.identity(), "step": self.step, "seconds": self.seconds,
                 "best": self.best, "bad": self.bad, "losses": self.losses, "validations": self.validations,
                 "weights": {n: p.detach().cpu() for n, p in self.model.named_parameters() if p.requires_grad},
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "best_weights": self.best_weights, "initial": self.initial,
                 "validation_seconds": self.validation_seconds, "stopped": stopped}
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(self.checkpoint)
        try:
            self.torch.save(state, tmp)
            os.replace(tmp, self.checkpoint)
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self) -> str | None:
        """Restore a checkpoint of the same run; returns how it had stopped (None: mid-run)."""
        state = self.torch.load(self.checkpoint, map_location=self.device, weights_only=False)
        if state["identity"] != self.config.identity():
            raise ConfigError(f"{self.out}: its checkpoint comes from another configuration; "
                              "use another --out, or --restart to train from scratch")
        named = dict(self.model.named_parameters())
        with self.torch.no_grad():
            for name, value in state["weights"].items():
                named[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.seconds, self.best, self.bad = state["step"], state["seconds"], state["best"], state["bad"]
        self.losses, self.validations = state["losses"], state["validations"]
        self.best_weights, self.initial = state["best_weights"], state["initial"]
        self.validation_seconds = state["validation_seconds"]
        return state["stopped"]

    # -- steps ---------------------------------------------------------------------------------
    def batch_rows(self, step: int) -> np.ndarray:
        epoch, offset = divmod(step, self.steps_per_epoch)
        if self._epoch_order[0] != epoch:  # one draw per epoch, not per step
            self._epoch_order = (epoch, _order(len(self.pairs), self.config.seed, epoch, self.weights))
        order = self._epoch_order[1]
        size = self.config.batch_size
        return order[offset * size:(offset + 1) * size]

    def embed(self, texts: list[str]) -> Any:
        """(len(texts), d) embeddings with gradients, in input order. Texts go through the model in
        length order, ``batch_size`` at a time: short item texts are not padded to the length of
        history anchors (padding is most of the cost on CPU)."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        size = self.config.batch_size
        parts = []
        for start in range(0, len(order), size):
            features = self.model.preprocess([texts[i] for i in order[start:start + size]])
            features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
            parts.append(self.model(features)["sentence_embedding"])
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return self.torch.cat(parts)[self.torch.as_tensor(inverse, device=self.device)]

    def train_step(self) -> float:
        torch = self.torch
        rows = self.batch_rows(self.step)
        torch.manual_seed(self.config.seed * 1_000_003 + self.step)  # dropout: same masks after a resume
        self.model.train()
        self.model.max_seq_length = self.config.max_seq_length
        positive_items = self.pairs.positives[rows]
        both = self.embed(self.pairs.anchors(rows, self.texts) + [self.texts[i] for i in positive_items])
        anchors, positives = both[:len(rows)], both[len(rows):]
        items = torch.as_tensor(positive_items, device=self.device)
        loss = in_batch_loss(torch.nn.functional.normalize(anchors, dim=-1),
                             torch.nn.functional.normalize(positives, dim=-1), items,
                             torch.as_tensor(self.pairs.anchor_items[rows], device=self.device),
                             self.log_q[items], scale=self.config.scale, adjustment=self.config.adjustment)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return float(loss.detach())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors as the saved encoder will give them (eval mode, encoding length)."""
        self.model.eval()
        self.model.max_seq_length = ENCODE_SEQ_LENGTH
        with self.torch.no_grad():
            vectors = self.model.encode(list(texts), batch_size=64, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def save_encoder(self) -> None:
        folder = self.out / "encoder"
        base = base_record(resolve_base(self.config.base)[1], folder)  # never an absolute path
        meta = {"kind": self.config.mode, "base": base, "step": self.step,
                "config": dict(self.config.as_dict(), base=base)}
        save_encoder(self.model, folder, meta)

    def trainable_weights(self) -> dict[str, Any]:
        return {n: p.detach().cpu().clone() for n, p in self.model.named_parameters() if p.requires_grad}

    def set_weights(self, weights: dict[str, Any]) -> None:
        named = dict(self.model.named_parameters())
        with self.torch.no_grad():
            for name, value in weights.items():
                named[name].copy_(value)

    def validate(self, validate: Validate, alpha: float = 1.0, step: int | None = None) -> bool:
        """Score the current encoder; keep it when it is the best so far. True = stop (patience)."""
        started = time.perf_counter()
        metrics = validate(self.encode)
        self.validation_seconds = max(self.validation_seconds, time.perf_counter() - started)
        self.validations.append({"step": self.step if step is None else step, "alpha": alpha,
                                 **{k: round(float(v), 5) for k, v in metrics.items()}})
        value = float(metrics[CRITERION])
        if value > self.best:
            self.best, self.bad = value, 0
            self.best_weights = self.trainable_weights()
            self.save_encoder()
            return False
        self.bad += 1
        return self.bad >= self.config.patience

    def interpolate(self, validate: Validate) -> None:
        """WiSE-FT: weight-space mixes of the frozen and the best adapted encoder, on valid; the
        best mix (or the unmixed encoder) is the one kept."""
        kept = max(self.validations, key=lambda v: v[CRITERION])
        if kept["step"] == 0 or any(v.get("alpha", 1.0) != 1.0 for v in self.validations):
            return  # nothing adapted to mix, or mixed already
        best = self.best_weights
        for alpha in sorted(self.config.interpolation, reverse=True):
            if self.config.mode == "lora":  # the update is B A: scaling B scales it
                mixed = {n: w * alpha if "lora_B" in n else w for n, w in best.items()}
            else:
                mixed = {n: self.initial[n] + alpha * (w - self.initial[n]) for n, w in best.items()}
            self.set_weights(mixed)
            self.validate(validate, alpha, kept["step"])
        self.set_weights(self.best_weights)


def finetune(pairs: Pairs, item_texts: Sequence[str], out: Path | str, config: FinetuneConfig, *,
             validate: Validate | None = None, restart: bool = False,
             on_start: Callable[[int, int, int, int], None] | None = None,
             on_step: Callable[[int, int, float], None] | None = None) -> FinetuneResult:
    """Adapt ``config.base`` to ``pairs`` and write the encoder to ``out/encoder``.

    ``validate`` scores an encoding function on held-out behaviour (step 0 = the frozen encoder);
    the best-scoring encoder is kept, so the result is never worse on validation than the frozen
    one. Without it, the last step's encoder is saved. A checkpoint in ``out`` of the same
    configuration is resumed (``restart`` discards it); a finished run returns at once.
    ``on_start(trainable, parameters, step, total_steps)`` and ``on_step(step, total_steps, loss)``
    report progress."""
    out = Path(out)
    if len(item_texts) != len(pairs.item_counts):
        raise ConfigError(f"{len(item_texts)} item texts for {len(pairs.item_counts)} items")
    if len(pairs) < config.batch_size:
        raise ConfigError(f"{len(pairs)} pairs, fewer than one batch of {config.batch_size}")
    run = _Run(pairs, item_texts, out, config)
    if config.num_threads:
        run.torch.set_num_threads(config.num_threads)
    stopped = None
    if run.checkpoint.is_file() and not restart:
        stopped = run.load_checkpoint()
    if on_start is not None:
        on_start(run.trainable, run.parameters, run.step, run.total_steps)
    budget = None if config.max_minutes is None else config.max_minutes * 60.0
    started = time.perf_counter() - run.seconds
    if stopped is None:
        if validate is not None and not run.validations:
            if config.mode == "full" and config.interpolation:
                run.initial = run.trainable_weights()
            run.validate(validate)  # step 0: the frozen encoder, the bar to beat
        if budget is not None and validate is not None:  # leave time for the last validation and the mixes
            budget -= run.validation_seconds * (1 + len(config.interpolation))
        while run.step < run.total_steps:
            if budget is not None and time.perf_counter() - started > budget:
                stopped = "budget"
                break
            run.window.append(run.train_step())
            run.seconds = time.perf_counter() - started
            if on_step is not None:
                on_step(run.step, run.total_steps, run.window[-1])
            if run.step % LOSS_EVERY == 0 or run.step % config.checkpoint_every == 0 or run.step == run.total_steps:
                run.losses.append((run.step, float(np.mean(run.window))))
                run.window = []
            if validate is not None and (run.step % config.eval_every == 0 or run.step == run.total_steps):
                if run.validate(validate):
                    stopped = "early-stopping"
            if run.step % config.checkpoint_every == 0 or stopped:
                run.save_checkpoint()
            if stopped:
                break
        stopped = stopped or "done"
        if run.window:
            run.losses.append((run.step, float(np.mean(run.window))))
        if validate is None:
            run.save_encoder()
        else:
            if run.validations[-1]["step"] != run.step and stopped == "budget":
                run.validate(validate)  # the steps since the last validation count too
            if config.interpolation:
                run.interpolate(validate)
        run.seconds = time.perf_counter() - started
        run.save_checkpoint(stopped)
    result = FinetuneResult(out / "encoder", run.step, run.total_steps, run.seconds, stopped, run.trainable,
                            run.parameters, run.losses, run.validations,
                            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    atomic_write_text(out / "training" / "report.json", json.dumps(result.as_dict(), indent=2))
    return result
