"""Fixtures of the data-layer tests: a writer of small dataset folders in any supported format."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest


def write_folder(folder: Path, files: dict[str, str | bytes | pd.DataFrame]) -> Path:
    """Write a dataset folder: text/bytes as is; a DataFrame as CSV, CSV.gz, Parquet or JSON Lines
    according to the file name."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        if isinstance(content, pd.DataFrame):
            if name.endswith(".parquet"):
                content.to_parquet(path, index=False)
            elif name.endswith((".jsonl", ".jsonl.gz")):
                text = "".join(json.dumps(rec) + "\n" for rec in _records(content))
                path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
            elif name.endswith(".csv.gz"):
                path.write_bytes(gzip.compress(content.to_csv(index=False).encode()))
            else:
                content.to_csv(path, index=False)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts; NaN becomes null (pandas' to_json would do the same, less visibly)."""
    out = []
    for rec in frame.to_dict(orient="records"):
        out.append({k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()})
    return out


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10**6))

    def make(files: dict[str, str | bytes | pd.DataFrame], name: str | None = None) -> Path:
        return write_folder(tmp_path / (name or f"ds{next(counter)}"), files)

    return make
