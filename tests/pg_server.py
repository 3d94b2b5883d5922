"""A real PostgreSQL server for the tests (imported by name: tests/ has no packages).

``LONGTAIL_TEST_PG`` (set by ``.ci/run``) names a running server's admin URL; without it, a private
server is started with ``scripts/pg-test-server`` in a temporary directory and stopped at the end.
Either way the URL carries the server's password (scram-sha-256: the server refuses connections
without it), and the databases' URLs made from it keep it.
Under CI a server that cannot be had fails the run; elsewhere, its tests are skipped with a loud reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pg-test-server"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def admin_url() -> Iterator[str | None]:
    """The admin URL of a PostgreSQL server for this session, or None (with the reason printed)."""
    given = os.environ.get("LONGTAIL_TEST_PG")
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="longtail-pg-"))
    folder.chmod(0o755)  # the server runs as the `postgres` user when the tests run as root
    data = folder / "data"
    try:
        started = subprocess.run([str(SCRIPT), "start", str(data), str(_free_port())],
                                 capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        started = subprocess.CompletedProcess([], 1, "", str(exc))
    if started.returncode != 0:
        reason = f"no PostgreSQL server could be started ({started.stderr.strip()[-300:]})"
        if os.environ.get("CI"):
            pytest.fail(f"CI: {reason}")
        print(f"\n!!! PostgreSQL tests SKIPPED: {reason}\n")
        yield None
        return
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([str(SCRIPT), "stop", str(data)], capture_output=True, timeout=120)
        subprocess.run(["rm", "-rf", str(folder)], capture_output=True)


def fresh_database(admin: str) -> tuple[str, str]:
    """Create an empty database; (its URL: the admin URL, password and options kept, with its name)."""
    import psycopg

    name = f"lt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base, _, options = admin.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{options}" if options else ""), name


def drop_database(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
