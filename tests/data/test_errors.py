"""Bad input: every malformed dataset gives a DataError naming file, row and field, and a clean CLI
message (non-zero exit, no traceback). Also the other formats (.csv.gz, .parquet, .jsonl)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.data import load_dataset, read_raw
from longtail.errors import DataError, LongtailError

H = "user_id,item_id,timestamp,rating\n"
ITEMS_CSV = "item_id,title,text\n1,One,first item\n2,Two,second item\n3,Three,third item\n"
GOOD_ROWS = "u1,1,100,4.0\nu1,2,200,\nu2,3,300,2.5\n"


@dataclass(frozen=True)
class Case:
    files: dict[str, str | bytes]
    file: str  # name of the file the error must name
    row: int | None
    field: str


CASES = {
    "missing_column_interactions": Case(
        {"interactions.csv": "user_id,item_id,rating\nu1,1,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", None, "timestamp"),
    "missing_column_items": Case(
        {"interactions.csv": H + GOOD_ROWS, "items.csv": "item_id,title\n1,a\n2,b\n3,c\n"},
        "items.csv", None, "text"),
    "timestamp_not_a_number": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,101,4\nu1,3,abc,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 3, "timestamp"),
    "rating_not_a_number": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,101,x\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 2, "rating"),
    "empty_user_id": Case(
        {"interactions.csv": H + "u1,1,100,4\n,2,101,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 2, "user_id"),
    "blank_user_id": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,101,4\n  ,3,102,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 3, "user_id"),
    "empty_item_id": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,101,4\nu1,,102,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 3, "item_id"),
    "empty_item_id_in_items": Case(
        {"interactions.csv": H + GOOD_ROWS, "items.csv": ITEMS_CSV + ",Four,no id\n"},
        "items.csv", 4, "item_id"),
    "empty_timestamp": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 2, "timestamp"),
    "non_integer_timestamp": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,1.5,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 2, "timestamp"),
    "negative_timestamp": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,101,4\nu1,3,-5,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 3, "timestamp"),
    "timestamp_overflows_int64": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,99999999999999999999,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 2, "timestamp"),
    "rating_out_of_range": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,101,7\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 2, "rating"),
    "negative_rating": Case(
        {"interactions.csv": H + "u1,1,100,-1\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 1, "rating"),
    "item_not_in_items": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,99,101,4\nu2,98,102,4\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 2, "item_id"),
    "duplicate_item_id": Case(
        {"interactions.csv": H + GOOD_ROWS, "items.csv": ITEMS_CSV + "2,Two again,dup\n"},
        "items.csv", 4, "item_id"),
    "too_few_fields": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,101,4\nu1,3\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 3, "timestamp"),
    "too_many_fields": Case(
        {"interactions.csv": H + "u1,1,100,4\nu1,2,101,4,extra\n", "items.csv": ITEMS_CSV},
        "interactions.csv", 2, "rating"),
    "too_many_fields_in_items": Case(
        {"interactions.csv": H + GOOD_ROWS, "items.csv": "item_id,title,text\n1,a,b\n2,b,c,d\n3,c,d\n"},
        "items.csv", 2, "text"),
}  # fmt: skip


def flat(text: str) -> str:
    """Terminal output without whitespace: rich wraps long lines, which must not hide a path."""
    return re.sub(r"\s+", "", text)


def assert_data_error(exc: DataError, folder: Path, case: Case) -> None:
    assert Path(exc.file) == folder / case.file
    assert exc.row == case.row
    assert exc.field == case.field
    text = str(exc)
    assert str(folder / case.file) in text
    assert f"'{case.field}'" in text
    if case.row is not None:
        assert f"row {case.row}" in text


def assert_cli_error(folder: Path, case: Case, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["inspect", "--dataset", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == DataError.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit)  # not an uncaught exception
    out = result.output
    assert "Traceback" not in out and "error" in out
    where = flat(out)
    assert flat(f"file {folder / case.file}") in where
    assert flat(f"field '{case.field}'") in where
    if case.row is not None:
        assert f"row{case.row},field'{case.field}'" in where
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("name", list(CASES))
def test_bad_csv_input(name: str, make_folder: Callable[..., Path], tmp_path: Path) -> None:
    case = CASES[name]
    folder = make_folder(case.files, name)
    with pytest.raises(DataError) as raised:
        read_raw(folder)
    assert_data_error(raised.value, folder, case)
    with pytest.raises(DataError) as raised:
        load_dataset(folder)
    assert_data_error(raised.value, folder, case)
    assert_cli_error(folder, case, tmp_path)


def test_missing_table(make_folder: Callable[..., Path], tmp_path: Path) -> None:
    folder = make_folder({"interactions.csv": H + GOOD_ROWS, "items.tsv": "x"})
    with pytest.raises(DataError, match="items"):
        read_raw(folder)
    # not a dataset folder at all for --dataset: a clean error as well
    result = CliRunner().invoke(app, ["inspect", "--dataset", str(folder), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_header_only_is_an_error(make_folder: Callable[..., Path], tmp_path: Path) -> None:
    folder = make_folder({"interactions.csv": H, "items.csv": ITEMS_CSV})
    with pytest.raises(DataError, match="no interactions") as raised:
        load_dataset(folder)
    assert Path(raised.value.file) == folder / "interactions.csv"
    result = CliRunner().invoke(app, ["inspect", "--dataset", str(folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_rating_range_is_configurable(make_folder: Callable[..., Path]) -> None:
    folder = make_folder({"interactions.csv": H + "u1,1,100,7\nu1,2,101,10\n", "items.csv": ITEMS_CSV})
    raw = read_raw(folder, rating_range=(1.0, 10.0))
    assert raw.interactions["rating"].tolist() == [7.0, 10.0]
    with pytest.raises(DataError) as raised:
        read_raw(folder, rating_range=(1.0, 8.0))
    assert (raised.value.row, raised.value.field) == (2, "rating")


def test_allow_missing_items_drops_rows(make_folder: Callable[..., Path], tmp_path: Path) -> None:
    rows = "u1,1,100,4\nu1,99,101,4\nu1,2,102,5\nu1,3,103,\nu2,98,104,4\n"
    folder = make_folder({"interactions.csv": H + rows, "items.csv": ITEMS_CSV})
    with pytest.raises(DataError):
        load_dataset(folder)
    ds = load_dataset(folder, allow_missing_items=True)
    raw = ds.raw.interactions
    assert raw["item_id"].tolist() == ["1", "2", "3"]
    assert raw["timestamp"].tolist() == [100, 102, 103]
    assert list(ds.users.ids) == ["u1"]  # u2's only row is dropped with it
    assert len(ds.train) + len(ds.valid) + len(ds.test) == 3
    result = CliRunner().invoke(
        app, ["inspect", "--dataset", str(folder), "--allow-missing-items", "--json", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    # every row dropped is an error too, not an empty dataset
    only_missing = make_folder({"interactions.csv": H + "u1,99,100,4\n", "items.csv": ITEMS_CSV})
    with pytest.raises(DataError, match="no interactions"):
        load_dataset(only_missing, allow_missing_items=True)


def test_utf8_bom_header_keeps_ids_as_strings(make_folder: Callable[..., Path]) -> None:
    folder = make_folder(
        {"interactions.csv": ("\ufeff" + H + "007,1,100,4\n0,2,101,\n").encode(), "items.csv": ITEMS_CSV}
    )
    raw = read_raw(folder)
    assert raw.interactions["user_id"].tolist() == ["007", "0"]


def test_row_numbers_ignore_empty_lines_consistently(make_folder: Callable[..., Path]) -> None:
    """An empty line is skipped, not reported; rows count the data rows that are there."""
    folder = make_folder({"interactions.csv": H + "u1,1,100,4\n\nu1,2,101,4\nu1,3\n", "items.csv": ITEMS_CSV})
    with pytest.raises(DataError) as raised:
        read_raw(folder)
    assert raised.value.row == 3
    good = make_folder({"interactions.csv": H + "u1,1,100,4\n\nu1,2,101,4\n", "items.csv": ITEMS_CSV})
    assert len(read_raw(good).interactions) == 2


def test_quoted_fields_with_commas_and_newlines(make_folder: Callable[..., Path]) -> None:
    items = 'item_id,title,text\n1,"One, the first","line one\nline two"\n"2,5",Two,"say ""hi"""\n3,c,d\n'
    inter = H + 'u1,1,100,4\nu1,"2,5",101,\n'
    raw = read_raw(make_folder({"interactions.csv": inter, "items.csv": items}))
    assert raw.items["text"].tolist() == ["line one\nline two", 'say "hi"', "d"]
    assert raw.interactions["item_id"].tolist() == ["1", "2,5"]


