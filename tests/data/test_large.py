"""A million interactions with one bad row in the middle: the error names that exact row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from longtail.data import read_raw
from longtail.errors import DataError

N_ROWS = 1_000_000
BAD_ROW = 500_001  # 1-based data row (the header is not counted)
N_ITEMS = 2_000


def _table(start: int, stop: int) -> pa.Table:
    rng = np.random.default_rng(start)
    n = stop - start
    ratings = rng.integers(1, 11, n) / 2.0
    return pa.table(
        {
            "user_id": pa.array(rng.integers(0, 50_000, n)).cast(pa.string()),
            "item_id": pa.array(rng.integers(0, N_ITEMS, n)).cast(pa.string()),
            "timestamp": pa.array(rng.integers(800_000_000, 1_600_000_000, n)),
            "rating": pa.array(ratings, mask=rng.random(n) < 0.1),  # 10% empty ratings
        }
    )


def write_big(folder: Path, bad_line: str | None) -> Path:
    """Rows 1..BAD_ROW-1 and BAD_ROW+1..N_ROWS from pyarrow; row BAD_ROW is ``bad_line`` (or a good
    one)."""
    folder.mkdir(parents=True)
    with open(folder / "interactions.csv", "wb") as handle:
        pacsv.write_csv(_table(0, BAD_ROW - 1), handle, pacsv.WriteOptions(quoting_style="none"))
        handle.write(((bad_line or "7,7,900000000,4.5") + "\n").encode())
        pacsv.write_csv(
            _table(BAD_ROW, N_ROWS), handle, pacsv.WriteOptions(include_header=False, quoting_style="none")
        )
    ids = np.arange(N_ITEMS).astype(str)
    (folder / "items.csv").write_text(
        "item_id,title,text\n" + "".join(f"{i},title {i},text {i}\n" for i in ids)
    )
    return folder


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("big")


def test_million_rows_load(big_root: Path) -> None:
    raw = read_raw(write_big(big_root / "good", None))
    assert len(raw.interactions) == N_ROWS
    assert raw.interactions["timestamp"].iloc[BAD_ROW - 1] == 900_000_000
    assert raw.interactions["rating"].isna().mean() == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        ("7,7,oops,4.5", "timestamp"),
        ("7,7,900000000,high", "rating"),
        ("7,7,900000000", "rating"),  # a field short: names the first missing column
    ],
    ids=["timestamp_oops", "rating_word", "field_count"],
)
def test_bad_row_in_the_middle_is_named(big_root: Path, bad_line: str, field: str) -> None:
    folder = write_big(big_root / field / bad_line.replace(",", "_"), bad_line)
    with pytest.raises(DataError) as raised:
        read_raw(folder)
    assert raised.value.row == BAD_ROW
    assert raised.value.field == field
    assert Path(raised.value.file) == folder / "interactions.csv"
    assert f"row {BAD_ROW}" in str(raised.value)
