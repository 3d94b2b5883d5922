"""Acceptance (issue 29): scopes that match the data, through the real server process. A read key
gets no history (403 on profiles, nothing private in /recommend), a write key no /admin/*, only
/health answers without a key, expired keys are refused, each stored event names its key, and a
second reload is refused at once (409) instead of queueing behind the first."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
from serve_helpers import Keys, make_keys
from typer.testing import CliRunner

from longtail.cli import app as cli
from longtail.serve.bundle import Bundle
from longtail.serve.keys import create_key
from longtail.serve.store import open_store


def longest_history(bundle: Bundle) -> str:
    return bundle.user_ids[int(np.argmax(np.bincount(bundle.train.users, minlength=len(bundle.user_ids))))]


def test_read_key_sees_no_history_and_write_key_no_admin(artifact: Path, keys: Keys, bundle: Bundle,
                                                         start_server) -> None:  # noqa: ANN001
    server = start_server(artifact, keys.url)
    user = longest_history(bundle)
    as_ = {scope: {"X-API-Key": getattr(keys, scope)} for scope in ("read", "profile", "write", "admin")}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        profile = {s: http.get(f"/users/{user}/profile", headers=h).status_code for s, h in as_.items()}
        assert profile == {"read": 403, "profile": 200, "write": 403, "admin": 200}
        refused = http.get(f"/users/{user}/profile", headers=as_["read"]).json()["detail"]
        assert "profile scope" in refused
        reload = {s: http.post("/admin/reload", headers=h).status_code for s, h in as_.items()}
        assert reload == {"read": 403, "profile": 403, "write": 403, "admin": 200}

        public = http.post("/recommend", json={"user_id": user, "k": 5}, headers=as_["read"]).json()
        private = http.post("/recommend", json={"user_id": user, "k": 5}, headers=as_["profile"]).json()
        assert public["known_user"] is None and public["history_size"] is None
        assert all(i["because"] is None for i in public["items"])
        assert "liked" not in " ".join(str(i["explanation"]) for i in public["items"])  # no history titles
        assert private["known_user"] is True and private["history_size"] > 0
        assert any(i["because"] for i in private["items"])
        assert [i["item_id"] for i in public["items"]] == [i["item_id"] for i in private["items"]]
        unknown = http.post("/recommend", json={"user_id": "nobody-here", "k": 5}, headers=as_["read"]).json()
        assert unknown["known_user"] is None  # no enumeration through the answer's fields

        for path in ("/metrics", "/openapi.json", "/docs", "/redoc"):
            assert http.get(path).status_code == 401, path
            assert http.get(path, headers={"X-API-Key": "lt_00000000_" + "A" * 43}).status_code == 401, path
            assert http.get(path, headers=as_["read"]).status_code == 200, path
        assert http.get("/health").status_code == 200
        assert "longtail_key_store_reads_total" in http.get("/metrics", headers=as_["read"]).text

        item = bundle.item_ids[0]
        event = {"user_id": "audited", "item_id": item}
        assert http.post("/events", json=event, headers=as_["write"]).status_code == 201
        assert http.post("/events", json=event, headers=as_["profile"]).status_code == 403
    store = open_store(keys.url)
    try:
        with store._reading() as conn:
            rows = conn.execute("SELECT key_id FROM events WHERE user_id = 'audited'").fetchall()
    finally:
        store.close()
    assert [r[0] for r in rows] == [keys.write[3:11]]  # who wrote it


def test_expired_key_is_refused_and_cli_sets_expiry(artifact: Path, keys: Keys, start_server) -> None:  # noqa: ANN001
    server = start_server(artifact, keys.url)
    store = open_store(keys.url)  # beside the running server, as `longtail keys create` does
    try:
        short = create_key(store, "read", "short", expires=time.time() + 2.0)
    finally:
        store.close()
    body = {"user_id": "x", "k": 3}
    assert httpx.post(f"{server.url}/recommend", json=body, headers={"X-API-Key": short}, timeout=30).status_code == 200
    time.sleep(2.2)
    expired = httpx.post(f"{server.url}/recommend", json=body, headers={"X-API-Key": short}, timeout=30)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert expired.headers["www-authenticate"] == "ApiKey"

    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "--store", keys.url, "--scope", "profile", "--expires", "30d"])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(cli, ["keys", "list", "--store", keys.url])
    in_30_days = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86_400))
    assert made.output.strip()[3:11] in listed.output and in_30_days in listed.output
    assert "(expired)" in listed.output  # the short key
    bad = runner.invoke(cli, ["keys", "create", "--store", keys.url, "--expires", "yesterday"])
    assert bad.exit_code != 0 and "expires" in bad.output


def test_a_second_reload_is_refused_at_once(tmp_path: Path, bundle: Bundle, start_server) -> None:  # noqa: ANN001
    """The first reload replays a store of 300,000 events (seconds); the second, sent while it runs,
    gets 409 within 100 ms instead of waiting for a worker thread and the lock."""
    from longtail.serve.bundle import save_bundle

    artifact = save_bundle(bundle, tmp_path / "model")
    keys = make_keys(f"sqlite:///{tmp_path / 'big.db'}")
    rng = np.random.default_rng(0)
    n = 300_000
    rows = list(zip([f"u{u}" for u in rng.integers(0, 5000, n)],
                    [bundle.item_ids[i] for i in rng.integers(0, len(bundle.item_ids), n)], range(n), [0.0] * n))
    store = open_store(keys.url)
    try:
        with store._write() as conn:  # one transaction: the API's path would take minutes for this many
            conn.executemany("INSERT INTO events (user_id, item_id, ts, received) VALUES (?, ?, ?, ?)", rows)
    finally:
        store.close()
    server = start_server(artifact, keys.url)
    admin = {"X-API-Key": keys.admin}
    first: list[tuple[int, float]] = []

    def reload() -> None:
        started = time.perf_counter()
        status = httpx.post(f"{server.url}/admin/reload", headers=admin, timeout=120).status_code
        first.append((status, time.perf_counter() - started))

    with httpx.Client(base_url=server.url, headers=admin, timeout=120) as http:
        assert http.get("/metrics").status_code == 200  # connected, key remembered
        running = threading.Thread(target=reload)
        running.start()
        time.sleep(0.3)  # the first one is loading and replaying by now
        seconds: list[tuple[int, float]] = []
        for _ in range(3):  # three tries, the median judged: the machine is shared, one may be descheduled
            started = time.perf_counter()
            seconds.append((http.post("/admin/reload").status_code, time.perf_counter() - started))
            time.sleep(0.05)
        running.join()
        print(f"\nfirst reload: {first[0][0]} in {first[0][1]:.2f} s; the others while it ran: "
              + ", ".join(f"{status} in {1000 * s:.1f} ms" for status, s in seconds))
        assert first[0][0] == 200 and first[0][1] > 0.5
        assert [status for status, _ in seconds] == [409] * 3
        assert sorted(s for _, s in seconds)[1] < 0.1
        assert http.post("/admin/reload").status_code == 200  # free again once the first has finished
