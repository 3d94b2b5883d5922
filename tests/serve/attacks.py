"""Hostile-client primitives against a real server on 127.0.0.1 (raw sockets: an HTTP client
library would refuse to send most of these). Shared by ``test_attacks.py`` and
``benchmarks/server_stacks.py``; every one is bounded in bytes, connections and seconds."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

HOST = "127.0.0.1"


@dataclass
class Refusal:
    """How a server got rid of one hostile request: seconds from its first byte to the server's
    answer or close, bytes we managed to send, and the status line if one came back."""

    seconds: float
    sent: int
    status: int | None


def _status_of(data: bytes) -> int | None:
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and data.startswith(b"HTTP/") and parts[1].isdigit() else None


def _read_answer(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except OSError:
        return b""


def send_then_read(port: int, head: bytes, filler: bytes = b"", size: int = 0, tail: bytes = b"",
                   *, timeout: float = 30.0, chunk: int = 1 << 20) -> Refusal:
    """Send ``head``, then ``size`` bytes of ``filler`` in chunks, then ``tail``; stop as soon as the
    server answers or closes. The answer's status (or None if it only closed) and the time taken."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    started, sent = time.perf_counter(), 0
    try:
        sock.sendall(head)
        block = (filler * (chunk // max(len(filler), 1) + 1))[:chunk] if filler else b""
        while sent < size:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:  # the server answered (or closed) before the end of our request
                break
            sock.sendall(block[: size - sent])
            sent += min(len(block), size - sent)
        else:
            sock.sendall(tail)
        data = _read_answer(sock, timeout)
    except OSError:  # reset or broken pipe: the server closed on us mid-send
        data = b""
    finally:
        elapsed = time.perf_counter() - started
        sock.close()
    return Refusal(elapsed, sent, _status_of(data))


def header_flood(port: int, size: int) -> Refusal:
    """One request whose single header is ``size`` bytes long, no API key."""
    return send_then_read(port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"a", size, b"\r\n\r\n")


def request_line_flood(port: int, size: int) -> Refusal:
    """One request whose URL is ``size`` bytes long."""
    return send_then_read(port, b"GET /items/", b"a", size, b" HTTP/1.1\r\nHost: x\r\n\r\n")


STALLS = {
    "silent": b"",  # connects and never sends a byte
    "mid-request-line": b"GET /heal",
    "mid-headers": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a",
    "mid-body": (b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"user_id\": "),
}


@dataclass
class Stalled:
    """Per stall kind: connections opened, and seconds until the server closed each (None: open
    when we gave up)."""

    closed_after: dict[str, list[float | None]] = field(default_factory=dict)

    def open_after(self) -> int:
        return sum(t is None for times in self.closed_after.values() for t in times)

    def slowest(self) -> float:
        return max((t for times in self.closed_after.values() for t in times if t is not None), default=0.0)


def stalled_connections(port: int, n: int, give_up_s: float) -> Stalled:
    """Open ``n`` connections spread over the ``STALLS`` kinds, each stopping where its kind says,
    and wait up to ``give_up_s`` for the server to close them."""
    kinds = list(STALLS)
    socks: list[tuple[str, socket.socket]] = []
    try:
        for i in range(n):
            kind = kinds[i % len(kinds)]
            sock = socket.create_connection((HOST, port), timeout=5)
            if STALLS[kind]:
                sock.sendall(STALLS[kind])
            socks.append((kind, sock))
        opened = time.perf_counter()
        closed: dict[socket.socket, float] = {}
        while len(closed) < len(socks) and time.perf_counter() - opened < give_up_s:
            waiting = [s for _, s in socks if s not in closed]
            readable, _, _ = select.select(waiting, [], [], 0.2)
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data or _status_of(data) is not None:  # closed, or answered (then closed)
                    closed[sock] = time.perf_counter() - opened
        result = Stalled()
        for kind, sock in socks:
            result.closed_after.setdefault(kind, []).append(closed.get(sock))
        return result
    finally:
        for _, sock in socks:
            sock.close()


class HealthProbe:
    """A well-behaved client calling ``GET /health`` every ``every_s`` on one keep-alive connection
    while something else happens; its latencies say whether the attack hurt others."""

    def __init__(self, port: int, every_s: float = 0.02) -> None:
        self.port, self.every_s = port, every_s
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=f"http://{HOST}:{self.port}", timeout=30) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    status = client.get("/health").status_code
                    if status != 200:
                        self.failures.append(f"status {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.latencies.append(time.perf_counter() - started)
                self._stop.wait(self.every_s)

    @contextmanager
    def running(self) -> Iterator[HealthProbe]:
        self._thread.start()
        time.sleep(0.2)  # a few calls before the attack starts
        try:
            yield self
        finally:
            time.sleep(0.2)
            self._stop.set()
            self._thread.join(timeout=30)

    def worst_ms(self) -> float:
        return 1000 * max(self.latencies, default=float("inf"))
