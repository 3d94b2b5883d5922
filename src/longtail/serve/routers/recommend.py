"""``POST /recommend``."""

from __future__ import annotations

from functools import partial

from anyio.to_thread import run_sync
from fastapi import APIRouter, Response

from longtail.serve.deps import ReadKey, ServiceDep
from longtail.serve.ranking import explain, recommend, rerank_of
from longtail.serve.routers.errors import AUTH_ERRORS
from longtail.serve.schemas import RecommendedItem, RecommendRequest, RecommendResponse
from longtail.serve.service import Service

router = APIRouter(tags=["recommend"])


def answer(body: RecommendRequest, service: Service) -> RecommendResponse:
    """The response to ``body`` (what the endpoint computes, without HTTP; benchmarks call it)."""
    state = service.state  # one whole state for this request, even if a swap happens meanwhile
    query, picks = recommend(state, body.user_id, body.k, exclude_seen=body.exclude_seen,
                             rerank=rerank_of(body.rerank, body.diversity), explain=body.explain)
    catalogue = state.catalogue
    return RecommendResponse(
        user_id=body.user_id,
        known_user=state.histories.index_of(body.user_id) is not None,
        history_size=len(query.items),
        model=state.model.name,
        artifact=state.bundle.version,
        items=[RecommendedItem(item_id=catalogue.ids[p.item], title=catalogue.titles[p.item], score=p.score,
                               rank=r + 1, source=p.source, explanation=explain(state, p),
                               because=catalogue.ids[p.explanation.evidence[0].item] if p.explanation and p.explanation.evidence else None)
               for r, p in enumerate(picks)],
    )


@router.post("/recommend", response_model=RecommendResponse, dependencies=[ReadKey], responses=AUTH_ERRORS)
async def post_recommend(body: RecommendRequest, service: ServiceDep) -> Response:
    """Top-``k`` items for a user from their live history (training positives + events posted).

    The list is the ranking pipeline's, the same one ``longtail evaluate`` measures: items the
    model cannot score (cold in training, or posted since) compete through the artifact's text
    fallback; a user without history gets the most popular items. ``rerank`` (mmr, dpp,
    calibrated, xquad) and/or ``diversity`` re-rank the list; ranks and scores are then the
    re-ranker's. Explanations are the model's own (or the fallback's)."""
    # at most one computation per core: queued requests wait their turn (FIFO) instead of
    # interleaving, which stretched every request and thrashed the caches under load
    result = await run_sync(partial(answer, body, service), limiter=service.compute_limiter)
    # already a validated RecommendResponse: serialise it once (FastAPI would validate it again)
    return Response(result.model_dump_json(), media_type="application/json")
