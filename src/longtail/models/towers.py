"""The two towers of ``neural`` (PyTorch): text-initialised items, attention-pooled users.

- ``ItemTower``: ``v_i = W t_i + e_i`` where ``t_i`` is the frozen (unit) text vector, ``W`` a small
  learned projection and ``e_i`` a learned residual for warm items, zero-initialised, so training
  starts from what the text says and moves an item only as far as its interactions justify. Cold
  items have no residual (a fixed zero row that gets no gradient): they are scored by text alone.
- ``UserTower``: softmax attention over the user's most recent history item vectors, with the
  user's mean history vector as query (``q = A mean + b``; ``A = 0`` is a learned global query)
  and a learned bias per recency slot, then a linear map: ``u = O sum_j w_j v_j``. An optional
  ``log_weights`` window (the events' own weights, e.g. sentiment) is added to the attention logits,
  so ``w_j`` is multiplied by the event's weight before normalising.

Histories are right-aligned padded index matrices (B, L): slot ``L - 1`` is the most recent event,
padding holds the index ``n_items`` (an extra all-zero item row).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn


def history_windows(positions: np.ndarray, items: np.ndarray, starts: np.ndarray, length: int,
                    pad: int) -> np.ndarray:
    """For events ``positions`` of the user-sorted event list ``items`` (oldest first per user;
    ``starts[p]`` is the first event of ``p``'s user), the ``length`` events before each one,
    right-aligned, ``pad`` where the user's history is shorter. (len(positions), length) int64."""
    back = np.arange(length, 0, -1)  # (L,) slot j holds the event `back[j]` positions earlier
    source = positions[:, None] - back[None, :]  # (B, L)
    valid = source >= starts[positions][:, None]
    return np.where(valid, items[np.where(valid, source, 0)], pad).astype(np.int64)


class ItemTower(nn.Module):
    """``(n_items + 1, dim)`` item vectors (the last row is the zero padding item)."""

    def __init__(self, text: Tensor, warm: np.ndarray, dim: int) -> None:
        super().__init__()
        n_items = text.shape[0]
        padded = torch.cat([text, text.new_zeros(1, text.shape[1])])  # (n_items + 1, d_text)
        self.register_buffer("text", padded)  # frozen; the padding row projects to zero
        slot = np.zeros(n_items + 1, dtype=np.int64)  # 0 = no residual (cold items, padding)
        slot[np.flatnonzero(warm)] = np.arange(1, int(warm.sum()) + 1)
        self.register_buffer("slot", torch.from_numpy(slot))  # (n_items + 1,)
        self.projection = nn.Linear(text.shape[1], dim, bias=False)
        self.residual = nn.Embedding(int(warm.sum()) + 1, dim, padding_idx=0)
        nn.init.zeros_(self.residual.weight)

    def forward(self, index: Tensor | None = None, keep_residual: Tensor | None = None) -> Tensor:
        """Vectors (m, dim) of items ``index`` (m,) (None: all, padding last). ``keep_residual`` (m,)
        0/1 drops residuals (DropoutNet-style training, so text-only vectors stay comparable with
        warm ones)."""
        text = self.text if index is None else self.text[index]  # (m, d_text)
        slot = self.slot if index is None else self.slot[index]  # (m,)
        residual = self.residual(slot)  # (m, dim)
        if keep_residual is not None:
            residual = residual * keep_residual[:, None]
        return self.projection(text) + residual


class UserTower(nn.Module):
    """User vectors (B, dim) from history windows (B, L) over item vectors (n_items + 1, dim)."""

    def __init__(self, dim: int, length: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, dim)
        nn.init.zeros_(self.query.weight)
        self.recency = nn.Parameter(torch.zeros(length))  # (L,) attention bias per slot
        self.output = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            self.output.weight.copy_(torch.eye(dim))
        self.scale = 1.0 / math.sqrt(dim)

    def attention(self, item_vectors: Tensor, windows: Tensor, log_weights: Tensor | None = None) -> Tensor:
        """Attention weights (B, L) over each window's slots (padding and empty windows: 0);
        ``log_weights`` (B, L): log of each slot's own event weight (None: all 1)."""
        pad = item_vectors.shape[0] - 1
        present = windows != pad  # (B, L)
        history = item_vectors[windows]  # (B, L, dim)
        count = present.sum(1, keepdim=True).clamp_min(1)  # (B, 1)
        mean = history.sum(1) / count  # (B, dim); padding rows are zero
        query = self.query(mean)  # (B, dim)
        logits = torch.einsum("bld,bd->bl", history, query) * self.scale + self.recency  # (B, L)
        if log_weights is not None:
            logits = logits + log_weights
        logits = logits.masked_fill(~present, float("-inf"))
        return torch.softmax(logits, dim=1).nan_to_num(0.0)

    def project(self, vectors: Tensor) -> Tensor:
        """The output map (linear, no bias), so ``user = sum_l w_l project(h_l)``: each history
        item's share of a score is ``w_l <project(h_l), item>``."""
        return self.output(vectors)

    def forward(self, item_vectors: Tensor, windows: Tensor, log_weights: Tensor | None = None) -> Tensor:
        weights = self.attention(item_vectors, windows, log_weights)  # (B, L)
        pooled = torch.einsum("bl,bld->bd", weights, item_vectors[windows])  # (B, dim)
        return self.output(pooled)


class SequenceTower(nn.Module):
    """Order-aware user vectors (SASRec-style, Kang & McAuley 2018): the window's item vectors plus
    a learned embedding per slot, through ``layers`` pre-norm Transformer encoder layers with
    padding masked; the user is the output at the newest slot (``L - 1``, always an event when the
    history is non-empty). Each slot attends to every earlier slot and, as the window holds only
    the past, no causal mask is needed. Same interface as ``UserTower``; ``log_weights`` is
    accepted and not read (an order-aware tower has no per-slot pooling weight to scale; event
    weights reach it through the training loss only)."""

    def __init__(self, dim: int, length: int, layers: int = 2, heads: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(length, dim))  # (L, dim)
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, item_vectors: Tensor, windows: Tensor, log_weights: Tensor | None = None) -> Tensor:
        pad = item_vectors.shape[0] - 1
        padding = windows == pad  # (B, L)
        padding = padding & ~padding.all(1, keepdim=True)  # an empty window attends to its padding
        hidden = self.dropout(item_vectors[windows] + self.position)  # (B, L, dim)
        hidden = self.encoder(hidden, src_key_padding_mask=padding)
        return self.norm(hidden[:, -1])  # (B, dim)
