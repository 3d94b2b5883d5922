"""In-batch contrastive loss (MultipleNegativesRankingLoss) with popularity-corrected logits.

Row ``i`` of the batch scores its anchor against every positive of the batch; the other rows'
positives are the negatives. A popular item is a negative in many batches, so plain in-batch
softmax pushes the head down and, with it, the gradient is dominated by head items. The
correction of Yi et al. (RecSys 2019, "sampling-bias-corrected neural modeling") subtracts
``adjustment * log q_j`` (``q_j``: item j's share of the positives) from every logit of column j.
Columns whose item is row i's own positive (duplicates in a batch) or its anchor are masked out:
they are not negatives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def in_batch_loss(anchors: Tensor, positives: Tensor, positive_items: Tensor, anchor_items: Tensor,
                  log_q: Tensor | None = None, *, scale: float = 20.0, adjustment: float = 0.0) -> Tensor:
    """Mean cross-entropy of each anchor picking its own positive among the batch's positives.

    anchors, positives : (B, d) unit vectors; positive_items, anchor_items : (B,) item indices
    (anchor -1: a text, not an item); log_q : (B,) log share of each positive's item."""
    import torch

    logits = scale * anchors @ positives.T  # (B, B) cosine similarities, scaled
    if adjustment and log_q is not None:
        logits = logits - adjustment * log_q[None, :]
    same = positive_items[None, :] == positive_items[:, None]  # (B, B) the row's own item elsewhere
    same |= positive_items[None, :] == anchor_items[:, None]
    eye = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    return torch.nn.functional.cross_entropy(logits, target)
