"""`longtail recommend` and `longtail profile`: what the library says about one person, readable.

Both read a trained artifact (``--artifact``, what ``longtail train`` writes and ``serve`` serves) or
fit on a dataset's positives on the spot (``--dataset``). ``recommend`` ranks through the service's
own code (``serve.ranking.recommend`` over a ``LiveState``): what it prints is what ``/recommend``
answers and what ``evaluate`` measures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from longtail.cli.common import (
    DatasetOpt,
    MinRatingOpt,
    app,
    console,
    err_console,
    handle_errors,
)
from longtail.errors import ConfigError

ArtifactOpt = Annotated[Optional[Path], typer.Option(help="A trained artifact (`longtail train`); else fit on --dataset.")]
UserOpt = Annotated[Optional[str], typer.Option("--user", "-u", help="The user's id.")]
PickOpt = Annotated[Optional[str], typer.Option(help="Pick the user by a rule instead: head-heavy | tail-leaning "
                                                     "(the largest head / tail+cold share among users with a "
                                                     "history of at least the median length).")]
ModelOpt = Annotated[str, typer.Option(help="Model fitted with --dataset (default: the flagship longtail).")]
ParamsFromOpt = Annotated[Optional[Path], typer.Option(help="With --dataset: take the params and text fallback "
                                                            "chosen on valid from a metrics.json of `evaluate`.")]


def live_state(artifact: Path | None, dataset: str, model: str, params_from: Path | None, min_rating: float) -> Any:
    """The service's live state (no store) from ``artifact``, or from ``model`` fitted on every
    positive of ``dataset`` (with the params an ``evaluate`` run chose on valid, if given)."""
    from longtail.cli.evaluation import params_from_metrics
    from longtail.serve.bundle import load_bundle, train_bundle
    from longtail.serve.state import LiveState

    if artifact is not None:
        return LiveState(load_bundle(artifact))
    params: dict[str, Any] = {}
    fallback: dict[str, Any] = {}
    if params_from is not None:
        chosen, fallbacks = params_from_metrics(params_from, [model])
        params, fallback = chosen.get(model, {}), fallbacks.get(model, {})
    with console.status(f"fitting {model} on {dataset} (every positive; `longtail train` saves one to reuse)"):
        return LiveState(train_bundle(dataset, model, params, min_rating=min_rating, fallback=fallback))


def user_of(state: Any, user: str | None, pick: str | None) -> str:
    """The user id asked for (checked against the artifact's users) or picked by ``pick``."""
    from longtail.data.buckets import PICKS, pick_user

    if (user is None) == (pick is None):
        raise ConfigError("give exactly one of --user ID and --pick head-heavy|tail-leaning")
    ids = state.histories.ids
    if pick is not None:
        if pick not in PICKS:
            raise ConfigError(f"--pick must be one of {', '.join(PICKS)}, got {pick!r}")
        return str(ids[pick_user(state.bundle.train.csr, state.buckets, pick)])
    if state.histories.index_of(user) is None:
        examples = ", ".join(repr(u) for u in sorted(ids[:1000])[:3])
        raise ConfigError(f"unknown user {user!r}: the {state.bundle.manifest['dataset']['name']} model knows "
                          f"{len(ids):,} users (e.g. {examples})")
    return str(user)


def bucket_name(state: Any, item: int) -> str:
    """head / tail / cold of an item as the artifact counts it; an item posted since is cold."""
    from longtail.data.buckets import BUCKET_NAMES, COLD

    return BUCKET_NAMES[int(state.buckets[item]) if item < len(state.buckets) else COLD]


@app.command()
@handle_errors
def recommend(
    user: UserOpt = None,
    pick: PickOpt = None,
    dataset: DatasetOpt = "ml-latest-small",
    artifact: ArtifactOpt = None,
    model: ModelOpt = "longtail",
    params_from: ParamsFromOpt = None,
    k: Annotated[int, typer.Option("--k", "-k", help="How many items.")] = 10,
    explain: Annotated[bool, typer.Option(help="Say why each item is there.")] = True,
    min_rating: MinRatingOpt = 4.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Top-k items for one user with titles, scores, bucket (head / tail / cold) and the reason."""
    from longtail.serve.ranking import explain as reason
    from longtail.serve.ranking import recommend as rank

    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    state = live_state(artifact, dataset, model, params_from, min_rating)
    user_id = user_of(state, user, pick)
    query, picks = rank(state, user_id, k)
    rows = [{"rank": r + 1, "item_id": state.catalogue.ids[p.item], "title": state.catalogue.titles[p.item],
             "score": round(p.score, 6), "bucket": bucket_name(state, p.item), "source": p.source,
             **({"reason": reason(state, p)} if explain else {})} for r, p in enumerate(picks)]
    history = [bucket_name(state, int(i)) for i in query.items]
    summary = {"user_id": user_id, "model": state.model.name, "history": len(history),
               "history_mix": {b: history.count(b) for b in ("head", "tail", "cold")}}
    if as_json:
        print(json.dumps({**summary, "items": rows}, indent=2))
        return
    mix = ", ".join(f"{n} {b}" for b, n in summary["history_mix"].items() if n)
    table = Table(title=f"{state.model.name} for user {user_id} (history: {len(history)} items; {mix})")
    for column in ("#", "title", "score", "bucket", "source", *(("why",) if explain else ())):
        table.add_column(column, justify="right" if column in ("#", "score") else "left", overflow="fold")
    for row in rows:
        table.add_row(str(row["rank"]), row["title"], f"{row['score']:.4f}", row["bucket"], row["source"],
                      *((row["reason"],) if explain else ()))
    console.print(table)
    if not rows:
        err_console.print("no item left to recommend (the user has seen the whole catalogue)")