def test_ids_stay_strings(make_folder: Callable[..., Path]) -> None:
    """Numeric-looking ids keep their exact text (leading zeros) and compare as strings."""
    items = "item_id,title,text\n010,a,b\n10,c,d\n9,e,f\n"
    inter = H + "0001,010,1,\n0001,10,2,\n1,9,3,\n"
    ds = load_dataset(make_folder({"interactions.csv": inter, "items.csv": items}))
    assert list(ds.item_vocab.ids) == ["010", "10", "9"]
    assert list(ds.users.ids) == ["0001", "1"]


def test_data_error_message_layout() -> None:
    exc = DataError("a/b.csv", 3, "rating", "bad")
    assert str(exc) == "file a/b.csv, row 3, field 'rating': bad"
    assert (exc.file, exc.row, exc.field, exc.message) == ("a/b.csv", 3, "rating", "bad")
    assert str(DataError("a.csv", None, "x", "missing")) == "file a.csv, field 'x': missing"
    assert isinstance(exc, LongtailError) and exc.exit_code == 2


# --------------------------------------------------------------------------------------------
# Other formats: the same data loads the same; bad rows name their row.
# --------------------------------------------------------------------------------------------

INTER = pd.DataFrame(
    {
        "user_id": ["u1", "u1", "u1", "u2", "u2", "u2", "007"],
        "item_id": ["1", "2", "3", "1", "3", "2", "2"],
        "timestamp": [100, 200, 300, 100, 150, 150, 5],
        "rating": [4.0, np.nan, 5.0, 3.0, 4.5, 4.0, np.nan],
    }
)
ITEMS = pd.DataFrame({"item_id": ["1", "2", "3", "10"], "title": ["a", "b", "c", "d"],
                      "text": ["x", "y", "z", "w"]})  # fmt: skip
