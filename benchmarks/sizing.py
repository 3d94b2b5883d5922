"""The sizing plan of docs/scaling.md, multiplied out from the committed measurements.

    python benchmarks/sizing.py [--items 1e8] [--events 1e10] [--users 1e8] [--node-cores 32]
        [--node-gb 256] [--json]

Reads only committed outputs (no timing here): ``rates.json`` (``benchmarks/rates.py``),
``index_scaling.json`` (``benchmarks/index.py``), ``ray_scaling.json`` (``benchmarks/ray_scaling.py``),
``store_load.json`` (``benchmarks/store_load.py``) and the flagship's fit in
``ml-latest-small/metrics.json`` (``longtail evaluate``). Every line it prints names the measured rate
it starts from; what is an assumption (users, node size, head size, epochs) is an option. Writes
``benchmarks/results/sizing.json``. Linear extrapolation is the optimistic case: it says how much
work there is, not that one library call scales to it (see docs/scaling.md for what does not).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
GB = 1e9
HOUR = 3600.0


def load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text())


def per_core(rows: list[dict[str, Any]], key: str) -> tuple[float, str]:
    """The lowest per-core rate among the thread counts measured (a plan should not assume the
    best case), and where it came from."""
    best = min(rows, key=lambda r: r[key] / r["threads"])
    return best[key] / best["threads"], f"{best[key]:,.1f}/s at {best['threads']} thread(s)"


def plan(args: argparse.Namespace) -> dict[str, Any]:
    rates, index, ray, store = (load(n) for n in ("rates.json", "index_scaling.json", "ray_scaling.json",
                                                   "store_load.json"))
    metrics = load("ml-latest-small/metrics.json")["models"]
    n_items, n_events, n_users, dim = args.items, args.events, args.users, args.dim
    out: dict[str, Any] = {"assumptions": {k: v for k, v in vars(args).items() if k != "json"}}

    # item vectors and the index
    raw = n_items * dim * 4
    synthetic = index["runs"]["synthetic"]
    out["vectors"] = {"float32_gb": raw / GB, "float16_gb": raw / 2 / GB}
    out["index"] = [{"kind": r["kind"], "param": r["param"], "bytes_per_item": r["bytes_per_item"],
                     "gb": r["bytes_per_item"] * n_items / GB, "recall_at_k": r["recall"], "k": synthetic["k"],
                     "qps_measured": r["qps"], "measured_on": f"{synthetic['n']:,} synthetic {synthetic['dim']}-d",
                     "nodes_for_ram": math.ceil(r["bytes_per_item"] * n_items / (0.6 * args.node_gb * GB))}
                    for r in synthetic["results"]]

    # full re-embed
    encode_rate, encode_from = per_core(rates["encode"], "items_per_s")
    by = {(r["job"], r["backend"], r["workers"]): r for r in ray["rows"]}
    ray_factor = by[("encode", "ray", 2)]["seconds"] / by[("encode", "local", 1)]["seconds"]
    core_h = n_items / encode_rate / HOUR
    out["re_embed"] = {"items_per_s_per_core": encode_rate, "from": encode_from,
                       "mean_chars": rates["encode"][0]["mean_chars"], "core_hours": core_h,
                       "ray_overhead_factor": ray_factor, "core_hours_on_ray": core_h * ray_factor,
                       "wall_hours_on_cluster": core_h * ray_factor / (args.nodes * args.node_cores)}

    # full retrain: ALS, EASE (head only), neural-ips, the flagship
    als = next(r for r in rates["fit"]["als"] if r["data"] == "synthetic power-law" and r["threads"] == 1)
    als2 = next(r for r in rates["fit"]["als"] if r["data"] == "synthetic power-law" and r["threads"] == 2)
    als_core_s = als["slope_s_per_nnz_iteration"] * n_events * args.als_iterations
    als_mem = 2 * n_events * 8 + (n_items + n_users) * args.factors * 4  # CSR both ways + factors
    out["als"] = {"s_per_nnz_iteration_1_thread": als["slope_s_per_nnz_iteration"],
                  "speedup_2_threads": als["per_iteration_s"] / als2["per_iteration_s"],
                  "measured_nnz": als["nnz"], "core_hours": als_core_s / HOUR,
                  "wall_hours_one_node": als_core_s / HOUR / args.node_cores, "memory_gb": als_mem / GB}
    ease = rates["fit"]["ease"]["fit"]["1"]
    head = args.ease_head
    out["ease"] = {"exponent": ease["exponent"], "s_per_item_cubed": ease["s_per_item_cubed_largest"],
                   "full_catalogue_core_years": ease["s_per_item_cubed_largest"] * n_items ** 3 / HOUR / 24 / 365,
                   "full_catalogue_memory_tb": n_items ** 2 * 20 / 1e12,
                   "head_items": head, "head_core_hours": ease["s_per_item_cubed_largest"] * head ** 3 / HOUR,
                   "head_memory_gb": head ** 2 * 20 / GB}  # float64 gram + inverse, float32 weights
    positives = args.ml_train_valid_positives
    neural_s = metrics["neural-ips"]["fit_seconds"] / (positives * args.epochs)
    out["neural_ips"] = {"s_per_positive_epoch": neural_s, "measured_fit_s": metrics["neural-ips"]["fit_seconds"],
                         "measured_positives": positives, "epochs": args.epochs,
                         "core_years": neural_s * n_events * args.epochs / HOUR / 24 / 365}
    out["flagship"] = {"measured_fit_s": metrics["longtail"]["fit_seconds"],
                       "parts_fit_s": {m: metrics[m]["fit_seconds"] for m in ("ease", "neural-ips", "semantic-attn")}}

    # recommend
    exact = max(rates["scoring"], key=lambda r: (r["items"], -r["threads"]))
    ns_pair = exact["ns_per_user_item"] * exact["threads"]  # per core
    scanned = args.nprobe * math.sqrt(n_items) + math.sqrt(n_items)  # lists probed + the coarse quantizer
    out["recommend"] = {"ns_per_user_item_per_core": ns_pair, "measured_items": exact["items"],
                        "exact_s_per_user_per_core": ns_pair * n_items / 1e9,
                        "exact_all_users_core_hours": ns_pair * n_items * n_users / 1e9 / HOUR,
                        "ivf_vectors_scanned": scanned, "ivf_users_per_s_per_core": 1e9 / (ns_pair * scanned),
                        "ivf_all_users_core_hours": ns_pair * scanned * n_users / 1e9 / HOUR,
                        "als_users_per_s_measured": next(r["users_per_s"] for r in rates["recommend"]
                                                         if r["model"] == "als" and r["threads"] == 1)}

    # the store
    rows = {(r["store"], r["clients"], r["batch"]): r for r in store["rows"]}
    pg = rows[("postgresql", 1, 100)]
    per_day = n_events / 365
    out["store"] = {"pg_events_per_s_batch100": pg["events_per_s"],
                    "pg_events_per_s_batch1_8_clients": rows[("postgresql", 8, 1)]["events_per_s"],
                    "pg_bytes_per_event": pg["bytes_per_event"], "all_events_tb": pg["bytes_per_event"] * n_events / 1e12,
                    "events_per_day_if_10b_a_year": per_day, "mean_events_per_s": per_day / 86400,
                    "one_day_gb": pg["bytes_per_event"] * per_day / GB, "follower_lag": store["follower_lag"]}
    return out


def show(result: dict[str, Any]) -> None:
    a = result["assumptions"]
    console = Console(width=130)
    table = Table(title=f"Sizing for {a['items']:.0e} items, {a['events']:.0e} events, {a['users']:.0e} users")
    table.add_column("what")
    table.add_column("from the measured rate")
    table.add_column("gives", justify="right")
    e, als, ease, nn, rec, st = (result[k] for k in ("re_embed", "als", "ease", "neural_ips", "recommend", "store"))
    table.add_row("item vectors (384-d)", "4 B x dim", f"{result['vectors']['float32_gb']:,.0f} GB float32")
    for r in result["index"]:
        table.add_row(f"index {r['kind']} ({r['param']})", f"{r['bytes_per_item']:,.0f} B/item, recall@{r['k']} "
                      f"{r['recall_at_k']:.3f} on {r['measured_on']}", f"{r['gb']:,.1f} GB, {r['nodes_for_ram']} node(s)")
    table.add_row("full re-embed", f"{e['items_per_s_per_core']:.0f} items/s/core ({e['from']}), Ray x{e['ray_overhead_factor']:.2f}",
                  f"{e['core_hours_on_ray']:,.0f} core-h = {e['wall_hours_on_cluster']:.1f} h on {a['nodes']}x{a['node_cores']} cores")
    table.add_row("ALS retrain", f"{als['s_per_nnz_iteration_1_thread']:.2e} s/(nnz*iter), {a['als_iterations']} iter",
                  f"{als['core_hours']:,.1f} core-h, {als['memory_gb']:,.0f} GB")
    table.add_row("EASE, whole catalogue", f"{ease['s_per_item_cubed']:.2e} s x items^3 (exponent {ease['exponent']:.2f})",
                  f"{ease['full_catalogue_core_years']:.1e} core-years, {ease['full_catalogue_memory_tb']:.1e} TB")
    table.add_row(f"EASE, {ease['head_items']:,} head items", "same", f"{ease['head_core_hours']:,.1f} core-h, "
                  f"{ease['head_memory_gb']:,.0f} GB")
    table.add_row("neural-ips retrain", f"{nn['s_per_positive_epoch'] * 1e3:.2f} ms/(positive*epoch), {nn['epochs']} epochs",
                  f"{nn['core_years']:,.1f} core-years")
    table.add_row("exact top-k, all users", f"{rec['ns_per_user_item_per_core']:.1f} ns/(user*item)/core",
                  f"{rec['exact_all_users_core_hours']:,.0f} core-h")
    table.add_row("IVF top-k, all users", f"{rec['ivf_vectors_scanned']:,.0f} vectors scanned a user",
                  f"{rec['ivf_all_users_core_hours']:,.1f} core-h")
    table.add_row("events in PostgreSQL", f"{st['pg_bytes_per_event']:.0f} B/event", f"{st['all_events_tb']:,.2f} TB "
                  f"all, {st['one_day_gb']:,.1f} GB a day")
    table.add_row("ingest", f"{st['pg_events_per_s_batch100']:,.0f} events/s in batches of 100",
                  f"mean need {st['mean_events_per_s']:,.0f} events/s")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=float, default=1e8)
    parser.add_argument("--events", type=float, default=1e10)
    parser.add_argument("--users", type=float, default=1e8, help="assumed: 100 events a user on average")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--als-iterations", type=int, default=15)
    parser.add_argument("--ease-head", type=int, default=50_000, help="items EASE keeps (the most popular)")
    parser.add_argument("--epochs", type=int, default=10, help="neural-ips' default")
    parser.add_argument("--ml-train-valid-positives", type=int, default=43_972,
                        help="ml-latest-small's train+valid positives, what the committed neural-ips fit saw")
    parser.add_argument("--nprobe", type=int, default=8, help="IVF lists probed (recall 0.957 at 200k)")
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--node-cores", type=int, default=32)
    parser.add_argument("--node-gb", type=float, default=256.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = plan(args)
    (RESULTS / "sizing.json").write_text(json.dumps(result, indent=2) + "\n")
    show(result)
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
