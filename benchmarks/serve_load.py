"""Service load benchmark: ``POST /recommend`` latency and throughput over a 100,000-item catalogue,
beside the in-process time of the same recommendation call (so the HTTP overhead shows as a ratio).

    OPENBLAS_NUM_THREADS=1 /tmp/tv/bin/python benchmarks/serve_load.py [--items 100000] [--users 20000]
        [--model als] [--seconds 10] [--levels 1,8,32] [--json out.json] [--before earlier.json]

Catalogue: ml-latest-small's 9,742 real titles, repeated with an edition suffix ("Heat (1995) [ed. 7]")
up to ``--items``. Item vectors are *synthetic* unit vectors (a Gaussian mixture of 1,000 Zipf-sized
clusters, fixed seed), not MiniLM's: encoding 100k texts takes ~5 min on 2 cores, and the serving
cost depends on the vectors' shape, not on their origin. Interactions: ``--users`` users with 5..60
positives each, items drawn Zipf-skewed from 90% of the catalogue; the other 10% are cold (no
positive), so every request also runs the semantic blend over them.
Model: ``--model`` (ALS, 64 factors, by default) fitted on them, written as a service artifact by
``longtail.serve.bundle.save_bundle`` and served by ``longtail serve`` (one process, Hypercorn on uvloop) on
127.0.0.1 with a fresh SQLite store.
Before each level, with the server idle, it measures the in-process time (``--in-process-calls``
sequential calls) and the CPU the run actually gets (``cores available``: on a machine shared with
other jobs it is below the core count and drifts, and latencies scale up accordingly), so each ratio
compares figures taken at the same moment.
Load: a minimal asyncio HTTP/1.1 keep-alive client (one connection per concurrent client, in this
process, to take as little of the 2 cores from the server as possible) sends ``{user_id, k: 20}``
for random known users for ``--seconds`` per level, after a warm-up. Latency is measured by the
client, request written -> response read. Client and server share the machine's cores.
In-process: the same call -- ``routers.recommend.answer`` (ranking, explanations, response
model, JSON) on a ``Service`` over the same artifact -- run sequentially, no HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from longtail.data import resolve_dataset
from longtail.data.interactions import Interactions
from longtail.models import make_model
from longtail.serve.bundle import Bundle, save_bundle
from longtail.serve.keys import create_key
from longtail.serve.store import open_store

PARAMS = {"als": {"factors": 64, "iterations": 10}, "itemknn": {"k": 50}}


def synthetic_bundle(n_items: int, n_users: int, model_name: str, seed: int = 0) -> Bundle:
    """The catalogue, interactions and fitted model described in the module docstring."""
    rng = np.random.default_rng(seed)
    folder = resolve_dataset("ml-latest-small")
    titles = pd.read_csv(next(folder.glob("items.*")))["title"].astype(str).tolist()
    item_titles = [f"{titles[i % len(titles)]} [ed. {i // len(titles)}]" for i in range(n_items)]
    centres = rng.standard_normal((1000, 384)).astype(np.float32)
    sizes = 1.0 / np.arange(1, 1001) ** 0.8
    labels = rng.choice(1000, size=n_items, p=sizes / sizes.sum())
    vectors = centres[labels] + 0.8 * rng.standard_normal((n_items, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    warm = rng.permutation(n_items)[: int(0.9 * n_items)]
    popularity = 1.0 / np.arange(1, len(warm) + 1) ** 0.9
    per_user = rng.integers(5, 61, size=n_users)
    users = np.repeat(np.arange(n_users, dtype=np.int32), per_user)
    items = warm[rng.choice(len(warm), size=len(users), p=popularity / popularity.sum())].astype(np.int32)
    times = rng.integers(1_500_000_000, 1_700_000_000, size=len(users)).astype(np.int64)
    train = Interactions(users, items, times, n_users, n_items)
    train = Interactions(*(np.asarray(a) for a in _dedup(train)), n_users, n_items)
    started = time.perf_counter()
    model = make_model(model_name, **PARAMS.get(model_name, {})).fit(train, item_embeddings=vectors)
    fit_s = time.perf_counter() - started
    manifest = {"dataset": {"name": f"synthetic-{n_items}", "fingerprint": f"seed-{seed}", "fit_on": "all"},
                "encoder": {"fingerprint": "synthetic-unit-vectors", "template": None},
                "fit_seconds": round(fit_s, 2)}
    return Bundle(manifest, model, [f"u{u}" for u in range(n_users)], [f"i{i:06d}" for i in range(n_items)],
                  item_titles, item_titles, vectors, train)


def _dedup(x: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    key = x.users.astype(np.int64) * x.n_items + x.items
    _, first = np.unique(key, return_index=True)
    return x.users[first], x.items[first], x.timestamps[first]


def cores_available(seconds: float = 1.0) -> float:
    """CPU this process group actually gets: 2 threads of GIL-free matrix products, CPU time over
    wall time. On a shared machine (other jobs running) it is below the core count, and every
    latency below is inflated by about cores / this."""
    import threading

    matrix = np.random.default_rng(0).random((600, 600), dtype=np.float32)

    def spin(until: float) -> None:
        while time.perf_counter() < until:
            matrix @ matrix

    before, started = os.times(), time.perf_counter()
    threads = [threading.Thread(target=spin, args=(started + seconds,)) for _ in range(os.cpu_count() or 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = os.times()
    return ((after.user - before.user) + (after.system - before.system)) / (time.perf_counter() - started)


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


class InProcess:
    """The same call without HTTP: a ``Service`` over the same artifact in this process."""

    def __init__(self, artifact: Path, store_url: str, users: list[str]) -> None:
        from longtail.serve.service import Service, ServiceConfig

        self.service = Service(ServiceConfig(artifact, store_url))
        self.users = users
        self.calls = 0
        self.measure(200)  # warm caches

    def measure(self, calls: int) -> list[float]:
        """Seconds per call of ``routers.recommend.answer`` + JSON, sequentially."""
        from longtail.serve.routers.recommend import answer
        from longtail.serve.schemas import RecommendRequest

        times = []
        for _ in range(calls):
            body = RecommendRequest(user_id=self.users[(self.calls * 7919) % len(self.users)], k=20)
            self.calls += 1
            started = time.perf_counter()
            answer(body, self.service).model_dump_json()
            times.append(time.perf_counter() - started)
        return times


async def _client(port: int, key: str, users: list[str], seed: int, until: float,
                  out: list[float], errors: list[int]) -> None:
    """One keep-alive connection, opened again when the server closes it (``Connection: close``
    after its per-connection request limit)."""
    rng = np.random.default_rng(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
    try:
        while time.perf_counter() < until:
            body = json.dumps({"user_id": users[int(rng.integers(len(users)))], "k": 20}).encode()
            request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length, closing = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                lower = line.lower()
                if lower.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
                closing = closing or lower.startswith(b"connection:") and b"close" in lower
            await reader.readexactly(length)
            out.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
            if closing:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def load(port: int, key: str, users: list[str], clients: int, seconds: float) -> tuple[list[float], int, float]:
    out: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_client(port, key, users, n, until, out, errors) for n in range(clients)))
    return out, len(errors), time.perf_counter() - started


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--model", default="als")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--in-process-calls", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--before", type=Path, default=None,
                        help="a JSON written by an earlier run: its p50 / p99 printed beside this run's")
    args = parser.parse_args()
    console = Console(width=120)
    folder = Path(tempfile.mkdtemp(prefix="longtail-serve-load-"))
    started = time.perf_counter()
    bundle = synthetic_bundle(args.items, args.users, args.model)
    artifact = save_bundle(bundle, folder / "model")
    console.print(f"artifact: {args.items:,} items, {args.users:,} users, {len(bundle.train):,} positives, "
                  f"{args.model} fitted in {bundle.manifest['fit_seconds']} s; built in "
                  f"{time.perf_counter() - started:.0f} s")
    store_url = f"sqlite:///{folder / 'service.db'}"
    store = open_store(store_url)
    key = create_key(store, "read", "benchmark")
    store.close()
    users = bundle.user_ids
    del bundle
    # its own store: a store has one serving process (the server below holds this one's lock)
    local = InProcess(artifact, f"sqlite:///{folder / 'in-process.db'}", users)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "longtail.cli", "serve", "--artifact", str(artifact),
                               "--store", store_url, "--port", str(args.port), "--log-level", "warning"], env=env)
    rows = []
    try:
        wait_ready(args.port, server)
        asyncio.run(load(args.port, key, users, 4, 3.0))  # warm-up
        for clients in [int(c) for c in args.levels.split(",")]:
            # the in-process time and the CPU share are taken just before each level, while the
            # server is idle: on a shared machine both drift, and the ratio must compare like with like
            here_p50, here_p99 = percentiles(local.measure(args.in_process_calls))
            available = cores_available(0.5)
            latencies, errors, elapsed = asyncio.run(load(args.port, key, users, clients, args.seconds))
            p50, p99 = percentiles(latencies)
            rows.append({"clients": clients, "requests": len(latencies), "errors": errors,
                         "rps": len(latencies) / elapsed, "p50_ms": p50, "p99_ms": p99,
                         "in_process_p50_ms": here_p50, "in_process_p99_ms": here_p99,
                         "p50_vs_in_process": p50 / here_p50, "cores_available": round(available, 2)})
    finally:
        server.terminate()
        server.wait(timeout=30)
        local.service.close()
        shutil.rmtree(folder, ignore_errors=True)  # ~0.4 GB of artifact
    table = Table(title=f"POST /recommend (k=20), {args.items:,} items, {args.model}, {os.cpu_count()} cores")
    for column in ("clients", "requests", "errors", "req/s", "p50 ms", "p99 ms", "in-process p50 / p99 ms",
                   "p50 / in-process p50", "cores available"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r["clients"]), f"{r['requests']:,}", str(r["errors"]), f"{r['rps']:.0f}",
                      f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                      f"{r['in_process_p50_ms']:.2f} / {r['in_process_p99_ms']:.2f}",
                      f"{r['p50_vs_in_process']:.1f}x", f"{r['cores_available']:.2f}")
    console.print(table)
    console.print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.before is not None:
        before = {r["clients"]: r for r in json.loads(args.before.read_text())["levels"]}
        for r in rows:
            b = before.get(r["clients"])
            if b is not None:
                console.print(f"{r['clients']} clients: p50 {r['p50_ms']:.1f} ms / p99 {r['p99_ms']:.1f} ms now, "
                              f"{b['p50_ms']:.1f} / {b['p99_ms']:.1f} before ({args.before.name}); "
                              f"in-process p50 {r['in_process_p50_ms']:.1f} vs {b['in_process_p50_ms']:.1f} ms")
    result = {"items": args.items, "users": args.users, "model": args.model, "seconds_per_level": args.seconds,
              "cores": os.cpu_count(), "levels": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
