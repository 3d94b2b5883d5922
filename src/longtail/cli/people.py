"""`longtail recommend` and `longtail profile`: what the library says about one person, readable.

Both read a trained artifact (``--artifact``, what ``longtail train`` writes and ``serve`` serves) or
fit on a dataset's positives on the spot (``--dataset``). ``recommend`` ranks through the service's
own code (``serve.ranking.recommend`` over a ``LiveState``): what it prints is what ``/recommend``
answers and what ``evaluate`` measures.
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Sequence
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.table import Table

from longtail.cli.common import (
    DatasetOpt,
    EncoderOpt,
    MinRatingOpt,
    app,
    console,
    err_console,
    handle_errors,
)
from longtail.cli.scale import AddressOpt, BackendOpt, ShardUsersOpt, WorkersOpt
from longtail.errors import ConfigError

ArtifactOpt = Annotated[Optional[Path], typer.Option(help="A trained artifact (`longtail train`); else fit on --dataset.")]
UserOpt = Annotated[Optional[str], typer.Option("--user", "-u", help="The user's id.")]
PickOpt = Annotated[Optional[str], typer.Option(help="Pick the user by a rule instead: head-heavy | tail-leaning "
                                                     "(the largest head / tail+cold share among users with a "
                                                     "history of at least the median length).")]
ModelOpt = Annotated[str, typer.Option(help="Model fitted with --dataset (default: the flagship longtail).")]
ParamsFromOpt = Annotated[Optional[Path], typer.Option(help="With --dataset: take the params and text fallback "
                                                            "chosen on valid from a metrics.json of `evaluate`.")]


def live_state(artifact: Path | None, dataset: str, model: str, params_from: Path | None, min_rating: float,
               encoder: Path | None = None) -> Any:
    """The service's live state (no store) from ``artifact``, or from ``model`` fitted on every
    positive of ``dataset`` (with the params an ``evaluate`` run chose on valid, if given)."""
    from longtail.cli.evaluation import params_from_metrics, sentiment_from_metrics
    from longtail.serve.bundle import load_bundle, train_bundle
    from longtail.serve.state import LiveState

    if artifact is not None:
        return LiveState(load_bundle(artifact))
    params: dict[str, Any] = {}
    fallback: dict[str, Any] = {}
    sentiment = 0.0
    if params_from is not None:
        chosen, fallbacks = params_from_metrics(params_from, [model])
        params, fallback = chosen.get(model, {}), fallbacks.get(model, {})
        sentiment = sentiment_from_metrics(params_from, model)  # chosen with the params
    with console.status(f"fitting {model} on {dataset} (every positive; `longtail train` saves one to reuse)"):
        return LiveState(train_bundle(dataset, model, params, min_rating=min_rating, fallback=fallback,
                                      sentiment_weight=sentiment, encoder_path=encoder))


def choose_user(ids: Sequence[str], histories: Any, buckets: Any, user: str | None, pick: str | None,
                where: str) -> int:
    """The index of ``user`` in ``ids`` or of the user ``pick`` chooses (``data.buckets.pick_user``
    over ``histories``, users x items); a clear ``ConfigError`` naming ``where`` otherwise."""
    from longtail.data.buckets import PICKS, pick_user

    if (user is None) == (pick is None):
        raise ConfigError("give exactly one of --user ID and --pick head-heavy|tail-leaning")
    if pick is not None:
        if pick not in PICKS:
            raise ConfigError(f"--pick must be one of {', '.join(PICKS)}, got {pick!r}")
        return pick_user(histories, buckets, pick)
    position = {str(u): n for n, u in enumerate(ids)}.get(str(user))
    if position is None:
        examples = ", ".join(repr(str(u)) for u in sorted(ids[:1000])[:3])
        raise ConfigError(f"unknown user {user!r}: {where} knows {len(ids):,} users (e.g. {examples})")
    return position


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
    all_users: Annotated[bool, typer.Option(help="Top-k of every user as Parquet files in --out (no reasons).")] = False,
    out: Annotated[Optional[Path], typer.Option(help="With --all-users: the output folder.")] = None,
    backend: BackendOpt = "local",
    workers: WorkersOpt = 2,
    address: AddressOpt = None,
    shard_users: ShardUsersOpt = 256,
    encoder: EncoderOpt = None,
) -> None:
    """Top-k items for one user with titles, scores, bucket (head / tail / cold) and the reason;
    with --all-users, every user's top-k as Parquet (user_id, rank, item_id, score) + a manifest."""
    from longtail.cli.scale import backend as open_backend
    from longtail.cli.scale import recommend_all_users
    from longtail.serve.ranking import explain as reason
    from longtail.serve.ranking import recommend as rank

    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    if all_users:
        if user is not None or pick is not None or out is None:
            raise ConfigError("--all-users takes --out DIR and neither --user nor --pick")
        engine = open_backend(backend, workers, address)  # a missing ray fails before any fitting
        state = live_state(artifact, dataset, model, params_from, min_rating, encoder)
        recommend_all_users(state, out, k, engine, shard_users, str(artifact or dataset))
        return
    if backend != "local" or out is not None:
        raise ConfigError("--backend and --out go with --all-users")
    state = live_state(artifact, dataset, model, params_from, min_rating, encoder)
    ids = state.histories.ids
    user_id = str(ids[choose_user(ids, state.bundle.train.csr, state.buckets, user, pick,
                                  f"the {state.bundle.manifest['dataset']['name']} model")])
    query, picks = rank(state, user_id, k, explain=explain)
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


