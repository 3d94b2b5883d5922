"""Which HTTP server should run the service? Each candidate serves the same app (same artifact,
same store) on 127.0.0.1 and meets the same hostile clients, then the same load:

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/server_stacks.py [--dataset ml-latest-small]
        [--stacks longtail,uvicorn-httptools,uvicorn-h11,hypercorn,granian] [--give-up 30] [--json out.json]

Candidates (pip install -e ".[stacks]" for hypercorn and granian):
- ``longtail``: what ``longtail serve`` runs (``longtail.serve.server``: uvicorn + httptools with
  the bounded protocol), its default limits;
- ``uvicorn-httptools`` / ``uvicorn-h11``: plain uvicorn with ``timeout_keep_alive=5`` and
  ``h11_max_incomplete_event_size=16384`` (the options uvicorn has);
- ``hypercorn``: ``read_timeout=10``, ``h11_max_incomplete_size=16384``, ``keep_alive_timeout=5``;
- ``granian``: the Rust server, ``header_read_timeout=10 s``, ``max_buffer_size=16384``.
All run the same app, whose body middleware (413 / 408) is part of every candidate.
Per candidate: one request with a 64 MB header (seconds until refused, and the worst ``/health``
latency of another client meanwhile); 200 stalled connections (nothing sent / mid request line /
mid headers / mid body: how many the server closed within ``--give-up`` s, and when); 8 clients on
``POST /recommend`` for ``--seconds`` (p50 / p99 / req/s, the raw asyncio client of
``serve_load.py``). Attack primitives: ``tests/serve/attacks.py`` (the attack tests use them too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "serve")]

from attacks import HealthProbe, header_flood, stalled_connections  # noqa: E402
from serve_load import load, percentiles, wait_ready  # noqa: E402

STACKS = ("longtail", "uvicorn-httptools", "uvicorn-h11", "hypercorn", "granian")


def run_stack(stack: str, artifact: str, store: str, port: int) -> None:
    """Serve with ``stack`` in this process (the child side of ``start``)."""
    from longtail.serve import create_app

    if stack == "longtail":
        from longtail.serve.server import Limits, run

        limits = Limits()
        run(create_app(artifact, store, max_body_bytes=limits.body_bytes, body_timeout_s=limits.body_timeout_s),
            "127.0.0.1", port, limits, "warning")
    elif stack == "hypercorn":
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.read_timeout, config.keep_alive_timeout, config.h11_max_incomplete_size = 10, 5, 16_384
        asyncio.run(serve(create_app(artifact, store), config))
    elif stack.startswith("uvicorn-"):
        import uvicorn

        uvicorn.run(create_app(artifact, store), host="127.0.0.1", port=port, http=stack.split("-", 1)[1],
                    log_level="warning", timeout_keep_alive=5, h11_max_incomplete_event_size=16_384)
    elif stack == "granian":
        from granian.constants import Interfaces
        from granian.http import HTTP1Settings
        from granian.server.embed import Server

        server = Server(create_app(artifact, store), address="127.0.0.1", port=port, interface=Interfaces.ASGI,
                        http1_settings=HTTP1Settings(header_read_timeout=10_000, max_buffer_size=16_384),
                        log_level="warning")
        asyncio.run(server.serve())
    else:
        raise SystemExit(f"unknown stack {stack!r}; one of {', '.join(STACKS)}")


def start(stack: str, artifact: Path, store: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, __file__, "--run-stack", stack, "--artifact", str(artifact),
                                "--store", store, "--port", str(port)], env=env)
    wait_ready(port, process)
    return process


def measure(stack: str, artifact: Path, store: str, key: str, users: list[str], args: argparse.Namespace) -> dict:
    process = start(stack, artifact, store, args.port)
    try:
        with HealthProbe(args.port).running() as probe:
            flood = header_flood(args.port, 64 << 20)
        stalled = stalled_connections(args.port, 200, give_up_s=args.give_up)
        asyncio.run(load(args.port, key, users, 4, 2.0))  # warm-up
        latencies, errors, elapsed = asyncio.run(load(args.port, key, users, 8, args.seconds))
        p50, p99 = percentiles(latencies)
        return {"stack": stack, "flood_s": flood.seconds, "flood_sent_mb": flood.sent / (1 << 20),
                "health_worst_ms": probe.worst_ms(), "stalled_closed": 200 - stalled.open_after(),
                "stalled_slowest_s": stalled.slowest(),
                "stalled_open_by_kind": {k: sum(t is None for t in v) for k, v in stalled.closed_after.items()},
                "p50_ms": p50, "p99_ms": p99, "rps": len(latencies) / elapsed, "errors": errors}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--model", default="itemknn")
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--give-up", type=float, default=35.0, help="seconds to wait for stalled connections")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per stack")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--run-stack", help=argparse.SUPPRESS)
    parser.add_argument("--artifact", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_stack:
        run_stack(args.run_stack, args.artifact, args.store, args.port)
        return
    from longtail.serve.bundle import save_bundle, train_bundle
    from longtail.serve.keys import create_key
    from longtail.serve.store import open_store

    console = Console(width=140)
    folder = Path(tempfile.mkdtemp(prefix="longtail-stacks-"))
    bundle = train_bundle(args.dataset, args.model)
    artifact = save_bundle(bundle, folder / "model")
    rows = []
    for n, stack in enumerate(args.stacks.split(",")):
        store_url = f"sqlite:///{folder / f'service-{n}.db'}"
        store = open_store(store_url)
        key = create_key(store, "read", "benchmark")
        store.close()
        console.print(f"[bold]{stack}[/]: attacks, then 8 clients for {args.seconds:g} s")
        rows.append(measure(stack, artifact, store_url, key, bundle.user_ids, args))
    table = Table(title=f"server stacks: {args.model} on {args.dataset}, {os.cpu_count()} cores")
    for column in ("stack", "64 MB header refused after", "/health worst meanwhile",
                   f"stalled closed (of 200, within {args.give_up:g} s)", "slowest close", "still open by kind",
                   "8 clients p50 / p99 ms", "req/s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["stack"], f"{r['flood_s']:.2f} s ({r['flood_sent_mb']:.0f} MB sent)",
                      f"{r['health_worst_ms']:.0f} ms", str(r["stalled_closed"]), f"{r['stalled_slowest_s']:.1f} s",
                      ", ".join(f"{k} {v}" for k, v in r["stalled_open_by_kind"].items() if v) or "-",
                      f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}", f"{r['rps']:.0f}")
    console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"dataset": args.dataset, "model": args.model, "give_up_s": args.give_up,
                                         "seconds": args.seconds, "cores": os.cpu_count(), "stacks": rows}, indent=2))


if __name__ == "__main__":
    main()
