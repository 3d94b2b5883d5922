"""``GET /health`` (without a key: liveness probes carry none, and it says nothing about users),
``GET /metrics`` (any valid key: a scraper needs no more than ``read``) and ``POST /admin/reload``
(``admin``)."""

from __future__ import annotations

from functools import partial

from anyio.to_thread import run_sync
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from longtail.serve.deps import AdminKey, ReadKey, ServiceDep
from longtail.serve.routers.errors import AUTH_ERRORS
from longtail.serve.schemas import ErrorBody, Health, Reloaded
from longtail.serve.faults import RELOAD_RUNNING, ReloadRunning

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health)
async def get_health(service: ServiceDep) -> Health:
    """Liveness and what is being served (on the event loop: a probe must not queue for a worker
    thread behind the computations)."""
    state = service.state
    return Health(status="ok", artifact=state.bundle.version, model=state.model.name,
                  items=len(state.catalogue), users=len(state.histories), events=service.events_stored)


@router.get("/metrics", response_class=PlainTextResponse, dependencies=[ReadKey],
            responses={**AUTH_ERRORS,
                       200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}})
def get_metrics(service: ServiceDep) -> PlainTextResponse:
    """Prometheus text: request counts and latency histograms per route, catalogue size, users,
    events stored, and the store reads spent on checking API keys."""
    keys = service.keys
    reads = {"longtail_key_store_reads_total": ("Store reads made to check API keys (remembered keys cost none).",
                                                float(keys.store_reads)),
             "longtail_key_store_reads_refused_total": ("Those of them that ended in a refusal (bad keys).",
                                                        float(keys.refused_reads))}
    return PlainTextResponse(service.metrics.render({**service.gauges(), **reads}),
                             media_type="text/plain; version=0.0.4; charset=utf-8")


@router.post("/admin/reload", response_model=Reloaded, dependencies=[AdminKey],
             responses={**AUTH_ERRORS,
                        409: {"model": ErrorBody, "description": "a reload is already running (answered at once)"},
                        503: {"model": ErrorBody,
                              "description": "the new version is unreadable; the old one is still served"}})
async def post_reload(service: ServiceDep) -> Reloaded:
    """Load the artifact's current version beside the serving state, replay the store over it,
    then swap: requests in flight finish on the old state, none is refused. One at a time: a call
    while another runs is refused (409) rather than queued."""
    if service.reloading():  # refused on the event loop: a refusal takes no worker thread
        raise ReloadRunning(RELOAD_RUNNING)
    previous, current, seconds = await run_sync(partial(service.reload, force=True, wait=False))
    return Reloaded(artifact=current, previous=previous, seconds=round(seconds, 3))
