"""What every command shares: the typer app, the consoles, common options and the error mapping.

Library errors (`LongtailError`) become a one-line red message and a non-zero exit, never a traceback;
any URL in it is shown without its password (``common.urls``), whichever message quoted it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from longtail.common.urls import redact_text
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
            err_console.print(f"[bold red]error:[/] {escape(redact_text(str(exc)))}", highlight=False, markup=True,
                              soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper  # type: ignore[return-value]

SentimentWeightOpt = Annotated[float, typer.Option(help="Weight positives by their review's sentiment s in [-1, 1]: "
                                                        "max(0.05, 1 + a s); 0 = off (ratings stand in without reviews).")]
SentimentMethodOpt = Annotated[str, typer.Option(help="Sentiment scorer: vader | textblob (dev extra).")]
EncoderOpt = Annotated[Optional[Path], typer.Option(
    "--encoder", help="Text encoder: a `longtail finetune` output or a local sentence-transformers folder "
                      "(default: the bundled all-MiniLM-L6-v2).")]
