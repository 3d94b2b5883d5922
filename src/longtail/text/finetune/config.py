"""What one fine-tuning run is: mode, base model, LoRA shape, optimisation, budget, sampling."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from longtail.errors import ConfigError

MODES = ("lora", "full")
DEFAULT_LR = {"lora": 1e-4, "full": 3e-5}


@dataclass(frozen=True)
class FinetuneConfig:
    """Parameters of ``finetune``; ``identity()`` is what a checkpoint must match to be resumed.

    mode : 'lora' (peft adapter on ``target_modules``, only it is trained and saved) or 'full'.
    lora_layers : adapt only the top this many transformer layers (None: all). Nothing below the
        lowest adapted layer needs a gradient, so autograd skips it: top 2 of MiniLM's 6 layers
        train ~2x faster per step on CPU.
    base : base encoder (None: the bundled MiniLM; 'package:NAME'; or a local folder).
    learning_rate : None = 1e-4 for lora, 3e-5 for full.
    The defaults are the procedure chosen on ml-latest-small's valid split (docs/results.md,
    "Adapting the encoder"): lr 1e-4, log-q correction 1, tail pairs x5, LoRA on the top 2 layers.
    epochs : passes over the pairs (fractions allowed); ``max_steps`` caps the steps instead.
    max_minutes : wall-clock budget of training, its last validation and the WiSE-FT mixes (each
        reserved at the longest validation seen), resumed runs included (None: none).
    eval_every : steps between validations (early stopping on the validation's criterion);
        ``patience`` validations without improvement stop training.
    checkpoint_every : steps between checkpoints (a kill loses at most this many steps).
    adjustment : strength of the popularity correction of in-batch logits (0 = plain MNRL).
    tail_boost : pairs whose positive is a tail item are this many times as likely to be drawn.
    interpolation : after training, weight-space ensembles of the frozen and the best adapted
        encoder tried on valid (WiSE-FT, Wortsman et al. 2022): LoRA's B scaled by each value, or
        full weights ``w0 + a (w - w0)``; the best on valid is kept. Empty: none.
    pairs : kinds of behaviour pairs built (``pairs.behaviour_pairs``): 'item' and/or 'history'.
    max_seq_length : tokens kept per text while training (encoding afterwards keeps the
        encoder's own setting).
    """

    mode: str = "lora"
    base: str | None = None
    rank: int = 8
    alpha: int = 16
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")
    lora_dropout: float = 0.05
    lora_layers: int | None = 2
    learning_rate: float | None = None
    batch_size: int = 64
    max_seq_length: int = 64
    epochs: float = 1.0
    max_steps: int | None = None
    max_minutes: float | None = 15.0
    eval_every: int = 40
    patience: int = 2
    checkpoint_every: int = 50
    scale: float = 20.0
    adjustment: float = 1.0
    tail_boost: float = 5.0
    history_len: int = 5
    pairs: tuple[str, ...] = ("item", "history")
    warmup: float = 0.05
    interpolation: tuple[float, ...] = (0.25, 0.5, 0.75)
    seed: int = 0
    device: str | None = None
    num_threads: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("rank", "alpha", "batch_size", "max_seq_length", "eval_every", "checkpoint_every",
                     "patience", "history_len"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be >= 2: the other rows of a batch are the negatives")
        if self.epochs <= 0 or (self.max_steps is not None and self.max_steps < 1):
            raise ConfigError("epochs must be > 0 and max_steps >= 1")
        if self.tail_boost <= 0 or self.adjustment < 0 or self.scale <= 0:
            raise ConfigError("tail_boost and scale must be > 0, adjustment >= 0")
        if not self.pairs or set(self.pairs) - {"item", "history"}:
            raise ConfigError(f"pairs must be a non-empty subset of ('item', 'history'), got {self.pairs}")
        if any(not 0.0 < a < 1.0 for a in self.interpolation):
            raise ConfigError(f"interpolation values must lie in (0, 1), got {self.interpolation}")
        if self.lora_layers is not None and self.lora_layers < 1:
            raise ConfigError(f"lora_layers must be >= 1 or None, got {self.lora_layers}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"max_minutes must be > 0, got {self.max_minutes}")

    @property
    def lr(self) -> float:
        return float(self.learning_rate if self.learning_rate is not None else DEFAULT_LR[self.mode])

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        data["pairs"] = list(self.pairs)
        data["interpolation"] = list(self.interpolation)
        data["learning_rate"] = self.lr
        return data

    def identity(self) -> dict[str, Any]:
        """Everything but the budget and the machine: what makes two runs the same run."""
        data = self.as_dict()
        for key in ("max_minutes", "device", "num_threads", "eval_every", "checkpoint_every", "patience"):
            data.pop(key)
        return data
