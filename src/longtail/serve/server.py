"""Run the app over HTTP with every connection bounded: request line + headers, body, and time.

uvicorn on uvloop + httptools (the fastest stack measured), with its HTTP protocol class -- the
extension point uvicorn documents (``Config(http=<class>)``) -- given the two bounds uvicorn lacks:

- the request line + headers must fit in ``header_bytes``: httptools buffers a header value whole
  before handing it over, so uncapped, one 64 MB header cost seconds of CPU while other clients
  waited; here the connection is answered 431 and closed once the head passes the cap;
- the request line + headers must arrive within ``header_timeout_s`` of the connection opening (or
  of the first byte of the next request on a kept-alive connection); uvicorn never closed a
  connection that sent nothing or stopped mid-headers (slowloris).

Bodies are bounded by the app's ``BodyLimit`` middleware (size: 413; whole body within
``body_timeout_s``: 408), idle keep-alive connections by uvicorn's own timeout, and connections +
requests in flight by uvicorn's ``limit_concurrency`` (503 beyond). Candidates measured with the
attack probes and a load run (``benchmarks/server_stacks.py``): Hypercorn closes stalled
connections too, but its read timeout also runs while a request is being handled, so a slow
``/admin/reload`` or first ``POST /items`` lost its connection; granian left silent connections
open. The figures are in ``docs/dependencies.md``.

One process, one worker: the live state (events, new items) lives in this process; its threads
share it. Several processes share one store only through PostgreSQL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from longtail.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """What one client can make the server hold; the defaults are the documented limits.

    ``header_bytes``: request line + headers (431 and close above). ``header_timeout_s``: they must
    arrive within this (close). ``keep_alive_s``: an idle kept-alive connection is closed after it.
    ``body_bytes``: larger bodies get 413. ``body_timeout_s``: a body must arrive whole within
    this many seconds of the app's first read, however slowly it trickles (408).
    ``max_connections``: open connections + requests in flight before new ones get 503.
    """

    header_bytes: int = 16_384
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    body_bytes: int = 1 << 20
    body_timeout_s: float = 20.0
    max_connections: int = 1000
    backlog: int = 512
    graceful_shutdown_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("header_bytes", "body_bytes", "max_connections", "backlog"):
            if getattr(self, name) < 1:
                raise ConfigError(f"server limit {name} must be >= 1, got {getattr(self, name)}")
        for name in ("header_timeout_s", "keep_alive_s", "body_timeout_s", "graceful_shutdown_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"server limit {name} must be > 0, got {getattr(self, name)}")


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on the head's size and a deadline for it.

    The head is "in progress" from the connection's start, and again from the first byte after a
    response; ``on_headers_complete`` ends it. Bytes are counted as they arrive and a chunk is fed
    to the parser before the cap is checked, so a head that ends inside a large chunk (a body sent
    in the same packet) is not mistaken for an oversize one; what is buffered stays under the cap
    plus one read (64 KB)."""

    limits: Limits = Limits()  # set per server by ``protocol_for``

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_too_slow)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._arm_head_timer()
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.header_bytes and not self.transport.is_closing():
            self._refuse_head()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._in_head, self._head_bytes = True, 0  # the next request's head; timer armed at its first byte
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _refuse_head(self) -> None:
        body = b'{"detail": "request line and headers larger than %d bytes"}' % self.limits.header_bytes
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        self.transport.close()


def protocol_for(limits: Limits) -> type[BoundedHttpTools]:
    """A protocol class bound to ``limits`` (a class per server: uvicorn instantiates it per
    connection with its own arguments)."""
    return type("BoundedHttpTools", (BoundedHttpTools,), {"limits": limits})


def uvicorn_config(app: Any, host: str, port: int, limits: Limits, log_level: str = "info") -> Any:
    """uvicorn's ``Config`` for ``limits``: one worker, uvloop, the bounded httptools protocol."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, loop="uvloop", http=protocol_for(limits), workers=1,
                          log_level=log_level, timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]
                          limit_concurrency=limits.max_connections, backlog=limits.backlog,
                          timeout_graceful_shutdown=limits.graceful_shutdown_s,  # type: ignore[arg-type]
                          server_header=False)


def run(app: Any, host: str, port: int, limits: Limits, log_level: str = "info") -> None:
    """Serve ``app`` until SIGTERM / SIGINT (uvicorn's handlers), then finish requests in flight."""
    import uvicorn

    uvicorn.Server(uvicorn_config(app, host, port, limits, log_level)).run()
