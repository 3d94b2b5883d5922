"""Events that keep up (issue 30): ``POST /events`` into a flagship service, applied in the request
(``--apply-every-ms 0``, the baseline) vs deferred to the background applier (``--apply-every-ms T``),
measured in one run, at ml-latest-small's size and at twice its warm items.

    OPENBLAS_NUM_THREADS=1 python benchmarks/event_ingest.py [--artifact out/bench-flagship]
        [--apply-every-ms 100] [--seconds 10] [--clients 8] [--scales 1,2]

Artifact: the flagship ``longtail`` (EASE + text parts) on ml-latest-small, trained once with
``longtail train --dataset ml-latest-small --model longtail --params-from
benchmarks/results/ml-latest-small/metrics.json --out out/bench-flagship`` (done here if missing).
Twice the warm items (synthetic): every user and item duplicated under new ids (``<id>~x2``), the
copies' positives mirroring the originals' (users x items block-diagonal: 2x users, 2x warm items,
same vectors and texts), the same flagship spec fitted on it (``serve.refit``), saved once to
``<artifact>-x2`` and reused.

Per scale and mode, on a real ``longtail serve`` subprocess with a fresh SQLite store:
- events/s one by one: one sequential client for ``--seconds``; in batches of 100: the same;
- ``/recommend`` p50/p99 (``--clients`` concurrent clients, k 20, explain false, random known users)
  without writes, then with a writer posting batches of 100 at 1,000 events/s beside them;
- deferred only: once the writes stop, the time until nothing is pending, the applies and their
  longest duration and ack-to-publish lag (the server's /metrics).
Events: random known users, items drawn from the training positives (popularity-weighted, warm).
Client (asyncio + httpx) and server share the machine's cores; ``uptime`` is recorded.
Results: ``benchmarks/results/ml-latest-small/event_ingest.json``.
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

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))
from serve_helpers import Server, make_keys  # noqa: E402

BATCH = 100


def ensure_artifact(path: Path) -> None:
    if path.exists():
        return
    subprocess.run([sys.executable, "-m", "longtail.cli", "train", "--dataset", "ml-latest-small", "--model",
                    "longtail", "--params-from", str(ROOT / "benchmarks/results/ml-latest-small/metrics.json"),
                    "--out", str(path)], check=True)


def doubled(src: Path, dst: Path) -> None:
    """``src`` with every user and item duplicated (see the module docstring), fitted, saved once."""
    if dst.exists():
        return
    from longtail.data.interactions import Interactions
    from longtail.serve.bundle import load_bundle, save_bundle
    from longtail.serve.refit import Snapshot, refit

    b = load_bundle(src)
    n_users, n_items, t = len(b.user_ids), len(b.item_ids), b.train
    weights = None if t.weights is None else np.concatenate([t.weights, t.weights])
    positives = Interactions(np.concatenate([t.users, t.users + n_users]).astype(np.int32),
                             np.concatenate([t.items, t.items + n_items]).astype(np.int32),
                             np.concatenate([t.timestamps, t.timestamps]), 2 * n_users, 2 * n_items, weights=weights)
    data = Snapshot(b, b.model.spec(), b.user_ids + [f"{u}~x2" for u in b.user_ids],
                    b.item_ids + [f"{i}~x2" for i in b.item_ids], b.titles + [f"{x} (copy)" for x in b.titles],
                    b.texts * 2, np.concatenate([b.embeddings, b.embeddings]), positives, 0, 0)
    bundle = refit(data)
    bundle.manifest["dataset"] = {**bundle.manifest["dataset"], "name": "ml-latest-small-x2"}
    save_bundle(bundle, dst)


def catalogue(artifact: Path) -> tuple[list[str], list[str], int]:
    """(known users, items drawn from the training positives, warm items of the CF part)."""
    from longtail.serve.bundle import load_bundle

    b = load_bundle(artifact)
    model = b.model
    cf = getattr(model, "cf_", model)
    warm = len(getattr(cf, "warm_items_", []))
    items = [b.item_ids[i] for i in b.train.items]
    return b.user_ids, items, warm


async def timed(http: httpx.AsyncClient, method: str, url: str, body: dict, headers: dict) -> float:
    began = time.perf_counter()
    response = await http.request(method, url, json=body, headers=headers)
    if response.status_code >= 300:
        raise RuntimeError(f"{url} -> {response.status_code}: {response.text[:300]}")
    return time.perf_counter() - began


def events(rng: np.random.Generator, users: list[str], items: list[str], n: int, start: int) -> list[dict]:
    return [{"user_id": users[int(rng.integers(len(users)))], "item_id": items[int(rng.integers(len(items)))],
             "event_id": f"b{start + j}"} for j in range(n)]


async def ingest(url: str, write: dict, users: list[str], items: list[str], batch: int, seconds: float,
                 counter: list[int]) -> float:
    """Events/s of one sequential client posting ``batch`` events per request for ``seconds``."""
    rng = np.random.default_rng(batch)
    sent = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            body = events(rng, users, items, batch, counter[0])
            counter[0] += batch
            await timed(http, "POST", "/events", body[0] if batch == 1 else {"events": body}, write)
            sent += batch
        return sent / (time.perf_counter() - began)


async def recommend_load(url: str, read: dict, write: dict, users: list[str], items: list[str], clients: int,
                         seconds: float, rate: float, counter: list[int]) -> dict[str, float]:
    """p50/p99 of /recommend with ``clients`` clients; a writer at ``rate`` events/s (0: none) beside."""
    latencies: list[float] = []
    written = [0]
    stop = time.perf_counter() + seconds

    async def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while time.perf_counter() < stop:
                user = users[int(rng.integers(len(users)))]
                latencies.append(await timed(http, "POST", "/recommend", {"user_id": user, "k": 20,
                                                                          "explain": False}, read))

    async def writer() -> None:
        rng = np.random.default_rng(99)
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            began = time.perf_counter()
            while time.perf_counter() < stop:
                body = events(rng, users, items, BATCH, counter[0])
                counter[0] += BATCH
                await timed(http, "POST", "/events", {"events": body}, write)
                written[0] += BATCH
                await asyncio.sleep(max(0.0, began + written[0] / rate - time.perf_counter()))

    tasks = [reader(s) for s in range(clients)] + ([writer()] if rate > 0 else [])
    began = time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    ms = 1000 * np.asarray(latencies)
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "requests": len(ms), "events_per_s": written[0] / elapsed}


def gauges(url: str, read: dict) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", headers=read, timeout=30).text
    return {line.split()[0]: float(line.split()[-1]) for line in text.splitlines()
            if line.startswith("longtail_") and len(line.split()) == 2}


def run_mode(artifact: Path, apply_ms: int, args: argparse.Namespace, users: list[str], items: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        keys = make_keys(f"sqlite:///{folder}/service.db", "bench")
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        server = Server(artifact, keys.url, env, Path(folder) / "server.log", ("--apply-every-ms", str(apply_ms)))
        read, write = {"X-API-Key": keys.read}, {"X-API-Key": keys.write}
        counter = [0]
        try:
            asyncio.run(recommend_load(server.url, read, write, users, items, 2, 2.0, 0, counter))  # warm-up
            out: dict = {"apply_every_ms": apply_ms}
            out["recommend_idle"] = asyncio.run(recommend_load(server.url, read, write, users, items, args.clients,
                                                               args.seconds, 0, counter))
            out["recommend_writes"] = asyncio.run(recommend_load(server.url, read, write, users, items,
                                                                 args.clients, args.seconds, 1000.0, counter))
            out["one_by_one_per_s"] = asyncio.run(ingest(server.url, write, users, items, 1, args.seconds, counter))
            out["batches_per_s"] = asyncio.run(ingest(server.url, write, users, items, BATCH, args.seconds, counter))
            began = time.perf_counter()
            while gauges(server.url, read).get("longtail_events_pending", 0) > 0:
                time.sleep(0.2)
            out["drain_s"] = time.perf_counter() - began
            g = gauges(server.url, read)
            out["events_posted"] = counter[0]
            out.update({k: g[k] for k in ("longtail_applies_total", "longtail_apply_seconds_max",
                                          "longtail_apply_lag_seconds_max", "longtail_events_not_applied") if k in g})
        finally:
            server.stop()
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifact", type=Path, default=ROOT / "out" / "bench-flagship")
    parser.add_argument("--apply-every-ms", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--scales", default="1,2")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/ml-latest-small/event_ingest.json")
    args = parser.parse_args()
    console = Console(width=160)
    ensure_artifact(args.artifact)
    results = []
    for scale in (int(s) for s in args.scales.split(",")):
        artifact = args.artifact
        if scale == 2:
            artifact = args.artifact.with_name(args.artifact.name + "-x2")
            began = time.perf_counter()
            doubled(args.artifact, artifact)
            console.print(f"x2 artifact ready in {time.perf_counter() - began:.0f} s")
        users, items, warm = catalogue(artifact)
        for apply_ms in (0, args.apply_every_ms):
            row = {"scale": scale, "warm_items": warm, **run_mode(artifact, apply_ms, args, users, items),
                   "load_average": os.getloadavg()}
            console.print(row)
            results.append(row)
    table = Table(title=f"POST /events into the flagship (ml-latest-small; x2: duplicated), {args.clients} "
                        f"/recommend clients; uptime load {os.getloadavg()[0]:.2f}")
    for column in ("warm items", "apply", "events/s 1-by-1", "events/s x100", "rec p50 / p99 ms idle",
                   "rec p50 / p99 ms + 1k ev/s", "writer ev/s", "p99 ratio", "apply max s", "lag max s"):
        table.add_column(column, justify="right")
    for r in results:
        idle, busy = r["recommend_idle"], r["recommend_writes"]
        mode = "in request" if r["apply_every_ms"] == 0 else f"every {r['apply_every_ms']} ms"
        table.add_row(f"{r['warm_items']:,}", mode,
                      f"{r['one_by_one_per_s']:,.0f}", f"{r['batches_per_s']:,.0f}",
                      f"{idle['p50_ms']:.1f} / {idle['p99_ms']:.1f}", f"{busy['p50_ms']:.1f} / {busy['p99_ms']:.1f}",
                      f"{busy['events_per_s']:,.0f}", f"{busy['p99_ms'] / idle['p99_ms']:.2f}x",
                      f"{r.get('longtail_apply_seconds_max', float('nan')):.2f}",
                      f"{r.get('longtail_apply_lag_seconds_max', float('nan')):.2f}")
    console.print(table)
    args.json.write_text(json.dumps({"artifact": str(args.artifact), "seconds": args.seconds, "clients": args.clients,
                                     "batch": BATCH, "results": results}, indent=2))


if __name__ == "__main__":
    main()
