"""Store faults and their edges: an unwritable store is refused at start, one server per store,
event_id reuse with another payload is a 409, storage faults are 503 + Retry-After (nothing
acknowledged that was not committed), error bodies carry no paths / SQL / exception text, and the
artifact watcher logs a bad version once.

Faults are real: ``chattr +i`` (root ignores chmod) makes a file immutable, ``PRAGMA
max_page_count`` on the service's connection makes SQLite answer SQLITE_FULL like a full disk."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_helpers import Keys, free_port

from longtail.common.files import sha256_file
from longtail.errors import LongtailError
from longtail.serve import create_app
from longtail.serve.bundle import Bundle, save_bundle
from longtail.serve.keys import create_key
from longtail.serve.service import Service, ServiceConfig
from longtail.serve.store import NewEvent, StoreError, open_store

LEAKS = ("/tmp", "sqlite", "SQL", "UNIQUE", "Traceback", "database or disk", "disk I/O")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """SQLite's own faults (a full disk, read-only files, its one-server lock): this module is about
    them; PostgreSQL's are in test_store_pg.py."""
    return f"sqlite:///{tmp_path / 'service.db'}"


# -- helpers --------------------------------------------------------------------------------------
@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """``chattr +i`` on ``paths`` for the block, always undone; skips where chattr is not permitted."""
    done: list[Path] = []
    try:
        for path in paths:
            if shutil.which("chattr") is None:
                pytest.skip("chattr is not installed: cannot make a file unwritable for root")
            result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
            if result.returncode != 0:
                pytest.skip(f"chattr +i is not permitted here: {result.stderr.strip()}")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=False)


@contextmanager
def store_fault(kind: str, service: Service) -> Iterator[None]:
    """``full``: SQLite's page limit at the current size (SQLITE_FULL); ``read-only``: the WAL made
    immutable under the running connection (SQLITE_IOERR_WRITE)."""
    store = service.store
    if kind == "full":
        with store._lock:
            store._conn.execute("PRAGMA max_page_count = 1")  # clamps to the current size
        try:
            yield
        finally:
            with store._lock:
                store._conn.execute("PRAGMA max_page_count = 1073741823")
    else:
        with immutable(Path(f"{store.path}-wal")):
            yield


def assert_clean(body: str) -> None:
    assert not [leak for leak in LEAKS if leak in body], body


def events_for(bundle: Bundle, prefix: str, n: int) -> list[dict]:
    return [{"user_id": f"{prefix}{i % 20}", "item_id": bundle.item_ids[(i * 7) % len(bundle.item_ids)],
             "timestamp": 1_700_000_000 + i, "event_id": f"{prefix}-{i}"} for i in range(n)]


# -- 1. an unwritable store is refused at start ----------------------------------------------------
def test_store_that_cannot_be_written_is_refused_at_open(tmp_path: Path) -> None:
    db = tmp_path / "service.db"
    open_store(db).close()
    with immutable(db):
        with pytest.raises(StoreError, match="cannot be written") as refused:
            open_store(db)  # as `longtail keys create` opens it
        assert "\n" not in str(refused.value)
        with pytest.raises(StoreError, match="cannot be written"):
            open_store(db, exclusive=True)  # as the service opens it
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StoreError, match="cannot create its directory"):
        open_store(tmp_path / "a-file" / "service.db")  # the parent is a file
    locked = tmp_path / "locked"
    locked.mkdir()
    with immutable(locked):
        with pytest.raises(StoreError, match="cannot create its directory"):
            open_store(locked / "sub" / "service.db")
        with pytest.raises(StoreError, match="cannot be opened"):
            open_store(locked / "service.db")  # SQLite cannot create the file


