"""Pure ASGI middleware (``BaseHTTPMiddleware`` costs ~1 ms a request): admission by API key,
request-body size limit and per-route request metrics.

The size limit is ours rather than FastAPI's ``max_body_size``, whose 413 is plain text on some
paths and JSON on others; ours always answers ``{"detail": ...}``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from anyio import CapacityLimiter
from anyio.to_thread import run_sync
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longtail.serve.keys import KeyChecker, Verdict
from longtail.serve.metrics import Metrics
from longtail.serve.store import StoreUnavailable

OPEN_PATHS = frozenset({"/health"})  # liveness probes carry no key; it says nothing about users
_KEEP_UNREAD = 64 << 10  # a refused request's body up to this size is discarded, the connection kept


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; FastAPI re-raises an
    ``HTTPException`` met while reading a body, so the app's handler answers 413 in JSON."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyTimeout(HTTPException):
    """Raised from ``receive`` when a body has not arrived whole in time (a trickling client)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"request body not received within {seconds:g} s")


class BodyLimit:
    """413 for a body over ``max_bytes``: at once from ``Content-Length``, else as soon as a
    streamed (chunked) body passes the limit, before the endpoint parses anything. 408 for a body
    not received whole within ``timeout_s`` of the first read: the server's read timeout closes a
    connection that stalls, this one closes one that trickles a byte at a time."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 20.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
                if declared < 0 or declared > self.max_bytes:
                    status, detail = (413, BodyTooLarge(self.max_bytes).detail) if declared > 0 else (
                        400, "malformed Content-Length header")
                    await _reply(send, status, detail)
                    return
        received = 0
        complete = False
        deadline: float | None = None

        async def limited() -> Message:
            nonlocal received, complete, deadline
            if complete:  # after the body: only a disconnect can come, wait for it as long as it takes
                return await receive()
            now = time.monotonic()
            deadline = now + self.timeout_s if deadline is None else deadline
            try:
                message = await asyncio.wait_for(receive(), max(deadline - now, 0.0))
            except TimeoutError:
                raise BodyTimeout(self.timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        started = False

        async def watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watching)
        except (BodyTooLarge, BodyTimeout) as exc:  # read outside FastAPI's body parsing: answer here
            if started:
                raise
            await _reply(send, exc.status_code, str(exc.detail))


async def _reply(send: Send, status: int, detail: str, extra: tuple[tuple[bytes, bytes], ...] = (),
                 close: bool = True) -> None:
    """A JSON error ``{"detail": ...}``; ``close``: the connection too (its body was not read)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + ([(b"connection", b"close")] if close else [])})
    await send({"type": "http.response.body", "body": body})


class Admission:
    """Checks ``X-API-Key`` before anything else of the request is read or run: a refused request
    costs no body parsing and no worker thread. The verdict goes to ``scope["state"]["key"]``
    (``request.state.key``), where the routes' dependencies compare scopes (``deps``).

    Keys the checker remembers are answered here, on the event loop; others are read from the store
    in a thread of a pool of their own (``lookups`` at a time), so a server whose worker threads are
    all busy still admits and refuses. ``open_paths`` need no key."""

    def __init__(self, app: ASGIApp, checker: KeyChecker, open_paths: frozenset[str] = OPEN_PATHS,
                 lookups: int = 2) -> None:
        self.app = app
        self.checker = checker
        self.open_paths = open_paths
        self.limiter = CapacityLimiter(lookups)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        presented = headers.get(b"x-api-key", b"").decode("latin-1") or None
        verdict: Verdict | None = self.checker.cached(presented)
        try:
            if verdict is None:
                verdict = await run_sync(self.checker.check, presented, limiter=self.limiter)
        except StoreUnavailable as exc:
            await _reply(send, 503, f"cannot check the API key now: {exc}",
                         ((b"retry-after", str(int(exc.retry_after)).encode()),))
            return
        if not verdict.ok:
            # the server discards an unread body to keep the connection; a large or streamed one
            # is not worth reading for nothing: close that connection instead
            length = headers.get(b"content-length", b"0")
            large = not length.isdigit() or int(length) > _KEEP_UNREAD or b"transfer-encoding" in headers
            await _reply(send, 401, verdict.reason, ((b"www-authenticate", b"ApiKey"),), close=large)
            return
        scope.setdefault("state", {})["key"] = verdict
        await self.app(scope, receive, send)


class RequestMetrics:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope.get("method", "OTHER"), template, status, time.perf_counter() - started)
