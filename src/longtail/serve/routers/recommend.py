"""``POST /recommend``."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from anyio.to_thread import run_sync
from fastapi import APIRouter, Response

from longtail.serve.deps import ReadGrant, ServiceDep
from longtail.serve.keys import allows
from longtail.serve.ranking import Pick, explain, recommend, rerank_of
from longtail.serve.routers.errors import AUTH_ERRORS
from longtail.serve.schemas import RecommendedItem, RecommendRequest, RecommendResponse
from longtail.serve.service import Service

router = APIRouter(tags=["recommend"])


def _public(pick: Pick) -> Pick:
    """``pick`` with an explanation that names none of the user's history items."""
    if pick.explanation is None or not pick.explanation.evidence:
        return pick
    return replace(pick, explanation=replace(pick.explanation, evidence=()))


def answer(body: RecommendRequest, service: Service, *, private: bool = True) -> RecommendResponse:
    """The response to ``body`` (what the endpoint computes, without HTTP; benchmarks call it).
    ``private=False`` (a key without the profile scope): nothing that tells whether the user exists
    or what they did: ``known_user``, ``history_size`` and ``because`` null, explanations without
    the history items they rest on."""
    state = service.state  # one whole state for this request, even if a swap happens meanwhile
    query, picks = recommend(state, body.user_id, body.k, exclude_seen=body.exclude_seen,
                             rerank=rerank_of(body.rerank, body.diversity), explain=body.explain)
    picks = picks if private else [_public(p) for p in picks]
    catalogue = state.catalogue
    return RecommendResponse(
        user_id=body.user_id,
        known_user=state.histories.index_of(body.user_id) is not None if private else None,
        history_size=len(query.items) if private else None,
        model=state.model.name,
        artifact=state.bundle.version,
        items=[RecommendedItem(item_id=catalogue.ids[p.item], title=catalogue.titles[p.item], score=p.score,
                               rank=r + 1, source=p.source, explanation=explain(state, p),
                               because=catalogue.ids[p.explanation.evidence[0].item] if p.explanation and p.explanation.evidence else None)
               for r, p in enumerate(picks)],
    )


@router.post("/recommend", response_model=RecommendResponse, responses=AUTH_ERRORS)
async def post_recommend(body: RecommendRequest, service: ServiceDep, key: ReadGrant) -> Response:
    """Top-``k`` items for a user from their live history (training positives + events posted).

    The list is the ranking pipeline's, the same one ``longtail evaluate`` measures: items the
    model cannot score (cold in training, or posted since) compete through the artifact's text
    fallback; a user without history gets the most popular items. ``rerank`` (mmr, dpp,
    calibrated, xquad) and/or ``diversity`` re-rank the list; ranks and scores are then the
    re-ranker's. Explanations are the model's own (or the fallback's).

    ``known_user``, ``history_size``, ``because`` and the history items an explanation names are
    the user's data: only a key with the ``profile`` scope gets them (else null). The list itself
    stays personal (a list of ``popular`` items hints at a user without history): a read key is
    for the application that shows a user their own recommendations."""
    # at most one computation per core: queued requests wait their turn (FIFO) instead of
    # interleaving, which stretched every request and thrashed the caches under load
    private = allows(str(key.scope), "profile")
    result = await run_sync(partial(answer, body, service, private=private), limiter=service.compute_limiter)
    # already a validated RecommendResponse: serialise it once (FastAPI would validate it again)
    return Response(result.model_dump_json(), media_type="application/json")
