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
from rich.markup import escape
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
ProtocolOpt = Annotated[str, typer.Option(help="Split protocol: temporal | cold-items | leave-one-out.")]
KeepSeenOpt = Annotated[bool, typer.Option(help="Leave-one-out paper comparison mode: keep repeated interactions, "
                                                "rank history items too.")]
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
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
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


@app.command()
@handle_errors
def evaluate(
    dataset: DatasetOpt = "ml-latest-small",
    models: Annotated[str, typer.Option(help="Comma-separated model names, e.g. pop,itemknn,ease,longtail.")] = "pop,itemknn,als,bpr,ease,rp3beta,longtail",
    out: Annotated[Path, typer.Option(help="Output folder (metrics.json, runs/, qrels.tsv, plots).")] = Path("out/evaluate"),
    protocol: ProtocolOpt = "temporal",
    keep_seen: KeepSeenOpt = False,
    min_rating: MinRatingOpt = 4.0,
    allow_missing_items: AllowMissingOpt = False,
    tune: Annotated[bool, typer.Option(help="Grid-search each model on valid (else defaults).")] = True,
    params_from: Annotated[Optional[Path], typer.Option(help="Reuse the params of an earlier metrics.json (no tuning).")] = None,
    ild: Annotated[bool, typer.Option(help="Compute ild@K (encodes items.text once; cached).")] = True,
    rerank: Annotated[Optional[str], typer.Option(help="Re-rank each model's candidates: mmr | dpp | calibrated | xquad.")] = None,
    diversity: Annotated[float, typer.Option(help="Re-ranking knob λ in [0, 1]: 0 = the model's ranking, 1 = most diverse / calibrated.")] = 0.0,
    candidates: Annotated[int, typer.Option(help="How many of the model's top items the re-ranker chooses from.")] = 200,
) -> None:
    """Tune on valid, refit on train+valid, rank the full catalogue for test users; write the protocol's outputs."""
    from longtail.errors import ConfigError
    from longtail.eval.runner import EvaluationConfig, run_evaluation

    names = [m.strip() for m in models.split(",") if m.strip()]
    params, fallback = _params_from(params_from, names) if params_from is not None else ({}, {})
    if rerank is None and diversity != 0.0:
        raise ConfigError("--diversity needs --rerank (mmr | dpp | calibrated | xquad)")
    run_evaluation(
        EvaluationConfig(dataset=dataset, models=names, out=out, protocol=protocol, keep_seen=keep_seen,
                         min_rating=min_rating, allow_missing_items=allow_missing_items, tune=tune, ild=ild,
                         params=params, fallback=fallback, rerank=rerank, diversity=diversity, candidates=candidates),
        console=console,
    )


