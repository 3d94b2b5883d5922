"""Command-line interface: a thin typer layer over the library, one module per group of commands
(``data``, ``evaluation``, ``finetune``, ``text``, ``serving``, ``people``); importing the package registers them."""

from __future__ import annotations

from longtail.cli import data, evaluation, finetune, people, serving, text  # noqa: F401  (registers the commands)
from longtail.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console-script entry
    app()
