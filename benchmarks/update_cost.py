"""Cost of one posted event (issue 16): ``model.updated(one event)``, what the service runs for
every ``POST /events``, beside the model's own ``fit`` on the same data, measured in the same run
(so the ratio holds on a noisy machine).

Each model is fitted on the first 90% of ml-latest-small's events (global time order) with the
parameters ``evaluate`` chose on valid; then ``--events`` of the next events are applied one at a
time, each on the model left by the previous one (as the service does). The table gives the median
and 90th percentile of one update, the fit time, and their ratio.

    OPENBLAS_NUM_THREADS=1 python benchmarks/update_cost.py [--models itemknn,als,ease,...] [--events 30]

Results: ``benchmarks/results/<dataset>/update_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from rich.console import Console
from rich.table import Table
from stream_replay import ROOT, chosen

from longtail.data.dataset import load_dataset
from longtail.data.interactions import Interactions
from longtail.models import make_model
from longtail.text import DEFAULT_TEMPLATE, embed_items

MODELS = "pop,itemknn,rp3beta,als,bpr,ease,semantic-attn,neural-ips,graph,longtail"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--models", default=MODELS)
    parser.add_argument("--events", type=int, default=30)
    args = parser.parse_args()
    dataset = load_dataset(args.dataset)
    events = dataset.train + dataset.valid + dataset.test
    order = np.argsort(events.timestamps, kind="stable")
    cut = int(0.9 * len(order))

    def part(index: np.ndarray) -> Interactions:
        return Interactions(events.users[index], events.items[index], events.timestamps[index], events.n_users,
                            events.n_items)

    vectors = embed_items(dataset.items, template=DEFAULT_TEMPLATE)
    console = Console(width=140)
    table = Table(title=f"{dataset.name}: one posted event (model.updated) vs a fit on {cut:,} events")
    for column in ("model", "update median ms", "update p90 ms", "fit s", "fit / update"):
        table.add_column(column, justify="right")
    rows = {}
    for name in args.models.split(","):
        model = make_model(name, **chosen(dataset.name, name)[0])
        began = time.perf_counter()
        model.fit(part(order[:cut]), item_embeddings=vectors if model.needs_embeddings else None)
        fit_seconds = time.perf_counter() - began
        seconds = []
        for event in order[cut : cut + args.events]:
            began = time.perf_counter()
            model = model.updated(part(np.array([event])))
            seconds.append(time.perf_counter() - began)
        median, p90 = float(np.median(seconds)), float(np.quantile(seconds, 0.9))
        rows[name] = {"update_median_s": median, "update_p90_s": p90, "fit_s": fit_seconds}
        table.add_row(name, f"{1000 * median:.1f}", f"{1000 * p90:.1f}", f"{fit_seconds:.1f}",
                      f"{fit_seconds / max(median, 1e-9):,.0f}x")
        console.print(f"{name}: update {1000 * median:.1f} ms, fit {fit_seconds:.1f} s")
    console.print(table)
    out = ROOT / "benchmarks" / "results" / dataset.name / "update_cost.json"
    out.write_text(json.dumps({"dataset": dataset.name, "fit_events": cut, "events": args.events, "models": rows}, indent=2))


if __name__ == "__main__":
    main()
