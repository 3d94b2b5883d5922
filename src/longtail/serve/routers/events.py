"""``POST /events``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from longtail.serve.deps import ServiceDep, WriteGrant
from longtail.serve.routers.errors import AUTH_ERRORS, EVENT_CONFLICT, NOT_FOUND, STORE_UNAVAILABLE
from longtail.serve.schemas import EventBatch, EventIn, EventsStored

router = APIRouter(tags=["events"])


@router.post("/events", response_model=EventsStored, status_code=201,
             responses={**AUTH_ERRORS, **NOT_FOUND, **EVENT_CONFLICT, **STORE_UNAVAILABLE})
def post_events(body: Annotated[EventIn | EventBatch, Body()], service: ServiceDep, key: WriteGrant) -> EventsStored:
    """Record one interaction, or ``{"events": [...]}``: committed to the store (fsync'd) before
    this answer, and part of the user's history for their next recommendation. A new user_id
    starts a new user. Events naming an unknown item are refused (404) as a whole batch.

    ``event_id`` makes a retry safe: an event_id already stored with the same user_id, item_id
    (and timestamp, when given) counts as a duplicate; with another payload the batch is refused
    (409). A store fault answers 503 with ``Retry-After`` and stores nothing of the batch.

    Stored events are answered 201 even when the live model cannot learn some of them now (e.g. a
    model at its size limit): ``model_updated`` is false, ``not_applied`` counts them and
    ``reason`` says why; recommendations stay as they were for those events, which are kept and
    learned at the next refit. Do not send them again: they are stored.

    A server run with ``--apply-every-ms T`` answers as soon as the events are stored (the store's
    commit still precedes the 201) and applies them in the background: ``applied`` is false,
    ``model_updated`` null and ``apply_within_ms`` is T; the user's recommendations reflect them
    within T ms plus the duration of up to two background applies (``longtail_apply_seconds`` in
    /metrics). Events the model then refuses are counted in ``longtail_events_not_applied``."""
    events = body.events if isinstance(body, EventBatch) else [body]
    return service.record_events(events, key_id=key.key_id)
