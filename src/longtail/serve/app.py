"""``create_app``: the FastAPI application of one service process.

One process, one live state: events and new items change that process's memory, so the service runs
as a single uvicorn worker (its threads share the state; numpy and faiss release the GIL for the
heavy parts). Run more replicas behind a balancer only with sticky users or a shared event feed.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from longtail import __version__
from longtail.errors import LongtailError
from longtail.serve.memory import settle
from longtail.serve.middleware import Admission, BodyLimit, RequestMetrics
from longtail.serve.routers import events, items, ops, recommend, users
from longtail.serve.faults import Conflict, NotFound, Unavailable
from longtail.serve.service import Service, ServiceConfig
from longtail.serve.store import StoreUnavailable, unavailable

logger = logging.getLogger("longtail.serve")
STATUS = {NotFound: 404, Conflict: 409, Unavailable: 503, StoreUnavailable: 503}
# an absolute path (``/x/y``, ``~/x``, ``C:\x``) not inside a word or a relative path: error bodies
# must not tell a client where the server keeps its files, whatever a library message says
_PATH = re.compile(r"""(?<![\w.~-])(?:~|[A-Za-z]:)?[/\\](?:[^\s'"`<>(){}\[\],;:/\\]+[/\\])+[^\s'"`<>(){}\[\],;:/\\]*""")


def without_paths(text: str) -> str:
    """``text`` with every absolute filesystem path replaced by ``<path>``."""
    return _PATH.sub("<path>", text)


def create_app(artifact_dir: str | Path, store_url: str, *, max_body_bytes: int = 1 << 20,
               body_timeout_s: float = 20.0, watch_s: float | None = None,
               refit_every: int | None = None, apply_every_ms: int = 0,
               apply_every: int | None = None) -> FastAPI:
    """Load the artifact, replay the store, and return the app (ready before the first request).

    >>> app = create_app("out/model", "sqlite:///out/service.db")   # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)                # doctest: +SKIP
    """
    config = ServiceConfig(Path(artifact_dir), store_url, max_body_bytes, watch_s, refit_every, apply_every_ms,
                           apply_every)
    service = Service(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settle()  # the loaded state out of the collector's scans: no 300 ms pauses under load
        service.start_watcher()
        service.start_follower()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="longtail",
        version=__version__,
        summary="Recommendations of long-tail and cold-start items; live catalogue and events.",
        description="Send a key from `longtail keys create` as `X-API-Key` on every request but `/health` "
                    "(this schema and `/metrics` included): `read` for recommendations and items, `profile` "
                    "for histories (and the private fields of /recommend), `write` for events and items, "
                    "`admin` for /admin/*. "
                    f"Bodies are limited to {max_body_bytes} bytes, lists to the documented maxima.",
        lifespan=lifespan,
    )
    app.state.service = service
    for router in (recommend.router, items.router, users.router, events.router, ops.router):
        app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, timeout_s=body_timeout_s)
    app.add_middleware(Admission, checker=service.keys)  # the key before the body: a refusal reads nothing
    app.add_middleware(RequestMetrics, metrics=service.metrics)  # outermost: times the 401s and 413s too
    _error_handlers(app)
    return app


class ErrorResponse(JSONResponse):
    """JSON with non-ASCII escaped: an error may quote client input, and JSON lets a client send
    lone surrogates that cannot be encoded as UTF-8 (the default response would fail with 500)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, default=str).encode("ascii")


def _error_handlers(app: FastAPI) -> None:
    """Every error body is ``{"detail": ...}`` in words; no stack trace ever leaves the process."""

    last_fault: dict[str, float] = {}  # store fault logged -> when: one line per fault per 30 s, not per request

    def respond(request: Request, exc: LongtailError, cause: BaseException | None) -> ErrorResponse:
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        retry = getattr(exc, "retry_after", None)
        if retry is not None:  # a store fault: the operator's side, with the database's own words
            while cause is not None and cause.__cause__ is not None:
                cause = cause.__cause__
            line = f"{exc} ({cause or 'no database error'})"
            if time.monotonic() - last_fault.get(line, -1e9) > 30:
                logger.warning("%s %s -> %d: %s", request.method, request.url.path, status, line)
                if len(last_fault) > 100:
                    last_fault.clear()
                last_fault[line] = time.monotonic()
        headers = {"Retry-After": str(int(retry))} if retry is not None else None
        return ErrorResponse({"detail": without_paths(str(exc))}, status_code=status, headers=headers)

    @app.exception_handler(LongtailError)
    async def library_error(request: Request, exc: LongtailError) -> ErrorResponse:
        return respond(request, exc, exc.__cause__)

    @app.exception_handler(sqlite3.Error)
    async def store_error(request: Request, exc: sqlite3.Error) -> ErrorResponse:
        """A store fault where none was expected: 503 in words, never a 500 quoting SQL."""
        return respond(request, unavailable(exc), exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> ErrorResponse:
        # where and what, not the offending input itself (it may be large or not encodable)
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        return ErrorResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> ErrorResponse:
        return ErrorResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> ErrorResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return ErrorResponse({"detail": "internal server error (logged on the server)"}, status_code=500)
