"""The long, random schemathesis run against the real server (the test runs a short derandomised
one): requests generated from the OpenAPI spec with an admin key, a read key on the endpoints
that need more, and no key, sent over HTTP to ``longtail serve`` with its real limits.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/fuzz_service.py [--examples 200] [--seed N]
        [--dataset ml-latest-small] [--json out.json]

Prints the seed first: a failure is replayed with ``--seed`` and the same ``--examples``. Exits 1
on any 5xx, any answer that breaks the spec, or any protected endpoint answering 2xx without the
right key.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "serve"))

from fuzzing import FuzzReport, fuzz  # noqa: E402
from serve_helpers import Server  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="per operation, mode and key (write key)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--model", default="itemknn")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    seed = random.SystemRandom().randrange(2**32) if args.seed is None else args.seed
    console = Console(width=140)
    console.print(f"seed {seed} (replay: --seed {seed} --examples {args.examples})")
    from longtail.serve.bundle import save_bundle, train_bundle
    from longtail.serve.keys import create_key
    from longtail.serve.store import open_store

    folder = Path(tempfile.mkdtemp(prefix="longtail-fuzz-"))
    artifact = save_bundle(train_bundle(args.dataset, args.model), folder / "model")
    url = f"sqlite:///{folder / 'service.db'}"
    store = open_store(url)
    keys = {"admin": create_key(store, "admin", "fuzz"), "read": create_key(store, "read", "fuzz"), "none": None}
    store.close()
    server = Server(artifact, url, {**os.environ, "OPENBLAS_NUM_THREADS": "1"}, folder / "server.log")
    report = FuzzReport()
    failure = None
    try:
        examples = {"admin": args.examples, "read": max(args.examples // 4, 1), "none": max(args.examples // 4, 1)}
        fuzz(server.url, keys, examples, random_seed=seed, report=report)
    except Exception as exc:  # a check failed (schemathesis raises its own failure groups): report, exit 1
        failure = str(exc)
    finally:
        server.stop()
    console.print(report.summary())
    if failure:
        console.print(f"[red]check failed[/]: {failure[:4000]}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"seed": seed, "examples": args.examples, "total": report.total,
                                         "statuses": [[*k, v] for k, v in sorted(report.statuses.items())],
                                         "violations": report.violations, "failure": failure}, indent=2))
    ok = failure is None and not report.server_errors() and not report.violations
    console.print(f"seed {seed}: {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
