"""Re-ranking a model's candidate lists for diversity and tail exposure, one knob for all methods.

``diversity`` λ in [0, 1]: 0 = the model's own ranking, 1 = only diversity / calibration.

The ranking pipeline applies one to a model's top candidates (``longtail.pipeline``):

>>> from longtail.pipeline import RankingPipeline                            # doctest: +SKIP
>>> from longtail.rerank import make_reranker                                # doctest: +SKIP
>>> pipeline = RankingPipeline(als, reranker=make_reranker("dpp", diversity=0.3), rerank_vectors=vectors)
>>> ranked = pipeline.recommend(HistoryBatch.from_interactions(ds.train_valid, users), 20)
"""

from longtail.rerank.base import Candidates, Reranker, group_profile, item_groups, prepare_candidates
from longtail.rerank.calibrated import Calibrated
from longtail.rerank.dpp import DPP
from longtail.rerank.mmr import MMR
from longtail.rerank.registry import RERANKERS, make_reranker, reranker_class
from longtail.rerank.xquad import XQuAD

__all__ = [
    "DPP", "MMR", "RERANKERS", "Calibrated", "Candidates", "Reranker",
    "XQuAD", "group_profile", "item_groups", "make_reranker", "prepare_candidates", "reranker_class",
]
