"""``POST /events``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from longtail.serve.deps import ServiceDep, WriteKey
from longtail.serve.routers.errors import AUTH_ERRORS, NOT_FOUND
from longtail.serve.schemas import EventBatch, EventIn, EventsStored

router = APIRouter(tags=["events"])


@router.post("/events", response_model=EventsStored, status_code=201, dependencies=[WriteKey],
             responses={**AUTH_ERRORS, **NOT_FOUND})
def post_events(body: Annotated[EventIn | EventBatch, Body()], service: ServiceDep) -> EventsStored:
    """Record one interaction, or ``{"events": [...]}``: committed to the store (fsync'd) before
    this answer, and part of the user's history for their next recommendation. A new user_id
    starts a new user. Events naming an unknown item are refused (404) as a whole batch."""
    events = body.events if isinstance(body, EventBatch) else [body]
    stored, duplicates, last = service.record_events(events)
    return EventsStored(stored=stored, duplicates=duplicates, last_seq=last)
