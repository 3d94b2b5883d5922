"""Edge validation of raw tables: every check is vectorised; an error names file, row and field.

Rows are 1-based data rows (the header is not counted), i.e. the position in the table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from longtail.errors import DataError

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "rating")
REQUIRED_INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "text")


def _first(mask: np.ndarray) -> int:
    """1-based row number of the first True in ``mask``."""
    return int(np.flatnonzero(mask)[0]) + 1


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    for column in columns:
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns)) or "none"
            raise DataError(path, None, column, f"missing column (found: {found})")


def _check_ids(frame: pd.DataFrame, column: str, path: Path) -> None:
    values = frame[column]
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError(path, _first(missing), column, "empty or missing id")
    blank = pc.equal(pc.utf8_trim_whitespace(arrow_strings(values)), "")
    if pc.any(blank).as_py():  # the row is looked up only on failure
        raise DataError(path, _first(np.asarray(blank, dtype=bool)), column, "empty or missing id")


def _as_number(frame: pd.DataFrame, column: str, path: Path, what: str) -> pd.Series:
    """Numeric view of a column; a value that is not a number is an error naming its row."""
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        raise DataError(path, 1, column, f"expected {what}, found booleans")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64") if not pd.api.types.is_integer_dtype(values) else values
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text.where(text != ""), errors="coerce")
    bad = (numbers.isna() & text.notna() & (text != "")).to_numpy()
    if bad.any():
        row = _first(bad)
        raise DataError(path, row, column, f"expected {what}, found {values.iloc[row - 1]!r}")
    return numbers.astype("float64")


def _timestamps(frame: pd.DataFrame, path: Path) -> np.ndarray:
    values = _as_number(frame, "timestamp", path, "an integer (Unix seconds)")
    if pd.api.types.is_integer_dtype(values) and not values.hasnans:
        out = values.to_numpy(dtype=np.int64)
    else:
        floats = values.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(floats)
        if missing.any():
            raise DataError(path, _first(missing), "timestamp", "empty timestamp")
        huge = ~np.isfinite(floats) | (np.abs(floats) >= 2.0**63)  # would wrap in int64
        if huge.any():
            row = _first(huge)
            value = float(floats[row - 1])
            raise DataError(path, row, "timestamp", f"timestamp {value!r} out of range")
        fractional = floats != np.floor(floats)
        if fractional.any():
            row = _first(fractional)
            raise DataError(
                path, row, "timestamp", f"expected an integer, found {float(floats[row - 1])!r}"
            )
        out = floats.astype(np.int64)
    negative = out < 0
    if negative.any():
        row = _first(negative)
        raise DataError(path, row, "timestamp", f"negative timestamp {out[row - 1]}")
    return out


def _ratings(frame: pd.DataFrame, path: Path, rating_range: tuple[float, float]) -> np.ndarray:
    if "rating" not in frame.columns:
        return np.full(len(frame), np.nan)
    values = _as_number(frame, "rating", path, "a number or empty").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    low, high = rating_range
    with np.errstate(invalid="ignore"):
        out_of_range = ~np.isnan(values) & ((values < low) | (values > high) | ~np.isfinite(values))
    if out_of_range.any():
        row = _first(out_of_range)
        raise DataError(
            path, row, "rating", f"rating {float(values[row - 1])!r} outside [{low:g}, {high:g}]"
        )
    return values


def validate_interactions(
    frame: pd.DataFrame, path: Path, *, rating_range: tuple[float, float] = (0.0, 5.0)
) -> pd.DataFrame:
    """Check columns, ids, timestamps and ratings; return a clean typed frame."""
    _require_columns(frame, REQUIRED_INTERACTION_COLUMNS, path)
    for column in ("user_id", "item_id"):
        _check_ids(frame, column, path)
    return pd.DataFrame(
        {
            # `.array`, not `.to_numpy(dtype=object)`: pandas 3 would turn the objects back into
            # its string dtype, two conversions for nothing
            "user_id": frame["user_id"].array,
            "item_id": frame["item_id"].array,
            "timestamp": _timestamps(frame, path),
            "rating": _ratings(frame, path, rating_range),
        }
    )


REVIEW_COLUMNS = ("user_id", "item_id", "timestamp", "text")


def validate_reviews(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Check a reviews table (``user_id,item_id,timestamp,text`` + optional ``summary``): ids and
    timestamps as in interactions; missing text / summary become ''. Returns those five columns."""
    _require_columns(frame, REVIEW_COLUMNS, path)
    for column in ("user_id", "item_id"):
        _check_ids(frame, column, path)
    texts = {column: (frame[column].fillna("").astype(str).to_numpy(dtype=object) if column in frame.columns
                      else np.full(len(frame), "", dtype=object)) for column in ("summary", "text")}
    return pd.DataFrame({"user_id": frame["user_id"].array, "item_id": frame["item_id"].array,
                         "timestamp": _timestamps(frame, path), **texts})


def validate_items(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Check the catalogue: required columns, non-empty unique ids; missing text becomes ''."""
    _require_columns(frame, ITEM_COLUMNS, path)
    _check_ids(frame, "item_id", path)
    duplicated = frame["item_id"].duplicated().to_numpy()
    if duplicated.any():
        row = _first(duplicated)
        item = frame["item_id"].iloc[row - 1]
        first = _first((frame["item_id"] == item).to_numpy())
        raise DataError(path, row, "item_id", f"duplicate item_id {item!r} (first seen on row {first})")
    out = frame.copy()
    out["item_id"] = out["item_id"].to_numpy(dtype=object)
    for column in ("title", "text"):
        out[column] = out[column].fillna("").astype(str)
    return out.reset_index(drop=True)


def arrow_strings(values: pd.Series | np.ndarray | list[str] | pa.Array | pa.ChunkedArray,
                  ) -> pa.Array | pa.ChunkedArray:
    """Ids as an Arrow ``large_string`` array, zero-copy for pandas' Arrow-backed strings."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(pa.large_string())
    if isinstance(values, pd.Series):
        values = values.array
    arrow = getattr(values, "_pa_array", None)  # pandas' Arrow-backed string arrays
    if arrow is not None:
        return arrow.cast(pa.large_string())
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return pa.array(values, type=pa.large_string(), from_pandas=True)
    return pa.array([None if v is None else str(v) for v in np.asarray(values, dtype=object)],
                    type=pa.large_string())


def validate_catalogue_membership(inter: pd.DataFrame, items: pd.DataFrame, path: Path) -> None:
    """Every interaction's item must be in the catalogue (unless ``--allow-missing-items``)."""
    # pyarrow's hash lookup: pandas 3's `isin` on its string dtype loops in Python (~40x slower)
    known = pc.is_in(arrow_strings(inter["item_id"]), value_set=arrow_strings(items["item_id"]))
    unknown = ~np.asarray(known, dtype=bool)
    if unknown.any():
        row = _first(unknown)
        raise DataError(
            path,
            row,
            "item_id",
            f"item {inter['item_id'].iloc[row - 1]!r} is not in the items table "
            f"({int(unknown.sum())} rows affected; pass --allow-missing-items to drop them)",
        )
