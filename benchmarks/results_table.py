"""Print the committed results (``benchmarks/results/**/metrics.json``) as Markdown tables.

    .venv/bin/python benchmarks/results_table.py [--k 20] [ROOT]

One table per (dataset, protocol): every model x bucket ndcg@K, recall@K, tail share (aplt@K),
coverage@K and the tuned parameters. ``docs/results.md`` pastes this output, so every number there
comes from a file a command wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "results"


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def table(payload: dict, k: int) -> str:
    protocol = payload["protocol"]
    lines = [
        f"### {payload['dataset']} — {protocol['name']} (test, @{k}; {protocol['test_users']} test users, "
        f"{protocol['items']} items)",
        "",
        "| model | ndcg overall | ndcg head | ndcg tail | ndcg cold | recall | aplt | coverage | params |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, entry in payload["models"].items():
        params = ", ".join(f"{key}={value}" for key, value in entry.get("params", {}).items())
        get = lambda group, metric: entry.get(group, {}).get(f"{metric}@{k}")  # noqa: E731
        lines.append(
            f"| {name} | {fmt(get('overall', 'ndcg'))} | {fmt(get('head', 'ndcg'))} | "
            f"{fmt(get('tail', 'ndcg'))} | {fmt(get('cold', 'ndcg'))} | "
            f"{fmt(get('overall', 'recall') or get('cold', 'recall'))} | {fmt(entry['beyond'].get(f'aplt@{k}'))} | "
            f"{fmt(entry['beyond'].get(f'coverage@{k}'))} | {params} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("root", nargs="?", type=Path, default=ROOT)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args(argv)
    for path in sorted(args.root.glob("**/metrics.json")):
        print(f"<!-- {path.relative_to(args.root.parent)} -->")
        print(table(json.loads(path.read_text()), args.k))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