def profile_panel(profile: Any, user_id: str, dataset: str) -> Any:
    """The profile as a rich panel a person can read (catalogue text escaped: titles hold ``[``)."""
    from rich.markup import escape
    from rich.panel import Panel

    activity = profile.activity
    than = f" (more than {activity.percentile:.0%} of {dataset}'s users)" if activity.percentile is not None else ""
    words = escape(", ".join(word for word, _ in profile.keywords[:8]))
    lines = [f"[bold]{profile.n_items}[/] items, [bold]{activity.level}[/]{than}",
             "mix: " + ", ".join(f"{share:.0%} {bucket}" for bucket, share in profile.mix.items()),
             f"keywords: {words}  [dim]({profile.keyword_method})[/]"]
    if profile.genres:
        lines.append("genres: " + escape(", ".join(f"{name} {share:.0%}" for name, share in profile.genres[:6])))
    lines.append(f"interests ({len(profile.interests)}):")
    for interest in profile.interests:
        genre = f" [{interest.genre}]" if interest.genre else ""
        about = ", ".join(word for word, _ in interest.keywords)
        lines.append(escape(f"  - {len(interest.items)} items like \u201c{interest.representative_title}\u201d{genre}: {about}"))
    return Panel("\n".join(lines), title=escape(f"user {user_id}"), expand=False)


@app.command()
@handle_errors
def profile(
    user: UserOpt = None,
    pick: PickOpt = None,
    dataset: DatasetOpt = "ml-latest-small",
    method: Annotated[str, typer.Option(help="Keywords: keybert | tfidf (see docs/results.md).")] = "keybert",
    out: Annotated[Path, typer.Option(help="Folder for the PNG.")] = Path("out/profile"),
    min_rating: MinRatingOpt = 4.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
    encoder: EncoderOpt = None,
) -> None:
    """A person's profile from every positive they have: keywords, genres, head / tail / cold mix,
    activity, interests; a readable panel and a PNG (genre bars, their items on the popularity curve)."""
    from longtail.data import load_dataset
    from longtail.profile import ProfileContext, profile_user
    from longtail.profile.plot import plot_profile
    from longtail.text import TextEncoder, embed_items

    ds = load_dataset(dataset, min_rating=min_rating)
    everything = ds.train_valid + ds.test
    index = choose_user([str(u) for u in ds.users.ids], everything.csr, ds.buckets, user, pick, ds.name)
    user_id = str(ds.users.ids[index])
    mine = everything.users == index
    order = np.lexsort((everything.items[mine], everything.timestamps[mine]))
    items, times = everything.items[mine][order], everything.timestamps[mine][order]
    if len(items) == 0:
        raise ConfigError(f"user {user_id!r} has no positive (rating >= {min_rating:g}) to profile")
    with console.status("building the profile context (keyword vocabulary, cached after the first run)"):
        text_encoder = TextEncoder(encoder)
        context = ProfileContext.from_dataset(ds, embed_items(ds.items, encoder=text_encoder), method=method,
                                              encoder=text_encoder)
    found = profile_user(context, items.tolist(), times.tolist())
    png = plot_profile(found, ds.item_counts, items, out / f"profile_{ds.name}_{user_id}.png",
                       title=f"{ds.name}, user {user_id}")
    if as_json:
        print(json.dumps({"user_id": user_id, **found.to_dict(), "user": index, "plot": str(png)}, indent=2))
        return
    console.print(profile_panel(found, user_id, ds.name))
    console.print(f"plot: {png}")
