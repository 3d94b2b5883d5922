"""Text-initialised neural CF trained for the next item, with long-tail-aware losses.

Item tower: frozen text vector -> learned projection, plus a learned residual for warm items
(zero-initialised; cold items are text only). User tower: softmax attention over the user's
``max_history`` most recent history item vectors. ``score(u, i) = <user_u, item_i>``
(``models/towers.py``).

Training: every event with at least one earlier event of its user is a target; its input is the
user's ``max_history`` events before it (next-item prediction, which is what the temporal protocol
asks of a model: rank the user's next items from their past). The loss is a softmax over the warm
catalogue: training runs inside it (cold items have no positive to learn from, and as everlasting
negatives they would only teach the projection to bury texts like theirs); the items already in the
input window are masked too, as evaluation never recommends them. Above ``max_full_softmax`` warm items the softmax is
sampled: ``n_negatives`` shared negatives per batch drawn from ``count ** 0.75``, logits corrected
by ``-log(n_negatives * Q(item))`` (logQ, Bengio & Senecal 2008; Yi et al., RecSys 2019) and
accidental hits masked. During training a random ``residual_dropout`` share of the warm items lose
their residual (as in DropoutNet, Volkovs et al., NeurIPS 2017), so the text-only vectors that cold
items get at recommend time stay on the scale of warm ones.

A fixed number of epochs, no early stopping: ``fit`` sees no held-out data. The defaults (dim 64,
batches of 256, AdamW lr 3e-3, 10 epochs) were picked on ml-latest-small's valid split: valid
ndcg@20 rises to a plateau over epochs 6-11 (0.100-0.106) and then slowly declines as the residuals
overfit (lr 6e-3 peaks at epochs 4-6 and declines faster; dim 32 with batches of 512 reaches ~0.098).
On 2 idle CPU cores a fit takes ~30 s there (~3 s an epoch); it is deterministic on CPU for a given
seed and thread count.
New events need no update: the user tower reads each query's history at recommend time.

Event weights (``Interactions.weights`` / ``HistoryBatch.weights``, e.g. a positive's sentiment,
``text.sentiment``), when present: a target's weight multiplies its term of the loss (the mean stays
self-normalised per batch), and the attention tower adds ``log w`` of each history event to its
attention logits, in training and at recommend time alike. Unweighted data trains exactly as before.

Losses (``loss``; ``models/losses.py``): ``softmax``, ``logit-adjustment`` (``tau``), ``ips``
(``ips_power``, ``ips_clip``), ``focal`` (``gamma``). Registry names: ``neural`` chooses the loss on
valid (``param_grid`` over the four, default knobs); ``neural-softmax``, ``neural-la``,
``neural-ips`` and ``neural-focal`` fix the loss and grid its one knob (the ablation):
``longtail evaluate --models neural-softmax,neural-la,neural-ips,neural-focal``. Grids are two
points each: one fit is ~30 s, and the whole ablation is 11 fits with the refits.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.explain import Explanation, top_evidence
from longtail.models.occlusion import closest_in_history
from longtail.models.losses import LOSSES, LongTailLoss, LossConfig, sampled_softmax_loss
from longtail.models.semantic import SemanticBase, log_event_weights
from longtail.models.towers import ItemTower, SequenceTower, UserTower, history_windows

USER_TOWERS = ("attention", "transformer")


class NeuralRecommender(SemanticBase):
    """Two-tower next-item model over text-initialised item vectors (see the module docstring).

    Parameters
    ----------
    loss : ``softmax`` | ``logit-adjustment`` | ``ips`` | ``focal`` (None: the class's own,
        ``logit-adjustment`` for ``neural``).
    tau, gamma, ips_power, ips_clip : knobs of the losses (see ``LossConfig``).
    dim : width of item and user vectors.
    epochs, batch_size, lr, weight_decay : AdamW training schedule (fixed epochs).
    max_history : most recent events the user tower attends over (training and recommending).
    residual_dropout : share of warm items trained without their residual in each batch.
    max_full_softmax : above this many warm items, sampled softmax with ``n_negatives``.
    seed : seeds parameters, shuffling, dropout and negatives (``fit`` is deterministic on CPU).
    num_threads : torch CPU threads during ``fit`` (None: torch's setting). A GPU is used when
        ``torch.cuda.is_available()``.

    Examples
    --------
    >>> model = make_model("neural-la", tau=0.25).fit(train, item_embeddings=vectors)  # doctest: +SKIP
    >>> items, scores = model.recommend([0, 1], k=20)                                # doctest: +SKIP
    """

    name = "neural"
    default_loss: ClassVar[str] = "logit-adjustment"
    param_grid: ClassVar[dict[str, list[Any]]] = {"loss": list(LOSSES)}

    def __init__(self, *, loss: str | None = None, tau: float = 0.25, gamma: float = 2.0,
                 ips_power: float = 0.5, ips_clip: float = 100.0, dim: int = 64, epochs: int = 10,
                 batch_size: int = 256, lr: float = 3e-3, weight_decay: float = 1e-4,
                 max_history: int = 50, residual_dropout: float = 0.3,
                 max_full_softmax: int = 50_000, n_negatives: int = 2048, seed: int = 0,
                 num_threads: int | None = None, user_tower: str = "attention", layers: int = 2,
                 heads: int = 2, dropout: float = 0.2) -> None:
        super().__init__(half_life=None, max_history=max_history)
        self.loss = self.default_loss if loss is None else loss
        self.tau = tau
        self.gamma = gamma
        self.ips_power = ips_power
        self.ips_clip = ips_clip
        self.dim = dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.residual_dropout = residual_dropout
        self.max_full_softmax = max_full_softmax
        self.n_negatives = n_negatives
        self.seed = seed
        self.num_threads = num_threads
        self.user_tower = user_tower
        self.layers = layers
        self.heads = heads
        self.dropout = dropout

    # -- configuration ------------------------------------------------------------------------
    def _loss_config(self) -> LossConfig:
        return LossConfig(str(self.loss), float(self.tau), float(self.gamma), float(self.ips_power),
                          float(self.ips_clip))

    def _check_params(self) -> None:
        super()._check_params()
        if self.max_history is None:
            raise ConfigError(f"{self.name}: max_history must be an int >= 1")
        if type(self) is not NeuralRecommender and self.loss != self.default_loss:
            raise ConfigError(f"{self.name} fixes loss={self.default_loss!r}; use `neural` with "
                              f"loss={self.loss!r} instead")
        self._loss_config()  # validates the loss and its knobs
        if self.user_tower not in USER_TOWERS or int(self.dim) % int(self.heads) or not 0 <= float(self.dropout) < 1:
            raise ConfigError(f"{self.name}: user_tower must be one of {USER_TOWERS}, dim divisible by "
                              f"heads and dropout in [0, 1); got {self.get_params()}")
        positive = {"dim": self.dim, "epochs": self.epochs, "batch_size": self.batch_size,
                    "lr": self.lr, "max_full_softmax": self.max_full_softmax,
                    "n_negatives": self.n_negatives}
        bad = {k: v for k, v in positive.items() if not float(v) > 0}
        if bad or not 0.0 <= float(self.residual_dropout) < 1.0 or float(self.weight_decay) < 0:
            raise ConfigError(f"{self.name}: need {sorted(positive)} > 0, weight_decay >= 0 and "
                              f"residual_dropout in [0, 1); got {self.get_params()}")

    # -- training -----------------------------------------------------------------------------
    def _fit(self, X: Interactions, item_embeddings: np.ndarray | None) -> None:
        text = np.ascontiguousarray(item_embeddings, dtype=np.float32)  # (n_items, d_text)
        if text.ndim != 2 or not np.all(np.isfinite(text)):
            raise ConfigError(f"{self.name}: item_embeddings must be a finite (n_items, d) array")
        previous = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(int(self.num_threads))
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.seed))
                self._train(X, text)
        finally:
            torch.set_num_threads(previous)

    def _examples(self, X: Interactions, counts: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """The next-item examples, in the warm sub-catalogue's local ids: ``warm_items`` (w,) global
        id of each local id; ``items`` (N,) the events sorted by user, then (time, item); ``starts``
        (N,) the first event of each event's user; ``targets`` the events with a history;
        ``weights`` (N,) each event's weight (None: unweighted)."""
        warm_items = np.flatnonzero(counts > 0)
        local = np.full(self.n_items_, len(warm_items), dtype=np.int64)
        local[warm_items] = np.arange(len(warm_items))
        ev = HistoryBatch.from_interactions(X)  # first events, each user's by (time, item)
        users, items = ev.rows, local[ev.items]
        starts = np.searchsorted(users, users, side="left")
        targets = np.flatnonzero(np.arange(len(users)) > starts)
        return warm_items, items, starts, targets, ev.weights

    def _train(self, X: Interactions, text: np.ndarray) -> None:
        """Next-item training inside the warm sub-catalogue: targets and history windows are
        warm items by construction, so neither cold items nor their vectors enter a step."""
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        length, batch_size = int(self.max_history), int(self.batch_size)
        counts = X.item_counts()
        warm_items, items, starts, targets, event_weights = self._examples(X, counts)
        w = len(warm_items)
        log_w = None if event_weights is None else np.append(log_event_weights(event_weights, len(items)), 0.0)
        items_tower = ItemTower(torch.from_numpy(text), counts > 0, int(self.dim)).to(device)
        users_tower = self._new_user_tower().to(device).train()
        criterion = LongTailLoss(self._loss_config(), counts).to(device)
        params = list(items_tower.parameters()) + list(users_tower.parameters())
        optimizer = torch.optim.AdamW(params, lr=float(self.lr), weight_decay=float(self.weight_decay))
        rng = np.random.default_rng(int(self.seed))
        index = torch.from_numpy(np.append(warm_items, self.n_items_)).to(device)  # (w + 1,) pad last
        global_ids = index[:w]  # (w,) for the loss' per-item statistics
        sampled = w > int(self.max_full_softmax)
        proposal = counts[warm_items].astype(np.float64) ** 0.75  # (w,) negatives' distribution Q
        proposal /= proposal.sum()
        for _ in range(int(self.epochs)):
            shuffled = rng.permutation(targets)
            for lo in range(0, len(shuffled), batch_size):
                batch = shuffled[lo : lo + batch_size]
                windows = torch.from_numpy(history_windows(batch, items, starts, length, w)).to(device)
                target = torch.from_numpy(items[batch]).to(device)  # (B,) local ids
                window_w = sample_weight = None
                if log_w is not None:  # weighted events: each slot's log weight, each target's weight
                    slots = history_windows(batch, np.arange(len(items)), starts, length, len(items))
                    window_w = torch.from_numpy(log_w[slots].astype(np.float32)).to(device)  # (B, L)
                    sample_weight = torch.from_numpy(event_weights[batch].astype(np.float32)).to(device)
                keep = torch.from_numpy((rng.random(w + 1) >= float(self.residual_dropout))
                                        .astype(np.float32)).to(device)  # (w + 1,)
                vectors = items_tower(index, keep)  # (w + 1, dim), padding last
                user = users_tower(vectors, windows, window_w)  # (B, dim)
                if sampled:
                    negatives = torch.from_numpy(rng.choice(w, int(self.n_negatives), p=proposal))
                    log_q = torch.from_numpy(np.log(len(negatives) * proposal).astype(np.float32))
                    loss = sampled_softmax_loss(criterion, user, vectors, target, negatives.to(device),
                                                log_q.to(device), global_ids, sample_weight)
                else:
                    logits = user @ vectors[:w].T  # (B, w)
                    seen = torch.where(windows == w, windows[:, -1:], windows)  # (B, L) pad -> newest
                    own = logits.gather(1, target[:, None])  # a repeat (keep-seen) stays learnable
                    logits = logits.scatter(1, seen, float("-inf")).scatter(1, target[:, None], own)
                    loss = criterion(logits, target, global_ids, sample_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            self.item_factors_ = items_tower().cpu().numpy()  # (n_items + 1, dim), padding last
            self.projection_ = items_tower.projection.weight.cpu().numpy()  # (dim, d_text): new items' vectors
        self.user_tower_ = users_tower.cpu().eval()

    def _text_dim(self) -> int | None:
        return int(self.projection_.shape[1])

    def _partial_fit(self, new: Interactions, new_items: np.ndarray | None) -> None:
        """New items through the text tower (``W t``, no residual: what a cold item gets); users
        need nothing (the tower reads each query's history). Items keep their residuals, and an
        item that was cold keeps its text-only vector, until the next refit."""
        if new_items is not None:
            added = np.asarray(new_items, np.float32) @ self.projection_.T  # (m, dim)
            self.item_factors_ = np.concatenate([self.item_factors_[:-1], added, self.item_factors_[-1:]])

    def _new_user_tower(self) -> UserTower | SequenceTower:
        """``attention`` (order-free pooling with a recency bias) or ``transformer`` (positions)."""
        if self.user_tower == "transformer":
            return SequenceTower(int(self.dim), int(self.max_history), int(self.layers), int(self.heads),
                                 float(self.dropout))
        return UserTower(int(self.dim), int(self.max_history))

    # -- scoring ------------------------------------------------------------------------------
    def _windows(self, queries: HistoryBatch) -> torch.Tensor:
        """Right-aligned history windows (n, L), most recent event last."""
        length = int(self.max_history)
        h = self._histories(queries)
        windows = np.full((len(queries), length), self.n_items_, dtype=np.int64)
        windows[h.rows, length - 1 - h.age] = h.items
        return torch.from_numpy(windows)

    def _log_weight_windows(self, queries: HistoryBatch) -> torch.Tensor | None:
        """``log`` of each window slot's event weight (n, L), aligned with ``_windows``; None for
        unweighted histories."""
        h = self._histories(queries)
        own = log_event_weights(h.weights, len(h.items))
        if own is None:
            return None
        length = int(self.max_history)
        out = np.zeros((len(queries), length), dtype=np.float32)
        out[h.rows, length - 1 - h.age] = own
        return torch.from_numpy(out)

    def _score(self, queries: HistoryBatch) -> np.ndarray:
        vectors = torch.from_numpy(self.item_factors_)  # (n + 1, dim)
        with torch.no_grad():
            user = self.user_tower_(vectors, self._windows(queries), self._log_weight_windows(queries)).numpy()
        return user @ self.item_factors_[: self.n_items_].T  # (n, n_items)

    def _explain_row(self, query: HistoryBatch, item: int) -> Explanation:
        """The user tower's attention over the window times each window item's agreement with
        ``item``: the share of ``<user, item>`` each history item brings."""
        windows = self._windows(query)
        vectors = torch.from_numpy(self.item_factors_)
        window = windows[0].numpy()
        real = window < self.n_items_
        if isinstance(self.user_tower_, SequenceTower):
            return Explanation(item, "history", self.name, top_evidence(*self._occlusion(query, item)))
        with torch.no_grad():
            weights = self.user_tower_.attention(vectors, windows, self._log_weight_windows(query))[0].numpy()
            projected = self.user_tower_.project(vectors[torch.from_numpy(window[real])]).numpy()
        shares = weights[real] * (projected @ self.item_factors_[item])
        return Explanation(item, "history", self.name, top_evidence(window[real], shares))

    def _occlusion(self, query: HistoryBatch, item: int) -> tuple[np.ndarray, np.ndarray]:
        """For an order-aware tower, whose score does not split into per-item terms: how much
        ``<user, item>`` drops when each event of the window is removed from the *history* (an
        older event then slides into the window, as it would if the user had not had that one).
        Faithful by construction; one batched forward pass. Returns (window items, drops)."""
        length, pad = int(self.max_history), self.n_items_
        history = query.row(0)
        shown = np.arange(max(0, len(history) - length), len(history))  # positions in the window
        variants = np.full((len(shown) + 1, length), pad, dtype=np.int64)
        for r, drop in enumerate([None, *shown.tolist()]):
            kept = history if drop is None else np.delete(history, drop)
            kept = kept[-length:]
            variants[r, length - len(kept):] = kept
        vectors = torch.from_numpy(self.item_factors_)
        with torch.no_grad():
            scores = (self.user_tower_(vectors, torch.from_numpy(variants)) @ vectors[item]).numpy()
        return history[shown], scores[0] - scores[1:]

    # -- persistence --------------------------------------------------------------------------
    def _proposals(self, query: HistoryBatch, items: list[int]) -> np.ndarray:
        """The history items closest to each of ``items`` in the learned item space (3 each)."""
        factors = self.item_factors_ / np.maximum(np.linalg.norm(self.item_factors_, axis=1, keepdims=True), 1e-12)
        return closest_in_history(factors, query.items, items)

    def _state(self) -> dict[str, np.ndarray]:
        tower = {f"user_tower.{k}": v.numpy() for k, v in self.user_tower_.state_dict().items()}
        return {"item_factors": self.item_factors_, "projection": self.projection_, **tower}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_factors_ = arrays["item_factors"]
        self.projection_ = arrays["projection"]
        tower = self._new_user_tower()
        prefix = "user_tower."
        tower.load_state_dict({k[len(prefix):]: torch.from_numpy(np.array(v))
                               for k, v in arrays.items() if k.startswith(prefix)})
        self.user_tower_ = tower.eval()


class NeuralSoftmax(NeuralRecommender):
    """``neural`` with plain softmax (the ablation's reference)."""

    name = "neural-softmax"
    default_loss = "softmax"
    param_grid: ClassVar[dict[str, list[Any]]] = {}


class NeuralLogitAdjustment(NeuralRecommender):
    """``neural`` with logit adjustment; ``tau`` chosen on valid."""

    name = "neural-la"
    default_loss = "logit-adjustment"
    param_grid: ClassVar[dict[str, list[Any]]] = {"tau": [0.1, 0.25]}


class NeuralIPS(NeuralRecommender):
    """``neural`` with inverse-propensity weights; the propensity exponent chosen on valid."""

    name = "neural-ips"
    default_loss = "ips"
    param_grid: ClassVar[dict[str, list[Any]]] = {"ips_power": [0.25, 0.5]}


class NeuralFocal(NeuralRecommender):
    """``neural`` with focal loss; ``gamma`` chosen on valid."""

    name = "neural-focal"
    default_loss = "focal"
    param_grid: ClassVar[dict[str, list[Any]]] = {"gamma": [1.0, 2.0]}


NEURAL_MODELS: tuple[type[NeuralRecommender], ...] = (
    NeuralRecommender, NeuralSoftmax, NeuralLogitAdjustment, NeuralIPS, NeuralFocal,
)

__all__ = ["NEURAL_MODELS", "NeuralFocal", "NeuralIPS", "NeuralLogitAdjustment", "NeuralRecommender",
           "NeuralSoftmax"]
