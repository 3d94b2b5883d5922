"""`longtail similar` and `longtail embed`: the text layer from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from longtail.cli.common import AllowMissingOpt, DatasetOpt, EncoderOpt, app, console, handle_errors
from longtail.cli.scale import AddressOpt, BackendOpt, WorkersOpt


@app.command()
@handle_errors
def similar(
    title: Annotated[str, typer.Argument(help="A title as you would type it, e.g. \"Toy Story\".")],
    dataset: DatasetOpt = "ml-latest-small",
    k: Annotated[int, typer.Option("--k", "-k", help="How many similar items to list.")] = 10,
    min_score: Annotated[float, typer.Option(help="Fuzzy title match needed (0-100).")] = 85.0,
    allow_missing_items: AllowMissingOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    encoder: EncoderOpt = None,
) -> None:
    """Items most similar to a title by text embedding (fuzzy title match; cached vectors)."""
    from longtail.data import load_dataset
    from longtail.text import TextEncoder
    from longtail.text.similar import similar_payload, similar_table, similar_to_title

    ds = load_dataset(dataset, allow_missing_items=allow_missing_items)
    popularity = ds.item_counts + ds.test.item_counts()  # equal title matches: the better known
    match, neighbours = similar_to_title(ds.items, title, k=k, min_score=min_score, popularity=popularity,
                                         encoder=TextEncoder(encoder))
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
    backend: BackendOpt = "local",
    workers: WorkersOpt = 2,
    address: AddressOpt = None,
    scratch: Annotated[Optional[Path], typer.Option(help="With --backend ray: folder for the Parquet shards "
                                                         "(on a cluster: one every node can write).")] = None,
    encoder: EncoderOpt = None,
) -> None:
    """Encode the catalogue's item texts once and cache them on disk (later commands reuse them)."""
    from longtail.cli.scale import backend as open_backend
    from longtail.data import load_dataset
    from longtail.scale.embed import embed_catalogue_on
    from longtail.text import TextEncoder

    engine = open_backend(backend, workers, address)  # a missing ray fails before any loading
    ds = load_dataset(dataset, allow_missing_items=allow_missing_items)
    with engine:
        text_encoder = TextEncoder(encoder)
        _, report = embed_catalogue_on(engine, ds.items, scratch=scratch, encoder=text_encoder)
    if as_json:
        print(json.dumps({"dataset": ds.name, "backend": engine.name, "encoder": text_encoder.fingerprint,
                          **report.as_dict()}, indent=2))
    else:
        console.print(f"{ds.name}: {report.summary()}")