FORMATS = [".csv.gz", ".parquet", ".jsonl", ".jsonl.gz"]


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for column in a.columns:
        left, right = a[column].tolist(), b[column].tolist()
        assert [None if x != x else x for x in left] == [None if x != x else x for x in right], column


@pytest.mark.parametrize("suffix", FORMATS)
def test_other_formats_load_like_csv(suffix: str, make_folder: Callable[..., Path]) -> None:
    csv_folder = make_folder({"interactions.csv": INTER, "items.csv": ITEMS})
    other = make_folder({f"interactions{suffix}": INTER, f"items{suffix}": ITEMS})
    expected, got = read_raw(csv_folder), read_raw(other)
    assert got.interactions_path.name == f"interactions{suffix}"
    _frames_equal(expected.interactions, got.interactions)
    _frames_equal(expected.items, got.items)
    assert got.interactions["timestamp"].dtype == np.int64
    a, b = load_dataset(csv_folder), load_dataset(other)
    assert a.summary() == b.summary()
    for part in ("train", "valid", "test"):
        x, y = getattr(a, part), getattr(b, part)
        assert (x.csr != y.csr).nnz == 0


def test_numeric_ids_in_parquet_become_strings(make_folder: Callable[..., Path]) -> None:
    inter = INTER.assign(user_id=[1, 1, 1, 2, 2, 2, 7], item_id=[1, 2, 3, 1, 3, 2, 2])
    items = ITEMS.assign(item_id=[1, 2, 3, 10])
    raw = read_raw(make_folder({"interactions.parquet": inter, "items.parquet": items}))
    assert raw.interactions["user_id"].tolist() == ["1", "1", "1", "2", "2", "2", "7"]
    assert raw.items["item_id"].tolist() == ["1", "2", "3", "10"]