def test_serve_refuses_an_unwritable_store_in_one_line(artifact: Path, keys: Keys,
                                                        serve_env: dict[str, str]) -> None:
    with immutable(Path(keys.url.removeprefix("sqlite:///"))):
        try:
            done = subprocess.run(
                [sys.executable, "-m", "longtail.cli", "serve", "--artifact", str(artifact), "--store", keys.url,
                 "--port", str(free_port())], env=serve_env, capture_output=True, text=True, timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail("longtail serve started on a store it cannot write")
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr + done.stdout
    assert "cannot be written" in " ".join(done.stderr.split())


# -- 2. one writer per SQLite store -----------------------------------------------------------------
def test_second_service_on_a_store_is_refused_while_commands_still_open_it(artifact: Path, keys: Keys,
                                                                          tmp_path: Path) -> None:
    with pytest.raises(Exception):  # noqa: B017 - a failed start (bad artifact) must release the store
        Service(ServiceConfig(tmp_path / "no-artifact", keys.url))
    config = ServiceConfig(artifact, keys.url)
    first = Service(config)
    try:
        with pytest.raises(StoreError) as refused:
            Service(config)
        message = str(refused.value)
        assert f"already served by another process (pid {os.getpid()})" in message
        assert "several servers share one store through PostgreSQL" in message
        opened = open_store(keys.url)  # what `longtail keys create` does while the server runs
        try:
            key = create_key(opened, "read", "ops")
        finally:
            opened.close()
        assert first.keys.scope_of(key) == "read"
    finally:
        first.close()
    Service(config).close()  # the lock went with the first service


def test_second_server_process_on_a_store_refuses_to_start(start_server, artifact: Path, keys: Keys,  # noqa: ANN001
                                                          serve_env: dict[str, str]) -> None:
    first = start_server(artifact, keys.url)
    with pytest.raises(RuntimeError) as refused:
        start_server(artifact, keys.url)
    text = " ".join(str(refused.value).split())
    assert f"already served by another process (pid {first.process.pid})" in text, text
    created = subprocess.run([sys.executable, "-m", "longtail.cli", "keys", "create", "--store", keys.url],
                             env=serve_env, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    answer = httpx.post(f"{first.url}/recommend", json={"user_id": "x"}, headers={"X-API-Key": key}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert first.process.poll() is None


# -- 3. idempotency: same event_id, same payload -----------------------------------------------------
def test_reused_event_id_with_another_payload_is_refused(client: TestClient, keys: Keys, bundle: Bundle) -> None:
    write = {"X-API-Key": keys.write}
    service = client.app.state.service
    a, b = bundle.item_ids[0], bundle.item_ids[1]
    event = {"user_id": "idem", "item_id": a, "timestamp": 1_700_000_000, "event_id": "e1"}
    assert client.post("/events", json=event, headers=write).json()["stored"] == 1
    again = client.post("/events", json=event, headers=write)
    assert again.status_code == 201 and again.json()["duplicates"] == 1
    untimed = client.post("/events", json={k: v for k, v in event.items() if k != "timestamp"}, headers=write)
    assert untimed.status_code == 201 and untimed.json()["duplicates"] == 1  # no timestamp: not compared
    for change in ({"item_id": b}, {"user_id": "someone-else"}, {"timestamp": 1_700_000_001}):
        refused = client.post("/events", json={**event, **change}, headers=write)
        assert refused.status_code == 409 and "'e1'" in refused.json()["detail"], refused.text
    stored, seq = service.events_stored, service.state.last_event_seq
    fresh = {"user_id": "idem-new", "item_id": a, "event_id": "fresh"}
    batch = client.post("/events", json={"events": [fresh, {**event, "item_id": b}]}, headers=write)
    assert batch.status_code == 409 and "'e1'" in batch.json()["detail"]
    inside = client.post("/events", json={"events": [fresh, {"user_id": "w", "item_id": a, "event_id": "e9"},
                                                     {"user_id": "w", "item_id": b, "event_id": "e9"}]},
                         headers=write)
    assert inside.status_code == 409 and "'e9'" in inside.json()["detail"]
    assert (service.events_stored, service.state.last_event_seq) == (stored, seq)  # nothing from them
    assert service.state.histories.index_of("idem-new") is None
    assert not {"fresh", "e9"} & service.store.event_ids()
    twice = client.post("/events", json={"events": [fresh, fresh]}, headers=write).json()
    assert (twice["stored"], twice["duplicates"]) == (1, 1)


def test_store_refuses_a_reused_event_id_in_one_transaction(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    try:
        assert store.append_events([NewEvent("u", "i", 1, "e1")]) != [None]
        assert store.append_events([NewEvent("u", "i", 1, "e1")]) == [None]
        with pytest.raises(LongtailError, match="'e1'") as refused:
            store.append_events([NewEvent("u", "i", 2, "e2"), NewEvent("u", "other", 1, "e1")])
        assert type(refused.value).__name__ == "EventIdConflict"
        with pytest.raises(LongtailError, match="'e3'"):
            store.append_events([NewEvent("u", "i", 3, "e3"), NewEvent("v", "i", 3, "e3")])
        assert store.event_ids() == {"e1"} and store.count_events() == 1  # nothing of either batch
        assert store.append_events([NewEvent("u", "i", 5, "e1", client_ts=False)]) == [None]  # server time
    finally:
        store.close()


# -- 4. storage faults: 503 + Retry-After, nothing acknowledged that was not committed -----------------
@pytest.mark.parametrize(("kind", "reason"), [("full", "the store is full"), ("read-only", "cannot be written")])
def test_store_fault_answers_503_and_changes_nothing(kind: str, reason: str, client: TestClient, keys: Keys,
                                                     bundle: Bundle) -> None:
    write = {"X-API-Key": keys.write}
    service = client.app.state.service
    batch = {"events": events_for(bundle, f"fault-{kind}", 300)}
    before = (service.events_stored, service.state.last_event_seq, len(service.state.histories))
    with store_fault(kind, service):
        failed = client.post("/events", json=batch, headers=write)
        assert failed.status_code == 503, failed.text
        assert int(failed.headers["retry-after"]) > 0
        assert reason in failed.json()["detail"] and "nothing" in failed.json()["detail"]
        assert_clean(failed.text)
        assert (service.events_stored, service.state.last_event_seq, len(service.state.histories)) == before
    assert not {e["event_id"] for e in batch["events"]} & service.store.event_ids()
    recovered = client.post("/events", json=batch, headers=write)
    assert recovered.status_code == 201 and recovered.json()["stored"] == 300


Post = Callable[[dict], httpx.Response]
Failed = dict[str, tuple[int, str | None]]  # event_id -> (status, Retry-After)


def stream(post: Post, events: list[dict], acked: set[str], failed: Failed) -> None:
    """Send ``events`` one by one, as a client would, recording what was acknowledged."""
    for event in events:
        response = post(event)
        if 200 <= response.status_code < 300:
            acked.add(event["event_id"])
        else:
            failed[event["event_id"]] = (response.status_code, response.headers.get("retry-after"))


def fault_mid_stream(inject: Callable[[], AbstractContextManager[None]], events: list[dict],
                     post: Post) -> tuple[set[str], Failed]:
    """Stream ``events`` from a thread; once 150 are acknowledged, fail the store until 20 requests
    failed, then recover and let the stream finish."""
    acked: set[str] = set()
    failed: Failed = {}
    thread = threading.Thread(target=stream, args=(post, events, acked, failed))
    thread.start()
    deadline = time.monotonic() + 60
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.005)
    with inject():
        while len(failed) < 20 and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
    thread.join(timeout=120)
    return acked, failed


def check_stream(acked: set[str], failed: Failed, stored: set[str], n: int) -> None:
    assert len(acked) + len(failed) == n and failed, f"no request failed ({len(acked)} acknowledged)"
    assert all(status == 503 and retry and int(retry) > 0 for status, retry in failed.values()), failed
    assert acked <= stored, f"acknowledged but lost: {sorted(acked - stored)[:5]}"
    assert not set(failed) & stored  # a 503 committed nothing
    print(f"\nfault mid-stream: acknowledged {len(acked)}, refused with 503 {len(failed)}, lost 0")


@pytest.mark.parametrize("kind", ["full", "read-only"])
def test_a_storage_fault_mid_stream_loses_no_acknowledged_event(kind: str, artifact: Path, keys: Keys,
                                                                bundle: Bundle) -> None:
    write = {"X-API-Key": keys.write}
    events = events_for(bundle, f"mid-{kind}", 600)
    with TestClient(create_app(artifact, keys.url), raise_server_exceptions=False) as client:
        service = client.app.state.service
        acked, failed = fault_mid_stream(lambda: store_fault(kind, service), events,
                                         lambda e: client.post("/events", json=e, headers=write))
        after = [e for e in events[-50:] if e["event_id"] in acked]
        assert after, "the service did not recover"  # the last events came after the fault
    store = open_store(keys.url)
    stored = store.event_ids()
    store.close()
    check_stream(acked, failed, stored, len(events))
    with TestClient(create_app(artifact, keys.url), raise_server_exceptions=False) as client:  # a restart
        assert client.get("/health").json()["events"] == len(stored)
        retried = client.post("/events", json={"events": events}, headers=write).json()
        assert (retried["stored"], retried["duplicates"]) == (len(failed), len(acked))


def test_a_storage_fault_mid_stream_of_a_real_server(start_server, artifact: Path, keys: Keys,  # noqa: ANN001
                                                     bundle: Bundle) -> None:
    server = start_server(artifact, keys.url)
    events = events_for(bundle, "real", 600)
    with httpx.Client(base_url=server.url, timeout=30, headers={"X-API-Key": keys.write}) as http:
        wal = Path(keys.url.removeprefix("sqlite:///") + "-wal")
        acked, failed = fault_mid_stream(lambda: immutable(wal), events,
                                         lambda e: http.post("/events", json=e))
        assert http.get("/health").status_code == 200
    server.kill()  # SIGKILL: what was acknowledged must be on disk already
    store = open_store(keys.url)
    stored = store.event_ids()
    store.close()
    check_stream(acked, failed, stored, len(events))


# -- 5. error bodies: words, no paths, SQL or exception text -------------------------------------------
def test_item_conflict_from_the_store_names_no_sql(client: TestClient, keys: Keys,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    service = client.app.state.service
    dim = service.state.catalogue.dim
    unit = np.full((1, dim), dim ** -0.5, dtype=np.float32)
    monkeypatch.setattr(service, "encode", lambda state, titles, texts, categories: np.repeat(unit, len(titles), 0))
    other = open_store(keys.url)  # another process added the id meanwhile: the live state does not know it
    try:
        other.add_items([("taken", "Taken", "", "")], service.state.encoder_fingerprint, unit)
    finally:
        other.close()
    refused = client.post("/items", json={"item_id": "taken", "title": "Again"}, headers={"X-API-Key": keys.write})
    assert refused.status_code == 409 and "already exists" in refused.json()["detail"]
    assert_clean(refused.text)
    assert "items.item_id" not in refused.text


def _garbage(version: Path) -> None:
    (version / "arrays.npz").write_bytes(b"not a zip file at all")


def _reseal(version: Path) -> None:
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["checksums"] = {name: sha256_file(version / name) for name in manifest["checksums"]}
    (version / "manifest.json").write_text(json.dumps(manifest))


DAMAGES = {
    "garbage": _garbage,
    "garbage-resealed": lambda v: (_garbage(v), _reseal(v)),
    "truncated-resealed": lambda v: ((v / "arrays.npz").write_bytes((v / "arrays.npz").read_bytes()[:500]),
                                     _reseal(v)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_failed_reload_says_why_without_paths(damage: str, client: TestClient, keys: Keys, artifact: Path,
                                             bundle: Bundle) -> None:
    old = client.get("/health").json()["artifact"]
    save_bundle(bundle, artifact)  # a new version, then damaged
    DAMAGES[damage](artifact.resolve())
    new = artifact.resolve().name
    reloaded = client.post("/admin/reload", headers={"X-API-Key": keys.admin})
    assert reloaded.status_code == 503, reloaded.text
    detail = reloaded.json()["detail"]
    assert f"still serving {old}" in detail and new in detail
    assert_clean(reloaded.text)
    assert client.get("/health").json()["artifact"] == old
    assert client.post("/recommend", json={"user_id": "x"}, headers={"X-API-Key": keys.read}).status_code == 200


def test_library_errors_lose_their_paths_at_the_http_edge(client: TestClient, keys: Keys,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import longtail.serve.routers.recommend as route
    from longtail.errors import DataError

    def broken(*args: object, **kwargs: object) -> None:
        raise DataError("/srv/private/data/items.csv", 3, "title", "bad value near C:\\data\\x.csv")

    monkeypatch.setattr(route, "recommend", broken)
    response = client.post("/recommend", json={"user_id": "x"}, headers={"X-API-Key": keys.read})
    assert response.status_code == 400
    assert response.json()["detail"] == "file <path>, row 3, field 'title': bad value near <path>"


# -- 6. the watcher logs a bad version once ----------------------------------------------------------
def test_watcher_logs_a_bad_version_once_then_swaps_the_next_good_one(artifact: Path, keys: Keys, bundle: Bundle,
                                                                     pop_bundle: Bundle,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="longtail")
    with TestClient(create_app(artifact, keys.url, watch_s=0.02)) as client:
        service = client.app.state.service
        old = service.state.bundle.version
        bad: list[str] = []
        for n in range(2):  # two bad versions in a row: each is logged once
            staged = save_bundle(bundle, artifact.parent / f"staging-{n}").resolve()
            _garbage(staged)  # damaged before the link points to it
            os.symlink(staged.name, artifact.parent / f"link-{n}")
            os.replace(artifact.parent / f"link-{n}", artifact)
            bad.append(staged.name)
            time.sleep(1.0)  # ~50 polls
        assert service.state.bundle.version == old
        save_bundle(pop_bundle, artifact)
        deadline = time.monotonic() + 20
        while service.state.model.name != "pop" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert service.state.model.name == "pop"
    loud = [r for r in caplog.records if r.name.startswith("longtail") and r.levelno >= logging.WARNING]
    for name in bad:
        assert len([r for r in loud if name in r.getMessage()]) == 1, [r.getMessage() for r in loud]
    assert len(loud) == 2, [r.getMessage() for r in loud]
    assert sum(1 for r in caplog.records if r.exc_info) <= 2  # a traceback at most once per version
