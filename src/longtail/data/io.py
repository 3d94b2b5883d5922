"""Read a dataset directory (CSV, CSV.gz, Parquet, JSON Lines) into validated pandas frames.

Reading is columnar (pyarrow) so validation costs little on top of a bare ``pandas.read_csv``;
every check is vectorised and only the error path looks at single rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from longtail.data.validate import (
    ITEM_COLUMNS,
    INTERACTION_COLUMNS,
    validate_catalogue_membership,
    validate_interactions,
    validate_items,
)
from longtail.errors import DataError

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".jsonl", ".jsonl.gz")
ID_COLUMNS = ("user_id", "item_id")


@dataclass(frozen=True)
class RawData:
    """Validated raw tables of one dataset, before the positives rule and the split."""

    name: str
    interactions: pd.DataFrame  # user_id:str, item_id:str, timestamp:int64, rating:float64 (NaN = empty)
    items: pd.DataFrame  # item_id:str, title:str, text:str, optional extra columns
    interactions_path: Path
    items_path: Path


def find_table(directory: Path, stem: str) -> Path:
    """Return ``directory/stem.<suffix>`` for the first supported suffix that exists."""
    for suffix in SUFFIXES:
        path = directory / f"{stem}{suffix}"
        if path.is_file():
            return path
    tried = ", ".join(f"{stem}{s}" for s in SUFFIXES)
    raise DataError(directory, None, None, f"no {stem} table found (looked for {tried})")


def _first_bad_csv_row(path: Path, n_columns: int) -> tuple[int, int] | None:
    """Slow path: find the first data row whose field count differs from the header's.

    Empty lines are skipped and not counted, as the fast reader does, so row numbers agree."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        row_number = 0
        for row in reader:
            if not row:
                continue
            row_number += 1
            if len(row) != n_columns:
                return row_number, len(row)
    return None


def _read_csv(path: Path, string_columns: tuple[str, ...], multiline: bool = False) -> pd.DataFrame:
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:  # -sig: drop a BOM
            header = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, None, None, f"cannot read file: {exc}") from exc
    names = next(csv.reader(io.StringIO(header)), [])
    types = {c: pa.string() for c in string_columns if c in names}
    try:
        table = pacsv.read_csv(
            str(path),
            parse_options=pacsv.ParseOptions(newlines_in_values=multiline),
            convert_options=pacsv.ConvertOptions(
                column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        bad = _first_bad_csv_row(path, len(names))
        if bad is not None:
            row, found = bad
            # name the first missing column, or the last one when the row has extra fields
            field = names[found] if found < len(names) else (names[-1] if names else None)
            raise DataError(path, row, field, f"expected {len(names)} fields, found {found}") from exc
        raise DataError(path, None, None, f"cannot parse CSV: {exc}") from exc
    return table.to_pandas()


def _read_jsonl(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_json(path, lines=True, dtype=False, compression="infer")
    except ValueError as exc:
        row = _first_bad_json_line(path)
        raise DataError(path, row, None, f"cannot parse JSON Lines: {exc}") from exc
    return frame


def _first_bad_json_line(path: Path) -> int | None:
    """Slow path: 1-based number of the first non-empty line that is not a JSON object."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            row_number = 0
            for line in handle:
                if not line.strip():
                    continue
                row_number += 1
                try:
                    if not isinstance(json.loads(line), dict):
                        return row_number
                except ValueError:
                    return row_number
    except (OSError, UnicodeDecodeError):
        return None
    return None


def read_table(path: Path, string_columns: tuple[str, ...], *, multiline: bool = False) -> pd.DataFrame:
    """Read one table in any supported format; id columns come back as strings. ``multiline``:
    quoted CSV fields may span lines (free text such as reviews; a slower parse)."""
    name = path.name
    if name.endswith((".csv", ".csv.gz")):
        frame = _read_csv(path, string_columns, multiline)
    elif name.endswith(".parquet"):
        frame = pd.read_parquet(path)
    elif name.endswith((".jsonl", ".jsonl.gz")):
        frame = _read_jsonl(path)
    else:
        raise DataError(path, None, None, f"unsupported format (use one of {', '.join(SUFFIXES)})")
    for column in string_columns:
        if column in frame.columns and not pd.api.types.is_string_dtype(frame[column]):
            frame[column] = _ids_as_strings(frame[column])
    return frame


def _ids_as_strings(column: pd.Series) -> pd.Series:
    """Parquet/JSON may store ids as numbers: keep missing values missing, render the rest as str."""
    if pd.api.types.is_float_dtype(column):
        integral = column.dropna()
        if (integral == integral.round()).all():
            column = column.astype("Int64")
    out = column.astype(object)
    mask = column.isna()
    out[~mask] = column[~mask].astype(str)
    out[mask] = None
    return out


def read_raw(
    directory: str | Path,
    *,
    name: str | None = None,
    allow_missing_items: bool = False,
    rating_range: tuple[float, float] = (0.0, 5.0),
) -> RawData:
    """Read and validate ``interactions`` and ``items`` from a dataset directory.

    Raises :class:`~longtail.errors.DataError` naming the file, the row and the field of the first
    problem found.
    """
    directory = Path(directory)
    inter_path = find_table(directory, "interactions")
    items_path = find_table(directory, "items")
    items = validate_items(read_table(items_path, ("item_id",)), items_path)
    inter = validate_interactions(
        read_table(inter_path, ID_COLUMNS), inter_path, rating_range=rating_range
    )
    if not allow_missing_items:
        validate_catalogue_membership(inter, items, inter_path)
    else:
        inter = inter[inter["item_id"].isin(items["item_id"])].reset_index(drop=True)
    if len(inter) == 0:
        left = " left after dropping items not in the catalogue" if allow_missing_items else ""
        raise DataError(inter_path, None, None, f"no interactions{left}")
    return RawData(
        name=name or directory.name,
        interactions=inter[list(INTERACTION_COLUMNS)],
        items=items,
        interactions_path=inter_path,
        items_path=items_path,
    )


__all__ = ["ITEM_COLUMNS", "INTERACTION_COLUMNS", "RawData", "find_table", "read_raw", "read_table"]
