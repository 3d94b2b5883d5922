"""``GET /users/{user_id}/profile``."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import APIRouter, Path, Query

from longtail.serve.deps import ProfileKey, ServiceDep
from longtail.serve.routers.errors import AUTH_ERRORS, NOT_FOUND
from longtail.serve.schemas import MAX_PAGE, HistoryEntry, Portrait, ProfileResponse
from longtail.profile import UserProfile
from longtail.serve.schemas import InterestOut
from longtail.serve.faults import NotFound
from longtail.serve.service import Service

router = APIRouter(tags=["users"])


@router.get("/users/{user_id}/profile", response_model=ProfileResponse, dependencies=[ProfileKey],
            responses={**AUTH_ERRORS, **NOT_FOUND})
async def get_profile(
    user_id: Annotated[str, Path(min_length=1, max_length=128,
                                 description="user id, percent-encoded as one path segment")],
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, 1..{MAX_PAGE}")] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    portrait: Annotated[bool, Query(description="add the portrait (keywords, genres, mix, activity, interests)")] = False,
) -> ProfileResponse:
    """The user's live history (training positives and events), most recent first, one page, and
    their portrait (``longtail.profile``): interest keywords, genres, head / tail / cold mix,
    activity and interests, from the whole live history. The first profile a server builds loads
    the encoder and the catalogue's keyword vocabulary (seconds); later ones take milliseconds.

    POST /events refuses user ids that cannot be one path segment ('/', '.', '..'), so every user
    it creates can be read here. Needs a key with the ``profile`` scope: it is the user's history."""
    # a portrait clusters the whole history: it takes its turn with the other computations
    limiter = service.compute_limiter if portrait else None
    return await run_sync(partial(profile_of, service, user_id, limit, offset, portrait), limiter=limiter)


def profile_of(service: Service, user_id: str, limit: int, offset: int, portrait: bool) -> ProfileResponse:
    """The answer of ``GET /users/{user_id}/profile``, without HTTP."""
    state = service.state
    u = state.histories.index_of(user_id)
    if u is None:
        raise NotFound(f"unknown user_id {user_id!r} (no training history and no events)")
    history = state.histories.history(u)
    order = list(range(len(history) - 1, -1, -1))[offset:offset + limit]
    catalogue = state.catalogue
    found, left_out = None, 0
    if portrait:
        found, left_out = state.portraits.portrait(state.bundle, lambda: service.encoder_for(state),
                                                   history.items, history.ts)
    return ProfileResponse(
        user_id=user_id, history_size=len(history), train_items=int((~history.from_event).sum()),
        event_items=int(history.from_event.sum()), offset=offset, limit=limit,
        history=[HistoryEntry(item_id=catalogue.ids[history.items[j]], title=catalogue.titles[history.items[j]],
                              timestamp=int(history.ts[j]), source="event" if history.from_event[j] else "train")
                 for j in order],
        portrait=None if found is None else portrait_of(found, left_out),
    )


def portrait_of(found: UserProfile, left_out: int) -> Portrait:
    """The API's view of a ``UserProfile``."""
    data = found.to_dict()
    return Portrait(
        n_items=found.n_items, activity=found.level, activity_percentile=found.activity.percentile,
        keywords=data["keywords"], keyword_method=found.keyword_method, genres=data["genres"], mix=found.mix,
        interests=[{k: v for k, v in interest.items() if k in InterestOut.model_fields} for interest in data["interests"]],
        left_out=left_out,
    )