def _bad_csv_gz() -> tuple[dict, Case]:
    text = INTER.to_csv(index=False).splitlines()
    text[3] += ",extra"  # data row 3
    files = {"interactions.csv.gz": gzip.compress(("\n".join(text) + "\n").encode()), "items.csv.gz": ITEMS}
    return files, Case({}, "interactions.csv.gz", 3, "rating")


def _bad_parquet_null_item() -> tuple[dict, Case]:
    inter = INTER.copy()
    inter["item_id"] = inter["item_id"].astype(object)
    inter.loc[4, "item_id"] = None
    return {"interactions.parquet": inter, "items.parquet": ITEMS}, Case({}, "interactions.parquet", 5,
                                                                         "item_id")


def _bad_parquet_timestamp() -> tuple[dict, Case]:
    inter = INTER.assign(timestamp=INTER["timestamp"].astype(float))
    inter.loc[2, "timestamp"] = 300.5
    return {"interactions.parquet": inter, "items.csv": ITEMS}, Case({}, "interactions.parquet", 3, "timestamp")


def _bad_jsonl_negative() -> tuple[dict, Case]:
    inter = INTER.copy()
    inter.loc[5, "timestamp"] = -1
    return {"interactions.jsonl": inter, "items.jsonl": ITEMS}, Case({}, "interactions.jsonl", 6, "timestamp")


def _bad_jsonl_null_user() -> tuple[dict, Case]:
    inter = INTER.copy()
    inter["user_id"] = inter["user_id"].astype(object)
    inter.loc[1, "user_id"] = None
    return {"interactions.jsonl": inter, "items.csv": ITEMS}, Case({}, "interactions.jsonl", 2, "user_id")


def _bad_jsonl_gz_rating() -> tuple[dict, Case]:
    inter = INTER.copy()
    inter["rating"] = inter["rating"].astype(object)
    inter.loc[6, "rating"] = "five"
    return {"interactions.jsonl.gz": inter, "items.csv": ITEMS}, Case({}, "interactions.jsonl.gz", 7, "rating")


def _bad_items_parquet_duplicate() -> tuple[dict, Case]:
    items = pd.concat([ITEMS, ITEMS.iloc[[1]]], ignore_index=True)
    return {"interactions.csv": INTER, "items.parquet": items}, Case({}, "items.parquet", 5, "item_id")


BAD_FORMATS = {
    "csv.gz_wrong_field_count": _bad_csv_gz,
    "parquet_null_item_id": _bad_parquet_null_item,
    "parquet_fractional_timestamp": _bad_parquet_timestamp,
    "parquet_items_duplicate": _bad_items_parquet_duplicate,
    "jsonl_negative_timestamp": _bad_jsonl_negative,
    "jsonl_null_user_id": _bad_jsonl_null_user,
    "jsonl.gz_rating_not_a_number": _bad_jsonl_gz_rating,
}


@pytest.mark.parametrize("name", list(BAD_FORMATS))
def test_bad_rows_in_other_formats(name: str, make_folder: Callable[..., Path], tmp_path: Path) -> None:
    files, case = BAD_FORMATS[name]()
    folder = make_folder(files, name)
    with pytest.raises(DataError) as raised:
        load_dataset(folder)
    assert_data_error(raised.value, folder, case)
    assert_cli_error(folder, case, tmp_path)


def test_malformed_json_line_names_its_row(make_folder: Callable[..., Path], tmp_path: Path) -> None:
    lines = '{"user_id": "u1", "item_id": "1", "timestamp": 1}\n{"user_id": "u1", "item_id": "2",\n'
    folder = make_folder({"interactions.jsonl": lines, "items.csv": ITEMS_CSV})
    with pytest.raises(DataError) as raised:
        read_raw(folder)
    assert Path(raised.value.file) == folder / "interactions.jsonl"
    assert raised.value.row == 2
    result = CliRunner().invoke(app, ["inspect", "--dataset", str(folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output and "row2" in flat(result.output)
