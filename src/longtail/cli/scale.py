"""What the commands with ``--backend local|ray`` share: the options and the batch recommend job.

``longtail.scale`` (and Ray through it) is imported inside the functions only, so the other
commands never pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from longtail.cli.common import console

BackendOpt = Annotated[str, typer.Option(help="Where the work runs: local (this process) | ray (needs longtail[ray]).")]
WorkersOpt = Annotated[int, typer.Option(help="With --backend ray: workers (CPUs of the local Ray instance, "
                                              "tasks or encoders at once).")]
AddressOpt = Annotated[Optional[str], typer.Option(help="With --backend ray: join this running Ray cluster "
                                                        "(e.g. auto, ray://HOST:10001) instead of starting one.")]
ShardUsersOpt = Annotated[int, typer.Option(help="With --all-users: users per Parquet file (and per task).")]


def backend(name: str, workers: int, address: str | None) -> Any:
    """The (not yet entered) ``scale.backend.Backend`` the options ask for."""
    from longtail.scale.backend import open_backend

    return open_backend(name, workers, address)


def recommend_all_users(state: Any, out: Path, k: int, engine: Any, shard_users: int, source: str) -> dict[str, Any]:
    """Top-``k`` of every user of the live ``state`` (no explanations) through the service's own
    pipeline, written by ``scale.batch.recommend_all`` into ``out``; prints a one-line summary."""
    import numpy as np

    from longtail.scale.batch import BATCH_USERS, BatchJob, recommend_all
    from longtail.serve.ranking import pipeline_of, queries_of

    user_ids = list(state.histories.ids)
    job = BatchJob(pipeline_of(state, None), queries_of(state, user_ids), np.asarray(user_ids, dtype=object),
                   np.asarray(state.catalogue.ids, dtype=object), k=k, batch_size=min(BATCH_USERS, shard_users))
    about = {"model": state.model.name, "source": source,
             "dataset": state.bundle.manifest.get("dataset", {}).get("name")}
    with engine, console.status(f"ranking {len(user_ids):,} users on the {engine.name} backend"):
        manifest = recommend_all(engine, job, out, shard_users=shard_users, about=about)
    run = manifest["run"]
    console.print(f"{manifest['users']:,} users x top-{k} ({manifest['rows']:,} rows) in {len(manifest['files'])} "
                  f"Parquet files under {out} ({run['backend']}, {run['workers']} worker(s), {run['seconds']:.1f} s); "
                  f"manifest: {out / 'manifest.json'}")
    return manifest
