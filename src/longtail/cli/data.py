"""`longtail datasets` and `longtail inspect`: what data there is and what it looks like."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from longtail.cli.common import (
    AllowMissingOpt,
    DatasetOpt,
    KeepSeenOpt,
    MinRatingOpt,
    ProtocolOpt,
    app,
    console,
    handle_errors,
)


@app.command()
@handle_errors
def datasets() -> None:
    """List the datasets found (shipped + ../shared/data) and how to add your own."""
    from longtail.data.registry import available_datasets, dataset_dirs

    table = Table(title="datasets")
    for column in ("name", "folder", "files"):
        table.add_column(column)
    for name, path in available_datasets().items():
        files = ", ".join(sorted(p.name for p in path.iterdir() if p.is_file() and p.name[0] != "."))
        table.add_row(name, str(path), files)
    console.print(table)
    console.print("searched: " + ", ".join(str(d) for d in dataset_dirs()))
    console.print(
        "Add your own: a folder with interactions.csv[.gz|.parquet|.jsonl] "
        "(user_id,item_id,timestamp,rating) and items.csv (item_id,title,text,...); pass its path "
        "to --dataset, or put it under a folder listed in $LONGTAIL_DATA."
    )


@app.command()
@handle_errors
def inspect(
    dataset: DatasetOpt = "ml-latest-small",
    protocol: ProtocolOpt = "temporal",
    keep_seen: KeepSeenOpt = False,
    min_rating: MinRatingOpt = 4.0,
    allow_missing_items: AllowMissingOpt = False,
    out: Annotated[Path, typer.Option(help="Folder for the plot and stats.json.")] = Path("out/inspect"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Counts, time range, popularity curve (head/tail/cold shares, Gini) and a long-tail plot."""
    from longtail.data import load_dataset
    from longtail.data.report import stats_tables
    from longtail.data.stats import popularity_curve, protocol_stats, raw_stats
    from longtail.eval.plots import plot_long_tail

    ds = load_dataset(dataset, protocol=protocol, min_rating=min_rating, allow_missing_items=allow_missing_items,
                      keep_seen=keep_seen)
    stats = {"dataset": ds.name, "raw": raw_stats(ds), "protocol": protocol_stats(ds)}
    out.mkdir(parents=True, exist_ok=True)
    png = plot_long_tail(popularity_curve(ds), out / f"long_tail_{ds.name}.png", title=ds.name)
    (out / f"stats_{ds.name}.json").write_text(json.dumps(stats, indent=2))
    if as_json:
        print(json.dumps(stats, indent=2))
        return
    for table in stats_tables(stats):
        console.print(table)
    console.print(f"plot: {png}")
