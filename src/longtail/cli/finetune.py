"""`longtail finetune`: adapt the text encoder to a dataset's behaviour (full or LoRA)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from longtail.cli.common import AllowMissingOpt, DatasetOpt, MinRatingOpt, ProtocolOpt, app, console, handle_errors


@app.command()
@handle_errors
def finetune(
    dataset: DatasetOpt = "ml-latest-small",
    mode: Annotated[str, typer.Option(help="lora (adapter only, a few MB) | full (all weights).")] = "lora",
    out: Annotated[Path, typer.Option(help="Output folder: encoder/ (pass it as --encoder) and training/.")] = Path("out/finetune"),
    base: Annotated[Optional[str], typer.Option(help="Base encoder: a local sentence-transformers folder or "
                                                     "package:NAME (default: the bundled all-MiniLM-L6-v2).")] = None,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    alpha: Annotated[int, typer.Option(help="LoRA alpha (scaling = alpha / rank).")] = 16,
    targets: Annotated[str, typer.Option(help="LoRA target modules, comma-separated.")] = "query,key,value,dense",
    lora_layers: Annotated[Optional[int], typer.Option(help="Adapt only the top N transformer layers (fewer: faster steps).")] = 2,
    learning_rate: Annotated[Optional[float], typer.Option(help="Default: 1e-4 (lora), 3e-5 (full).")] = None,
    batch_size: Annotated[int, typer.Option(help="Pairs per step (the other rows are the negatives).")] = 64,
    epochs: Annotated[float, typer.Option(help="Passes over the pairs.")] = 1.0,
    max_steps: Annotated[Optional[int], typer.Option(help="Cap on steps (instead of epochs).")] = None,
    max_minutes: Annotated[float, typer.Option(help="Wall-clock budget, resumed runs included.")] = 15.0,
    eval_every: Annotated[int, typer.Option(help="Steps between validations (valid ndcg@20 of semantic-attn).")] = 40,
    patience: Annotated[int, typer.Option(help="Validations without improvement before stopping.")] = 2,
    adjustment: Annotated[float, typer.Option(help="Popularity correction of in-batch logits (0 = plain MNRL, 1 = log q).")] = 1.0,
    tail_boost: Annotated[float, typer.Option(help="Few-shot: pairs whose positive is a tail item are this many times as likely.")] = 5.0,
    history_len: Annotated[int, typer.Option(help="Titles in a history anchor.")] = 5,
    pairs: Annotated[str, typer.Option(help="Behaviour pairs: item (item -> next item), history (recent titles -> next item).")] = "item,history",
    seed: int = 0,
    threads: Annotated[Optional[int], typer.Option(help="torch threads (default: torch's).")] = None,
    restart: Annotated[bool, typer.Option(help="Discard a checkpoint in --out and train from scratch.")] = False,
    protocol: ProtocolOpt = "temporal",
    params_from: Annotated[Optional[Path], typer.Option(help="semantic-attn's params for the validation probe "
                                                             "from an `evaluate` metrics.json (default: its defaults).")] = None,
    min_rating: MinRatingOpt = 4.0,
    allow_missing_items: AllowMissingOpt = False,
) -> None:
    """Adapt the encoder to TRAIN behaviour; keep the version best on valid; resume after a kill.

    Pairs (item, next item) and (recent titles, next item) from train, in-batch negatives; early
    stopping on valid ndcg@20 of semantic-attn; writes OUT/encoder, OUT/training/report.json and
    loss.png, and prints frozen vs adapted on valid. Fine-tune under the protocol you will evaluate
    with: under cold-items the test items' interactions must not reach the encoder either."""
    from longtail.data import load_dataset
    from longtail.eval.encoder_check import valid_scorer
    from longtail.text.finetune import FinetuneConfig, behaviour_pairs
    from longtail.text.finetune import finetune as run_finetune
    from longtail.text.finetune.report import before_after, plot_training

    config = FinetuneConfig(
        mode=mode, base=base, rank=rank, alpha=alpha, lora_layers=lora_layers, target_modules=tuple(t.strip() for t in targets.split(",") if t.strip()),
        learning_rate=learning_rate, batch_size=batch_size, epochs=epochs, max_steps=max_steps,
        max_minutes=max_minutes, eval_every=eval_every, patience=patience, adjustment=adjustment,
        tail_boost=tail_boost, history_len=history_len, seed=seed, num_threads=threads,
        pairs=tuple(k.strip() for k in pairs.split(",") if k.strip()))
    ds = load_dataset(dataset, protocol=protocol, min_rating=min_rating, allow_missing_items=allow_missing_items)
    probe: dict[str, Any] = {}
    if params_from is not None:
        from longtail.cli.evaluation import params_from_metrics

        probe = params_from_metrics(params_from, ["semantic-attn"])[0].get("semantic-attn", {})
    texts, score = valid_scorer(ds, params=probe)
    from longtail.text.finetune.pairs import KINDS

    behaviour = behaviour_pairs(ds.train, ds.items["title"].fillna("").astype(str).tolist(), history_len=history_len,
                                kinds=tuple(KINDS[k] for k in config.pairs))
    console.print(f"{ds.name} ({protocol}): {len(behaviour):,} behaviour pairs from train; mode {mode}")
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("fine-tuning", total=None)

        def started(trainable: int, total: int, step: int, steps: int) -> None:
            console.print(f"trainable parameters: {trainable:,} of {total:,} ({trainable / total:.2%})"
                          + (f"; resuming at step {step}" if step else ""))
            progress.update(task, total=steps, completed=step)

        def stepped(step: int, steps: int, loss: float) -> None:
            progress.update(task, completed=step, description=f"fine-tuning (loss {loss:.3f})")

        result = run_finetune(behaviour, texts, out, config, validate=score, restart=restart,
                              on_start=started, on_step=stepped)
    plot = plot_training(result, out / "training" / "loss.png", title=f"{ds.name}: {mode} fine-tuning")
    console.print(_table(before_after(result), ds.name))
    console.print(f"stopped: {result.stopped} after {result.steps}/{result.total_steps} steps, "
                  f"{result.seconds / 60:.1f} min, peak memory {result.peak_rss_mb:,.0f} MB")
    console.print(f"encoder: {result.encoder} (pass --encoder {out}); curves: {plot}")


def _table(rows: list[dict[str, Any]], name: str) -> Table:
    table = Table(title=f"{name}: valid ndcg@20 of semantic-attn, frozen vs adapted encoder")
    for column in ("encoder", "step", "overall", "tail", "cold"):
        table.add_column(column, justify="left" if column == "encoder" else "right")
    for row in rows:
        relative = row["encoder"] == "relative change"
        cells = [row.get("ndcg@20"), row.get("tail"), row.get("cold")]
        text = [("—" if v is None or v != v else (f"{v:+.1%}" if relative else f"{v:.4f}")) for v in cells]
        table.add_row(row["encoder"], "" if row["step"] is None else str(row["step"]), *text)
    return table
