"""The one ranking path shared by evaluation and serving: model scores -> text fallback for items
the model cannot score -> exclusion -> top-k -> optional re-ranking -> explanations."""

from longtail.pipeline.explain import describe
from longtail.pipeline.fallback import FALLBACK_GRID, RowCache, TextFallback
from longtail.pipeline.ranking import DEFAULT_CANDIDATES, Ranked, RankingPipeline

__all__ = ["DEFAULT_CANDIDATES", "FALLBACK_GRID", "Ranked", "RankingPipeline", "RowCache", "TextFallback", "describe"]
