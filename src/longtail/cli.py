"""Command-line interface: a thin typer layer over the library.

Library errors (`LongtailError`) become a one-line red message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from longtail.errors import LongtailError

app = typer.Typer(
    help="longtail: recommend long-tail and cold-start items with pretrained language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, `| tee`) gets a wide table instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
F = TypeVar("F", bound=Callable[..., Any])

DatasetOpt = Annotated[
    str, typer.Option("--dataset", "-d", help="Dataset name (see `longtail datasets`) or folder path.")
]
ProtocolOpt = Annotated[str, typer.Option(help="Split protocol: temporal | cold-items.")]
MinRatingOpt = Annotated[float, typer.Option(help="Ratings >= this are positives.")]
AllowMissingOpt = Annotated[
    bool, typer.Option(help="Drop interactions whose item is not in the catalogue.")
]


def handle_errors(func: F) -> F:
    """Map library errors to a clear message and their exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LongtailError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


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
    min_rating: MinRatingOpt = 4.0,
    allow_missing_items: AllowMissingOpt = False,
    out: Annotated[Path, typer.Option(help="Folder for the plot and stats.json.")] = Path("out/inspect"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
) -> None:
    """Counts, time range, popularity curve (head/tail/cold shares, Gini) and a long-tail plot."""
    from longtail.data import load_dataset
    from longtail.data.stats import popularity_curve, protocol_stats, raw_stats
    from longtail.eval.plots import plot_long_tail

    ds = load_dataset(
        dataset, protocol=protocol, min_rating=min_rating, allow_missing_items=allow_missing_items
    )
    stats = {"dataset": ds.name, "raw": raw_stats(ds), "protocol": protocol_stats(ds)}
    out.mkdir(parents=True, exist_ok=True)
    png = plot_long_tail(popularity_curve(ds), out / f"long_tail_{ds.name}.png", title=ds.name)
    (out / f"stats_{ds.name}.json").write_text(json.dumps(stats, indent=2))
    if as_json:
        print(json.dumps(stats, indent=2))
        return
    _print_stats(stats)
    console.print(f"plot: {png}")


@app.command()
@handle_errors
def evaluate(
    dataset: DatasetOpt = "ml-latest-small",
    models: Annotated[str, typer.Option(help="Comma-separated model names, e.g. pop,itemknn,als,ease.")] = "pop,itemknn,als,ease",
    out: Annotated[Path, typer.Option(help="Output folder (metrics.json, runs/, qrels.tsv, plots).")] = Path("out/evaluate"),
    protocol: ProtocolOpt = "temporal",
    min_rating: MinRatingOpt = 4.0,
    allow_missing_items: AllowMissingOpt = False,
    tune: Annotated[bool, typer.Option(help="Grid-search each model on valid (else defaults).")] = True,
    params_from: Annotated[Optional[Path], typer.Option(help="Reuse the params of an earlier metrics.json (no tuning).")] = None,
    ild: Annotated[bool, typer.Option(help="Compute ild@K (encodes items.text once; cached).")] = True,
) -> None:
    """Tune on valid, refit on train+valid, rank the full catalogue for test users; write the protocol's outputs."""
    from longtail.eval.runner import EvaluationConfig, run_evaluation

    names = [m.strip() for m in models.split(",") if m.strip()]
    params: dict = {}
    if params_from is not None:
        try:
            earlier = json.loads(params_from.read_text())["models"]
        except (OSError, KeyError, json.JSONDecodeError) as exc:
            raise LongtailError(f"--params-from {params_from}: cannot read params ({exc})") from exc
        params = {name: earlier[name]["params"] for name in names if name in earlier}
    run_evaluation(
        EvaluationConfig(dataset=dataset, models=names, out=out, protocol=protocol, min_rating=min_rating,
                         allow_missing_items=allow_missing_items, tune=tune, ild=ild, params=params),
        console=console,
    )


def _print_stats(stats: dict) -> None:
    raw, proto = stats["raw"], stats["protocol"]
    table = Table(title=f"{stats['dataset']}: raw interactions", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("users", f"{raw['users']:,}"),
        ("items in catalogue", f"{raw['items_in_items_csv']:,}"),
        ("items interacted", f"{raw['items_interacted']:,}"),
        ("interactions", f"{raw['interactions']:,}"),
        ("duplicate user-item pairs", f"{raw['duplicate_user_item_pairs']:,}"),
        ("density", f"{raw['density']:.4%}"),
        ("time range (UTC)", f"{raw['time_min_utc']} .. {raw['time_max_utc']}"
         if raw["time_min_utc"] else f"sequence positions 0..{raw.get('sequence_position_max')}"),
        ("per user: median / mean / max",
         "{median:g} / {mean:.1f} / {max}".format(**raw["interactions_per_user"])),
        ("per item: median / mean / max",
         "{median:g} / {mean:.1f} / {max}".format(**raw["interactions_per_item"])),
        ("items covering 20% of interactions", f"{raw['head_items_covering_20pct_interactions']:,}"),
        ("top 20% items' share of interactions", f"{raw['top20pct_items_share_of_interactions']:.1%}"),
        ("items with < 5 interactions", f"{raw['items_lt5_interactions']:,}"),
        ("Gini of item popularity", f"{raw['gini_item_popularity']:.3f}"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    split = proto["split"]
    table = Table(title=f"protocol {proto['protocol']} (positives: rating >= {proto['min_rating']:g})")
    for column in ("part", "positives", "users"):
        table.add_column(column, justify="right")
    table.add_row("train", f"{split['train']:,}", "")
    table.add_row("valid", f"{split['valid']:,}", f"{split['valid_users']:,}")
    table.add_row("test", f"{split['test']:,}", f"{split['test_users']:,}")
    console.print(table)
    table = Table(title="popularity buckets (train+valid)")
    for column in ("bucket", "items", "share of catalogue", "share of positives"):
        table.add_column(column, justify="right")
    for name, bucket in proto["buckets"].items():
        table.add_row(name, f"{bucket['items']:,}", f"{bucket['share_of_catalogue']:.1%}",
                      f"{bucket['share_of_positives']:.1%}")
    console.print(table)


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
