"""`longtail evaluate` and `longtail tradeoff`: measured numbers, tuned on valid, reported on test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from longtail.cli.common import (
    AllowMissingOpt,
    DatasetOpt,
    EncoderOpt,
    KeepSeenOpt,
    MinRatingOpt,
    ProtocolOpt,
    SentimentMethodOpt,
    SentimentWeightOpt,
    app,
    console,
    handle_errors,
)
from longtail.cli.scale import AddressOpt, BackendOpt, WorkersOpt
from longtail.errors import LongtailError


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
    params_from: Annotated[Optional[Path], typer.Option(help="Reuse the params (and text fallback) of an earlier metrics.json or "
                                                             "a chosen.json, e.g. the shipped datasets/ml-latest-small/chosen.json (no tuning).")] = None,
    write_chosen: Annotated[Optional[Path], typer.Option(help="Also write the params chosen on valid, with their fingerprints, "
                                                              "as a chosen.json for --params-from (`make chosen`).")] = None,
    ild: Annotated[bool, typer.Option(help="Compute ild@K (encodes items.text once; cached).")] = True,
    rerank: Annotated[Optional[str], typer.Option(help="Re-rank each model's candidates: mmr | dpp | calibrated | xquad.")] = None,
    diversity: Annotated[float, typer.Option(help="Re-ranking knob λ in [0, 1]: 0 = the model's ranking, 1 = most diverse / calibrated.")] = 0.0,
    candidates: Annotated[int, typer.Option(help="How many of the model's top items the re-ranker chooses from.")] = 200,
    sentiment_weight: SentimentWeightOpt = 0.0,
    sentiment_method: SentimentMethodOpt = "vader",
    backend: BackendOpt = "local",
    workers: WorkersOpt = 2,
    address: AddressOpt = None,
    encoder: EncoderOpt = None,
) -> None:
    """Tune on valid, refit on train+valid, rank the full catalogue for test users; write the protocol's outputs.

    With --backend ray the test users are ranked and scored in shards on Ray workers (same numbers)."""
    from longtail.cli.scale import backend as open_backend
    from longtail.errors import ConfigError
    from longtail.eval.runner import EvaluationConfig, run_evaluation

    engine = open_backend(backend, workers, address)  # a missing ray fails before any fitting
    names = [m.strip() for m in models.split(",") if m.strip()]
    params, fallback = params_from_metrics(params_from, names) if params_from is not None else ({}, {})
    if rerank is None and diversity != 0.0:
        raise ConfigError("--diversity needs --rerank (mmr | dpp | calibrated | xquad)")
    if write_chosen is not None and (params_from is not None or not tune or rerank is not None or sentiment_weight
                                     or encoder is not None or protocol != "temporal"):
        raise ConfigError("--write-chosen needs a plain tuning run: temporal protocol, no --params-from, --no-tune, "
                          "--rerank, --sentiment-weight or --encoder")
    config = EvaluationConfig(dataset=dataset, models=names, out=out, protocol=protocol, keep_seen=keep_seen,
                              min_rating=min_rating, allow_missing_items=allow_missing_items, tune=tune, ild=ild,
                              params=params, fallback=fallback, rerank=rerank, diversity=diversity,
                              candidates=candidates, sentiment_weight=sentiment_weight,
                              sentiment_method=sentiment_method, encoder=encoder)
    if engine.name == "local":
        payload = run_evaluation(config, console=console)
    else:
        from longtail.scale.evaluate import ShardedEvaluate

        with engine:
            payload = run_evaluation(config, console=console, rank_test=ShardedEvaluate(engine))
    if write_chosen is not None:
        from longtail.eval.chosen import context, write_chosen as write

        settings = context(dataset, protocol=protocol, min_rating=min_rating, keep_seen=keep_seen)
        console.print(f"wrote {write(write_chosen, payload, settings)} (params chosen on valid, fingerprinted)")


def params_from_metrics(path: Path, names: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The chosen params and text-fallback settings of ``names`` in an earlier metrics.json or a
    chosen.json (models it lacks are left out); a chosen.json older than the code is named."""
    earlier = _models_in(path)
    _warn_if_stale(path, [name for name in names if name in earlier])
    found = [name for name in names if name in earlier]
    return ({name: earlier[name]["params"] for name in found},
            {name: earlier[name].get("fallback", {}) for name in found})


def _warn_if_stale(path: Path, names: list[str]) -> None:
    """Say so when a chosen.json's fingerprints no longer match the code (the params still run:
    they are what valid chose before, just not for today's grids)."""
    from longtail.eval.chosen import REGENERATE, stale_models

    stale = {name: why for name, why in stale_models(path).items() if name in names}
    if stale:
        listed = ", ".join(f"{name} ({why})" for name, why in stale.items())
        console.print(f"[yellow]warning: {path} is stale for {listed}; regenerate with `{REGENERATE}`[/yellow]")


def sentiment_from_metrics(path: Path, name: str) -> float:
    """The sentiment weight an earlier ``evaluate`` ran ``name`` with (0 when it had none)."""
    return float(_models_in(path).get(name, {}).get("sentiment", {}).get("weight", 0.0))


def _models_in(path: Path) -> dict[str, Any]:
    """The per-model entries of a metrics.json, or one clear error."""
    try:
        return json.loads(path.read_text())["models"]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise LongtailError(f"--params-from {path}: cannot read params ({exc})") from exc


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
    encoder: EncoderOpt = None,
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
        found, _ = params_from_metrics(params_from, [model])
        if model not in found:
            raise ConfigError(f"--params-from {params_from} has no params for model {model!r}")
        params = found[model]
    run_tradeoff(
        TradeoffConfig(dataset=dataset, model=model, out=out,
                       methods=[m.strip() for m in methods.split(",") if m.strip()], grid=values,
                       n_candidates=candidates, params=params, tune=tune, keep=keep, min_rating=min_rating,
                       allow_missing_items=allow_missing_items, encoder=encoder),
        console=console,
    )