def _params_from(path: Path, names: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The chosen params and text-fallback settings of ``names`` in an earlier metrics.json
    (models it lacks are left out)."""
    try:
        earlier = json.loads(path.read_text())["models"]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise LongtailError(f"--params-from {path}: cannot read params ({exc})") from exc
    found = [name for name in names if name in earlier]
    return ({name: earlier[name]["params"] for name in found},
            {name: earlier[name].get("fallback", {}) for name in found})


@app.command()
@handle_errors
def tradeoff(
    dataset: DatasetOpt = "ml-latest-small",
    model: Annotated[str, typer.Option(help="The base model whose candidates are re-ranked.")] = "longtail",
    out: Annotated[Path, typer.Option(help="Output folder (tradeoff.json, selection.json, tradeoff.tsv, PNG).")] = Path("out/tradeoff"),
    methods: Annotated[str, typer.Option(help="Comma-separated re-rankers.")] = "mmr,dpp,calibrated,xquad",
    grid: Annotated[str, typer.Option(help="Comma-separated values of λ (0 is always added).")] = "0,0.05,0.1,0.15,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
    candidates: Annotated[int, typer.Option(help="How many of the model's top items the re-ranker chooses from.")] = 200,
    keep: Annotated[float, typer.Option(help="Choose the largest λ keeping this share of the λ=0 valid ndcg@20.")] = 0.9,
    tune: Annotated[bool, typer.Option(help="Grid-search the base model on valid (else defaults).")] = True,
    params_from: Annotated[Optional[Path], typer.Option(help="Take the base model's params from an earlier metrics.json (no tuning).")] = None,
    min_rating: MinRatingOpt = 4.0,
    allow_missing_items: AllowMissingOpt = False,
) -> None:
    """Sweep the diversity knob of every re-ranker: ndcg@20 against aplt@20, ild@20 and coverage@20 on
    valid and test; choose λ on valid, report it on test."""
    from longtail.errors import ConfigError
    from longtail.eval.tradeoff import TradeoffConfig, run_tradeoff

    try:
        values = [float(x) for x in grid.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"--grid must be comma-separated numbers, got {grid!r}") from exc
    params = None
    if params_from is not None:
        found, _ = _params_from(params_from, [model])
        if model not in found:
            raise ConfigError(f"--params-from {params_from} has no params for model {model!r}")
        params = found[model]
    run_tradeoff(
        TradeoffConfig(dataset=dataset, model=model, out=out,
                       methods=[m.strip() for m in methods.split(",") if m.strip()], grid=values,
                       n_candidates=candidates, params=params, tune=tune, keep=keep, min_rating=min_rating,
                       allow_missing_items=allow_missing_items),
        console=console,
    )


@app.command()
@handle_errors
def similar(
    title: Annotated[str, typer.Argument(help="A title as you would type it, e.g. \"Toy Story\".")],
    dataset: DatasetOpt = "ml-latest-small",
    k: Annotated[int, typer.Option("--k", "-k", help="How many similar items to list.")] = 10,
    min_score: Annotated[float, typer.Option(help="Fuzzy title match needed (0-100).")] = 85.0,
    allow_missing_items: AllowMissingOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Items most similar to a title by text embedding (fuzzy title match; cached vectors)."""
    from longtail.data import load_dataset
    from longtail.text.similar import similar_payload, similar_table, similar_to_title

    ds = load_dataset(dataset, allow_missing_items=allow_missing_items)
    popularity = ds.item_counts + ds.test.item_counts()  # equal title matches: the better known
    match, neighbours = similar_to_title(ds.items, title, k=k, min_score=min_score, popularity=popularity)
    if as_json:
        print(json.dumps(similar_payload(title, match, neighbours), indent=2))
    else:
        console.print(similar_table(ds.name, match, neighbours))


@app.command()
@handle_errors
def embed(
    dataset: DatasetOpt = "ml-latest-small",
    allow_missing_items: AllowMissingOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Encode the catalogue's item texts once and cache them on disk (later commands reuse them)."""
    from longtail.data import load_dataset
    from longtail.text.similar import embed_catalogue

    ds = load_dataset(dataset, allow_missing_items=allow_missing_items)
    _, report = embed_catalogue(ds.items)
    if as_json:
        print(json.dumps({"dataset": ds.name, **report.as_dict()}, indent=2))
    else:
        console.print(f"{ds.name}: {report.summary()}")


# -- serving: train an artifact, run the service, manage API keys --------------------------------
keys_app = typer.Typer(help="API keys of a service store (shown once, stored hashed).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
StoreOpt = Annotated[str, typer.Option("--store", help="Service store: sqlite:///PATH (WAL).")]


@app.command()
@handle_errors
def train(
    out: Annotated[Path, typer.Option(help="Artifact path (a symlink to a new version directory).")],
    dataset: DatasetOpt = "ml-latest-small",
    model: Annotated[str, typer.Option(help="Model name (default: the flagship longtail; pop, itemknn, bpr, ease, ...).")] = "longtail",
    params: Annotated[Optional[str], typer.Option(help='Hyper-parameters as JSON, e.g. \'{"k": 50}\'.')] = None,
    fit_on: Annotated[str, typer.Option(help="all (every positive) | train_valid (hold the test part out).")] = "all",
    params_from: Annotated[Optional[Path], typer.Option(help="Take the params and text fallback chosen on valid from a metrics.json of `evaluate`.")] = None,
    min_rating: MinRatingOpt = 4.0,
) -> None:
    """Fit a model and write a versioned, atomic service artifact for `longtail serve`.

    It holds the model, id vocabularies, catalogue, item vectors, popularity and histories, with a
    manifest of params, dataset and encoder fingerprints and checksums."""
    from longtail.errors import ConfigError
    from longtail.serve.bundle import save_bundle, train_bundle

    try:
        chosen = json.loads(params) if params else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--params is not JSON: {exc}") from exc
    if not isinstance(chosen, dict):
        raise ConfigError("--params must be a JSON object")
    fallback: dict[str, Any] = {}
    if params_from is not None:
        earlier, fallbacks = _params_from(params_from, [model])
        if model not in earlier:
            raise ConfigError(f"--params-from {params_from}: no entry for model {model!r}")
        chosen, fallback = {**earlier[model], **chosen}, fallbacks[model]
    bundle = train_bundle(dataset, model, chosen, fit_on=fit_on, min_rating=min_rating, fallback=fallback)
    path = save_bundle(bundle, out)
    console.print(f"artifact {path} -> {path.resolve().name}: {model} on {bundle.manifest['dataset']['name']} "
                  f"({len(bundle.item_ids):,} items, {len(bundle.user_ids):,} users, "
                  f"{len(bundle.train):,} positives)")


@app.command()
@handle_errors
def serve(
    artifact: Annotated[Path, typer.Option(help="Artifact written by `longtail train`.")],
    store: StoreOpt,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted (413 above).")] = 1 << 20,
    max_header_bytes: Annotated[int, typer.Option(help="Largest request line + headers (431 and close above).")] = 16_384,
    header_timeout: Annotated[float, typer.Option(help="Request line + headers must arrive within this many s (else closed).")] = 10.0,
    body_timeout: Annotated[float, typer.Option(help="A body must arrive whole within this many s (408).")] = 20.0,
    keep_alive: Annotated[float, typer.Option(help="Close an idle keep-alive connection after this many s.")] = 5.0,
    watch: Annotated[Optional[float], typer.Option(help="Poll the artifact link every N s; swap in new versions.")] = None,
    log_level: Annotated[str, typer.Option(help="Server log level.")] = "info",
) -> None:
    """Run the HTTP service (one process: the live state lives in it); every connection is bounded."""
    from longtail.serve import create_app
    from longtail.serve.server import Limits, run

    limits = Limits(header_bytes=max_header_bytes, header_timeout_s=header_timeout, keep_alive_s=keep_alive,
                    body_bytes=max_body_bytes, body_timeout_s=body_timeout)
    application = create_app(artifact, store, max_body_bytes=limits.body_bytes, body_timeout_s=limits.body_timeout_s,
                             watch_s=watch)
    console.print(f"serving {artifact} on http://{host}:{port} (limits: head {limits.header_bytes} B / "
                  f"{limits.header_timeout_s:g} s, body {limits.body_bytes} B / {limits.body_timeout_s:g} s, "
                  f"keep-alive {limits.keep_alive_s:g} s)")
    run(application, host, port, limits, log_level)


@keys_app.command("create")
@handle_errors
def keys_create(
    store: StoreOpt,
    scope: Annotated[str, typer.Option(help="read (GET, /recommend) | write (also POST /items, /events).")] = "read",
    name: Annotated[str, typer.Option(help="A note saying whose key it is.")] = "",
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from longtail.serve.keys import create_key
    from longtail.serve.store import Store

    opened = Store(store)
    try:
        print(create_key(opened, scope, name))
    finally:
        opened.close()


@keys_app.command("list")
@handle_errors
def keys_list(store: StoreOpt) -> None:
    """List key ids, scopes and whether they are revoked (never the keys)."""
    from longtail.serve.store import Store

    opened = Store(store)
    try:
        rows = opened.list_keys()
    finally:
        opened.close()
    table = Table(title="API keys")
    for column in ("key_id", "scope", "name", "revoked"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["key_id"]), str(row["scope"]), str(row["name"]), "yes" if row["revoked"] else "")
    console.print(table)


@keys_app.command("revoke")
@handle_errors
def keys_revoke(store: StoreOpt, key_id: Annotated[str, typer.Argument(help="The 8 hex characters after lt_.")]) -> None:
    """Revoke a key (a running service stops accepting it within 10 s)."""
    from longtail.serve.store import Store

    opened = Store(store)
    try:
        if not opened.revoke_key(key_id):
            raise LongtailError(f"no live key {key_id!r} in {store}")
    finally:
        opened.close()
    console.print(f"revoked {key_id}")


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
