"""``GET /health``, ``GET /metrics`` (both without a key: they carry no user data) and
``POST /admin/reload``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from longtail.serve.deps import ServiceDep, WriteKey
from longtail.serve.routers.errors import AUTH_ERRORS
from longtail.serve.schemas import ErrorBody, Health, Reloaded

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health)
def get_health(service: ServiceDep) -> Health:
    """Liveness and what is being served."""
    state = service.state
    return Health(status="ok", artifact=state.bundle.version, model=state.model.name,
                  items=len(state.catalogue), users=len(state.histories), events=service.events_stored)


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}})
def get_metrics(service: ServiceDep) -> PlainTextResponse:
    """Prometheus text: request counts and latency histograms per route, catalogue size, users,
    events stored."""
    return PlainTextResponse(service.metrics.render(service.gauges()),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


@router.post("/admin/reload", response_model=Reloaded, dependencies=[WriteKey],
             responses={**AUTH_ERRORS, 503: {"model": ErrorBody,
                                             "description": "the new version is unreadable; the old one is still served"}})
def post_reload(service: ServiceDep) -> Reloaded:
    """Load the artifact's current version beside the serving state, replay the store over it,
    then swap: requests in flight finish on the old state, none is refused."""
    previous, current, seconds = service.reload(force=True)
    return Reloaded(artifact=current, previous=previous, seconds=round(seconds, 3))
