"""Files and messages that must not leak (issue 29): the store and the artifacts are created
owner-only whatever the umask, and a ``--store`` URL's password never reaches an error message."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.models.artifact import save_artifact
from longtail.serve.store import open_store


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive usual umask, for this test only (files must not depend on it)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_store_is_owner_only(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "service.db"
    store = open_store(f"sqlite:///{db}", exclusive=True)
    try:
        store.count_events()
        made = [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", ".lock"))]
        assert {p.name: oct(_mode(p)) for p in made if p.exists()} == {p.name: oct(0o600) for p in made}
    finally:
        store.close()


def test_artifact_versions_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    link = save_artifact(tmp_path / "model", {}, {"x": np.arange(3)}, extra_files={"encoder/w.bin": b"w",
                                                                                    "c.json": b"{}"})
    version = link.resolve()
    assert _mode(version) == 0o700 and _mode(version / "encoder") == 0o700
    files = [p for p in version.rglob("*") if p.is_file()]
    assert len(files) == 4 and {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}


@pytest.mark.parametrize("url", ["postgresql://u:secret@127.0.0.1:1/x", "postgres://u:secret@127.0.0.1:1/x?sslmode=x",
                                 "mysql://u:secret@127.0.0.1:1/x", "postgresql+psycopg://u:secret@h/x",
                                 "postgresql://u:secret@127.0.0.1:1/x?password=secret"])
@pytest.mark.parametrize("command", [["keys", "list"], ["keys", "create"], ["keys", "revoke", "abcd1234"]])
def test_cli_errors_never_print_the_store_password(url: str, command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--store", url])
    assert result.exit_code != 0
    assert "secret" not in result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_a_missing_key_on_a_live_store_does_not_print_the_password(pg_url: str) -> None:
    assert ":" in pg_url.split("@", 1)[0].split("//", 1)[1], "the test server has a password"
    password = pg_url.split("@", 1)[0].rsplit(":", 1)[1]
    result = CliRunner().invoke(app, ["keys", "revoke", "abcd1234", "--store", pg_url])
    assert result.exit_code != 0 and "no live key" in result.output
    assert password not in result.output


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:secret@h:5/db", "postgresql://u:***@h:5/db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgresql://u:secret@h/db?password=secret&sslmode=require", "postgresql://u:***@h/db?password=***&sslmode=require"),
    ("sqlite:////var/x.db", "sqlite:////var/x.db"),
    ("/var/x.db", "/var/x.db"),
    ("mysql://u:p%40ss@h/x", "mysql://u:***@h/x"),
])
def test_redact_url(url: str, shown: str) -> None:
    from longtail.common.urls import redact_url

    assert redact_url(url) == shown
