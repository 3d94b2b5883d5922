"""Re-ranking a model's candidate lists for diversity and tail exposure, one knob for all methods.

``diversity`` λ in [0, 1]: 0 = the model's own ranking, 1 = only diversity / calibration.

>>> from longtail.rerank import Reranked, make_reranker                       # doctest: +SKIP
>>> model = Reranked(als, make_reranker("dpp", diversity=0.3), item_embeddings=vectors)
>>> items, scores = model.recommend(users, 20, history=ds.train_valid.csr)
"""

from longtail.rerank.base import Candidates, Reranker, group_profile, item_groups, prepare_candidates
from longtail.rerank.calibrated import Calibrated
from longtail.rerank.dpp import DPP
from longtail.rerank.mmr import MMR
from longtail.rerank.registry import RERANKERS, make_reranker, reranker_class
from longtail.rerank.wrapper import DEFAULT_CANDIDATES, Reranked
from longtail.rerank.xquad import XQuAD

__all__ = [
    "DEFAULT_CANDIDATES", "DPP", "MMR", "RERANKERS", "Calibrated", "Candidates", "Reranked", "Reranker",
    "XQuAD", "group_profile", "item_groups", "make_reranker", "prepare_candidates", "reranker_class",
]
