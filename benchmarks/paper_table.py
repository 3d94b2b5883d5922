"""Our leave-one-out, keep-seen results on amazon-scientific-seqorder beside the published tables.

    .venv/bin/longtail evaluate -d amazon-scientific-seqorder --protocol leave-one-out --keep-seen \
        --models ease,longtail --out benchmarks/results/amazon-scientific-seqorder/leave-one-out
    .venv/bin/python benchmarks/paper_table.py benchmarks/results/amazon-scientific-seqorder/leave-one-out

amazon-scientific-seqorder is UniSRec's "Scientific" (8,442 users, 4,385 items, 59,427
interactions); the published rows are full-ranking leave-one-out with history items not masked,
which is what ``--keep-seen`` reproduces (``../shared/PROTOCOL.md``). Prints a Markdown table and
each of our models' ratio to MISSRec per metric (issue 15's acceptance: each >= 1.00x).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = ("recall@10", "ndcg@10", "recall@50", "ndcg@50")
PUBLISHED = {
    "VQ-Rec (Hou et al., WWW 2023)": ((0.1211, 0.0643, 0.2369, 0.0897), "RUCAIBox/VQ-Rec README, \"Results\""),
    "MISSRec (Wang et al., MM 2023; text + images)": ((0.1360, 0.0753, 0.2431, 0.0983),
                                                     "gimpong/MM23-MISSRec README, section 4.1"),
}
TARGET = "MISSRec (Wang et al., MM 2023; text + images)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    payload = json.loads((args.folder / "metrics.json").read_text())
    protocol = payload["protocol"]
    if protocol.get("name") != "leave-one-out" or not protocol.get("keep_seen"):
        raise SystemExit(f"{args.folder}: not a leave-one-out --keep-seen run ({protocol.get('name')})")
    print("| model | R@10 | N@10 | R@50 | N@50 | source |")
    print("|---|---:|---:|---:|---:|---|")
    for name, (values, source) in PUBLISHED.items():
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {source} |")
    ours = {}
    for name, entry in payload["models"].items():
        values = [entry["overall"][m] for m in METRICS]
        ours[name] = values
        fit = entry.get("fit_seconds")
        print(f"| {name} (ours) | " + " | ".join(f"{v:.4f}" for v in values)
              + f" | `{args.folder}/metrics.json` (fit {fit:.0f} s on this machine) |")
    print()
    for name, values in ours.items():
        ratios = [v / p for v, p in zip(values, PUBLISHED[TARGET][0], strict=True)]
        verdict = "meets" if min(ratios) >= 1.0 else "misses"
        print(f"{name} / MISSRec: " + ", ".join(f"{m} {r:.2f}x" for m, r in zip(METRICS, ratios, strict=True))
              + f" -> {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
