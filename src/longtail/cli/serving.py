"""`longtail train`, `longtail serve` and `longtail keys`: artifacts, the HTTP service and its API keys."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from longtail.cli.common import DatasetOpt, EncoderOpt, MinRatingOpt, SentimentMethodOpt, app, console, handle_errors
from longtail.cli.evaluation import params_from_metrics, sentiment_from_metrics
from longtail.errors import LongtailError

keys_app = typer.Typer(help="API keys of a service store (shown once, stored hashed).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
StoreOpt = Annotated[str, typer.Option(
    "--store", help="Service store: sqlite:///PATH (one server per file) or postgresql://USER@HOST:PORT/DB "
                    "(shared by several servers).")]


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
    sentiment_weight: Annotated[Optional[float], typer.Option(help="Weight positives by their review's sentiment "
                                                                   "(see evaluate); default: what --params-from chose, else 0.")] = None,
    sentiment_method: SentimentMethodOpt = "vader",
    encoder: EncoderOpt = None,
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
        earlier, fallbacks = params_from_metrics(params_from, [model])
        if model not in earlier:
            raise ConfigError(f"--params-from {params_from}: no entry for model {model!r}")
        chosen, fallback = {**earlier[model], **chosen}, fallbacks[model]
        if sentiment_weight is None:
            sentiment_weight = sentiment_from_metrics(params_from, model)
    bundle = train_bundle(dataset, model, chosen, fit_on=fit_on, min_rating=min_rating, fallback=fallback,
                          sentiment_weight=sentiment_weight or 0.0, sentiment_method=sentiment_method,
                          encoder_path=encoder)
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
    refit_every: Annotated[Optional[int], typer.Option(help="Refit in the background after N new events; swap it in.")] = None,
    apply_every_ms: Annotated[int, typer.Option(
        help="0: apply each POST /events to the model before answering (strict). T > 0: answer once stored "
             "and apply pending events in the background every T ms (they reach recommendations within T ms "
             "+ up to two applies' duration).")] = 0,
    apply_every: Annotated[Optional[int], typer.Option(
        help="With --apply-every-ms: also apply as soon as N events are pending.")] = None,
    log_level: Annotated[str, typer.Option(help="Server log level.")] = "info",
) -> None:
    """Run the HTTP service (one process: the live state lives in it); every connection is bounded."""
    from longtail.errors import ConfigError
    from longtail.serve import create_app
    from longtail.serve.server import Limits, run

    if apply_every_ms < 0 or (apply_every is not None and (apply_every < 1 or apply_every_ms == 0)):
        raise ConfigError("--apply-every-ms must be >= 0; --apply-every N >= 1, and only with --apply-every-ms > 0")

    limits = Limits(header_bytes=max_header_bytes, header_timeout_s=header_timeout, keep_alive_s=keep_alive,
                    body_bytes=max_body_bytes, body_timeout_s=body_timeout)
    application = create_app(artifact, store, max_body_bytes=limits.body_bytes, body_timeout_s=limits.body_timeout_s,
                             watch_s=watch, refit_every=refit_every, apply_every_ms=apply_every_ms,
                             apply_every=apply_every)
    console.print(f"serving {artifact} on http://{host}:{port} (limits: head {limits.header_bytes} B / "
                  f"{limits.header_timeout_s:g} s, body {limits.body_bytes} B / {limits.body_timeout_s:g} s, "
                  f"keep-alive {limits.keep_alive_s:g} s)")
    run(application, host, port, limits, log_level)


@keys_app.command("create")
@handle_errors
def keys_create(
    store: StoreOpt,
    scope: Annotated[str, typer.Option(help="read (recommendations, items, /metrics) | profile (also user histories) "
                                            "| write (also POST /events, /items; not histories) | admin (everything, "
                                            "/admin/* too).")] = "read",
    name: Annotated[str, typer.Option(help="A note saying whose key it is.")] = "",
    expires: Annotated[Optional[str], typer.Option(
        help="Refuse the key after this: a span (30d, 12h, 90m, 2w) or an ISO date (2027-01-31, UTC unless it "
             "says). Default: never.")] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from longtail.serve.keys import create_key, parse_expiry
    from longtail.serve.store import open_store

    until = None if expires is None else parse_expiry(expires)
    opened = open_store(store)
    try:
        print(create_key(opened, scope, name, expires=until))
    finally:
        opened.close()


@keys_app.command("list")
@handle_errors
def keys_list(store: StoreOpt) -> None:
    """List key ids, scopes, expiry and whether they are revoked (never the keys)."""
    from longtail.serve.store import open_store

    opened = open_store(store)
    try:
        rows = opened.list_keys()
    finally:
        opened.close()
    table = Table(title="API keys")
    for column in ("key_id", "scope", "name", "expires (UTC)", "revoked"):
        table.add_column(column)
    now = time.time()
    for row in rows:
        until = row["expires"]
        shown = "" if until is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(until))) + (
            " (expired)" if float(until) <= now else "")
        table.add_row(str(row["key_id"]), str(row["scope"]), str(row["name"]), shown, "yes" if row["revoked"] else "")
    console.print(table)


@keys_app.command("revoke")
@handle_errors
def keys_revoke(store: StoreOpt, key_id: Annotated[str, typer.Argument(help="The 8 hex characters after lt_.")]) -> None:
    """Revoke a key (a running service stops accepting it within 10 s)."""
    from longtail.serve.store import open_store

    opened = open_store(store)
    try:
        if not opened.revoke_key(key_id):
            raise LongtailError(f"no live key {key_id!r} in {opened.name}")  # its name: never the password
    finally:
        opened.close()
    console.print(f"revoked {key_id}")
