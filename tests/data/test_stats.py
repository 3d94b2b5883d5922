"""`longtail inspect` statistics against the figures each shared dataset publishes in stats.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.data import load_dataset, resolve_dataset
from longtail.data.registry import shipped_root
from longtail.data.stats import raw_stats

SHARED_DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()
FOLDERS = (
    sorted(p for p in SHARED_DATA.iterdir() if p.is_dir() and any(p.glob("interactions.*")))
    if SHARED_DATA.is_dir()
    else []
)
SHIPPED = shipped_root() / "ml-latest-small"


def shared_or_skip(name: str | None = None) -> list[Path]:
    if not FOLDERS:
        pytest.skip(f"no shared datasets at {SHARED_DATA}")
    if name is None:
        return FOLDERS
    match = [f for f in FOLDERS if f.name == name]
    if not match:
        pytest.skip(f"shared dataset {name} not found")
    return match


def expected_stats(folder: Path) -> dict:
    if not (folder / "stats.json").is_file():
        pytest.skip(f"{folder.name} has no stats.json")
    return json.loads((folder / "stats.json").read_text())


def assert_same(expected, actual, where: str = "") -> None:
    """Equal key by key (every key of ``expected``), floats within 1e-9."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}/{key} missing"
            assert_same(value, actual[key], f"{where}/{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual}"
        for k, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, f"{where}[{k}]")
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"
    elif isinstance(expected, int) and not isinstance(actual, float):
        assert actual == expected and not isinstance(actual, bool), f"{where}: {expected} != {actual}"
    else:
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), where
        assert math.isclose(actual, expected, rel_tol=0, abs_tol=1e-9), f"{where}: {expected} != {actual}"


def test_assert_same_catches_differences() -> None:
    assert_same({"a": 1.0, "b": [1, 2]}, {"a": 1.0 + 1e-12, "b": [1, 2], "extra": 3})
    for bad in ({"a": 1.0 + 1e-6, "b": [1, 2]}, {"a": 1.0, "b": [1, 3]}, {"b": [1, 2]}):
        with pytest.raises(AssertionError):
            assert_same({"a": 1.0, "b": [1, 2]}, bad)


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_raw_stats_match_stats_json(folder: Path) -> None:
    expected = expected_stats(folder)
    assert_same(expected, raw_stats(load_dataset(folder)))


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_cli_inspect_json(folder: Path, tmp_path: Path) -> None:
    expected = expected_stats(folder)
    result = CliRunner().invoke(app, ["inspect", "--dataset", str(folder), "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["dataset"] == folder.name
    assert_same(expected, printed["raw"])
    split = printed["protocol"]["split"]
    assert split == load_dataset(folder).summary()
    png = tmp_path / f"long_tail_{folder.name}.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert json.loads((tmp_path / f"stats_{folder.name}.json").read_text()) == printed


def test_cli_inspect_table(tmp_path: Path) -> None:
    """Without --json: a readable table with the counts, and the plot's path."""
    result = CliRunner().invoke(app, ["inspect", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "100,836" in result.stdout and "610" in result.stdout
    assert (tmp_path / "long_tail_ml-latest-small.png").is_file()


def test_default_name_resolves_to_shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LONGTAIL_DATA", raising=False)
    assert resolve_dataset("ml-latest-small").resolve() == SHIPPED.resolve()
    monkeypatch.chdir(tmp_path)  # also from elsewhere than the checkout
    assert resolve_dataset("ml-latest-small").resolve() == SHIPPED.resolve()
    ds = load_dataset("ml-latest-small")
    assert ds.raw.interactions_path.resolve().parent == SHIPPED.resolve()


def test_shipped_copy_equals_shared_copy(tmp_path: Path) -> None:
    (shared,) = shared_or_skip("ml-latest-small")
    expected = json.loads((shared / "stats.json").read_text())
    shipped = raw_stats(load_dataset("ml-latest-small"))
    assert_same(expected, shipped)
    assert_same(raw_stats(load_dataset(shared)), shipped)
    result = CliRunner().invoke(
        app, ["inspect", "--dataset", "ml-latest-small", "--json", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert_same(expected, json.loads(result.stdout)["raw"])
    # the shipped copy's own stats.json says the same
    assert_same(expected, json.loads((SHIPPED / "stats.json").read_text()))


def test_unknown_dataset_name_is_a_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["inspect", "--dataset", "no-such-dataset", "--out", str(tmp_path)])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert "no-such-dataset" in result.output and "Traceback" not in result.output
