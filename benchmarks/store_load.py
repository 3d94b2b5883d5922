"""Events/s sustained into the service's stores: SQLite vs PostgreSQL, 1 and 8 writing clients.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/store_load.py [--seconds 10] [--pg URL] [--json]

Each client is a separate process with its own store connection, as separate service processes
would be, appending events through ``Store.append_events`` (one durable commit per call) for
``--seconds``: one event per commit (what ``POST /events`` with one event costs) and batches of 100
(the batch body). SQLite: one file, ``synchronous=FULL`` (its writers queue on the file lock).
PostgreSQL: default ``fsync``/``synchronous_commit``, writers queue on longtail's advisory lock
(commit order = sequence order, ``store_pg``). Without ``--pg`` a throw-away server is started with
``scripts/pg-test-server``. Also the disk each store takes per event. Output: a table and
``benchmarks/results/store_load.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' PostgreSQL helper


def client(url: str, seconds: float, batch: int, tag: str, start_at: float, out: mp.Queue) -> None:
    from longtail.serve.store import NewEvent, open_store

    store = open_store(url)
    latencies: list[float] = []
    n = 0
    while time.time() < start_at:
        time.sleep(0.001)
    stop = start_at + seconds
    while time.time() < stop:
        events = [NewEvent(f"{tag}-u{(n + k) % 1000}", f"i{(n + k) % 5000}", n + k, f"{tag}-{n + k}")
                  for k in range(batch)]
        began = time.perf_counter()
        store.append_events(events)
        latencies.append(time.perf_counter() - began)
        n += batch
    store.close()
    out.put((n, latencies))


def run(url: str, clients: int, batch: int, seconds: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    start_at = time.time() + 3.0  # every process imported and connected before the clock starts
    procs = [ctx.Process(target=client, args=(url, seconds, batch, f"c{c}-{uuid.uuid4().hex[:6]}", start_at, out))
             for c in range(clients)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    events = sum(n for n, _ in results)
    latencies = sorted(x for _, lat in results for x in lat)
    return {"clients": clients, "batch": batch, "events": events, "events_per_s": events / seconds,
            "bytes_per_event": bytes_per_event(url),
            "commits_per_s": len(latencies) / seconds,
            "commit_p50_ms": 1000 * statistics.median(latencies),
            "commit_p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def bytes_per_event(url: str) -> float:
    """Disk the events take, per stored event: PostgreSQL's ``events`` table with its indexes and
    TOAST; SQLite's whole file and WAL (events dominate it here)."""
    from longtail.serve.store import open_store

    store = open_store(url)
    try:
        count = store.count_events()
        if store.dialect == "postgresql":
            with store._reading(own=True) as conn:
                size = conn.execute("SELECT pg_total_relation_size('events')").fetchone()[0]
        else:
            path = Path(url.removeprefix("sqlite:///"))
            size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    finally:
        store.close()
    return float(size) / max(count, 1)


def follower(url: str, seconds: float, out: mp.Queue) -> None:
    """Follow a PostgreSQL store as a second service process does (``Store.follow``); per event seen,
    seen wall time - the writer's ``received`` stamp."""
    import threading

    from longtail.serve.store import open_store

    store = open_store(url)
    lags: list[float] = []
    last = [0]

    def step() -> None:
        with store._reading(own=True) as conn:
            rows = conn.execute("SELECT seq, received FROM events WHERE seq > %s ORDER BY seq", (last[0],)).fetchall()
        now = time.time()
        if rows:
            last[0] = int(rows[-1][0])
            lags.extend(now - float(r) for _, r in rows)

    stop = threading.Event()
    thread = threading.Thread(target=store.follow, args=(step, stop), kwargs={"poll_s": 5.0})
    thread.start()
    out.put("ready")
    time.sleep(seconds + 1.0)
    stop.set()
    thread.join()
    store.close()
    out.put(lags)


def lag(url: str, seconds: float, every_s: float = 0.01) -> dict[str, float]:
    """A writer commits one event every ``every_s``; a follower process sees each after how long."""
    from longtail.serve.store import NewEvent, open_store

    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=follower, args=(url, seconds, out))
    proc.start()
    assert out.get(timeout=60) == "ready"
    time.sleep(1.0)  # LISTEN in place
    store = open_store(url)
    stop = time.time() + seconds
    n = 0
    while time.time() < stop:
        store.append_events([NewEvent("lag-user", f"i{n}", n)])
        n += 1
        time.sleep(every_s)
    store.close()
    lags = sorted(out.get(timeout=60))
    proc.join()
    return {"events": n, "seen": len(lags), "lag_p50_ms": 1000 * statistics.median(lags),
            "lag_p99_ms": 1000 * lags[min(len(lags) - 1, int(0.99 * len(lags)))], "lag_max_ms": 1000 * lags[-1]}


def fresh_pg(admin: str) -> str:
    from pg_server import fresh_database

    return fresh_database(admin)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pg", default=None, help="admin URL of a running server (else one is started)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "store_load.json")
    args = parser.parse_args()
    from pg_server import admin_url

    console = Console(width=130)
    rows = []
    with admin_url() if args.pg is None else nullcontext(args.pg) as admin, tempfile.TemporaryDirectory() as tmp:
        if admin is None:
            raise SystemExit("no PostgreSQL server could be started")
        for clients in (1, 8):
            for batch in (1, 100):
                for store in ("sqlite", "postgresql"):
                    url = (f"sqlite:///{tmp}/{uuid.uuid4().hex}.db" if store == "sqlite" else fresh_pg(admin))
                    row = {"store": store, **run(url, clients, batch, args.seconds)}
                    rows.append(row)
                    console.print(f"{store:10s} clients={clients} batch={batch}: {row['events_per_s']:,.0f} events/s")
        follow = lag(fresh_pg(admin), args.seconds)
    console.print(f"PostgreSQL follower lag (commit -> another process has read it), one event per 10 ms for "
                  f"{args.seconds:.0f} s: p50 {follow['lag_p50_ms']:.1f} ms, p99 {follow['lag_p99_ms']:.1f} ms, "
                  f"max {follow['lag_max_ms']:.1f} ms ({follow['seen']} of {follow['events']} events seen)")
    table = Table(title=f"Events/s into the store ({args.seconds:.0f} s per cell, {mp.cpu_count()} cores)")
    for column in ("clients", "batch", "store", "events/s", "commits/s", "commit p50 ms", "commit p99 ms",
                   "bytes/event", "pg / sqlite"):
        table.add_column(column, justify="right")
    for row in rows:
        twin = next(r for r in rows if r["clients"] == row["clients"] and r["batch"] == row["batch"]
                    and r["store"] == "sqlite")
        table.add_row(str(row["clients"]), str(row["batch"]), row["store"], f"{row['events_per_s']:,.0f}",
                      f"{row['commits_per_s']:,.0f}", f"{row['commit_p50_ms']:.2f}", f"{row['commit_p99_ms']:.2f}", f"{row['bytes_per_event']:.0f}",
                      f"{row['events_per_s'] / twin['events_per_s']:.2f}x" if row["store"] == "postgresql" else "")
    console.print(table)
    result = {"seconds": args.seconds, "cores": mp.cpu_count(), "python": platform.python_version(),
              "postgres": _server_version(), "rows": rows, "follower_lag": follow,
              "command": "OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/store_load.py"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))


def _server_version() -> str:
    found = subprocess.run(["psql", "--version"], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else "unknown"


if __name__ == "__main__":
    main()
