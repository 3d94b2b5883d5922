"""The package's layers hold: import-linter's contracts (pyproject.toml) pass on the source tree,
and they do catch a backward import (so a green run means something)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(cwd / "src"), "PATH": str(LINT.parent)})


@pytest.fixture(scope="module")
def linter() -> Path:
    if not LINT.exists():
        pytest.fail("lint-imports is missing: install the dev extra (make test does)")
    return LINT


def test_contracts_are_kept(linter: Path) -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_backward_import_breaks_them(linter: Path, tmp_path: Path) -> None:
    """A copy of the source with text/ importing models/ inside a function (the way cycles used to
    be hidden) fails both the layers and the no-cycle contract."""
    shutil.copytree(ROOT / "src", tmp_path / "src")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    similar = tmp_path / "src" / "longtail" / "text" / "similar.py"
    similar.write_text(similar.read_text() + "\n\ndef _dodge() -> None:\n"
                       "    from longtail.models.base import Recommender  # noqa: F401\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "longtail.text is not allowed to import longtail.models" in result.stdout
    assert "2 broken" in result.stdout
