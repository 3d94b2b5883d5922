"""Re-ranker names (as used by ``--rerank``) -> classes."""

from __future__ import annotations

from typing import Any

from longtail.errors import ConfigError
from longtail.rerank.base import Reranker
from longtail.rerank.calibrated import Calibrated
from longtail.rerank.dpp import DPP
from longtail.rerank.mmr import MMR
from longtail.rerank.xquad import XQuAD

RERANKERS: dict[str, type[Reranker]] = {cls.name: cls for cls in (MMR, DPP, Calibrated, XQuAD)}


def reranker_class(name: str) -> type[Reranker]:
    if name not in RERANKERS:
        raise ConfigError(f"unknown re-ranker {name!r}; available: {', '.join(RERANKERS)}")
    return RERANKERS[name]


def make_reranker(name: str, **params: Any) -> Reranker:
    """A re-ranker by name; its parameters are checked here, so a bad ``diversity`` fails early."""
    reranker = reranker_class(name)(**params)
    reranker.check_params()
    return reranker
