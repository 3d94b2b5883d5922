"""Issue 30, events that keep up: with ``--apply-every-ms T`` the 201 follows the store's commit and
the model update runs in the background; the event reaches the user's recommendations within the
documented bound, a kill -9 loses no acknowledged event, and a refusal still leaves the state whole."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from serve_helpers import Keys
from test_half_applied import ease_bundle, gauge, new_items  # noqa: F401 (ease_bundle: a fixture)

from longtail.serve.bundle import Bundle, save_bundle
from longtail.serve.store import open_store

T_MS = 200


def metrics(http: httpx.Client, keys: Keys) -> str:
    return http.get("/metrics", headers={"X-API-Key": keys.read}).text


def settled(http: httpx.Client, keys: Keys, timeout: float = 20.0) -> str:
    """/metrics once nothing acknowledged is waiting for the applier."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = metrics(http, keys)
        if gauge(text, "longtail_events_pending") == 0:
            return text
        time.sleep(0.05)
    raise AssertionError(f"events still pending after {timeout} s")


def top_items(http: httpx.Client, user: str, keys: Keys) -> list[str]:
    answer = http.post("/recommend", json={"user_id": user, "k": 10}, headers={"X-API-Key": keys.read})
    assert answer.status_code == 200, answer.text
    return [i["item_id"] for i in answer.json()["items"]]


def test_deferred_event_is_answered_first_and_shows_within_the_bound(start_server, artifact: Path, keys: Keys,
                                                                     bundle: Bundle) -> None:  # noqa: ANN001
    server = start_server(artifact, keys.url, "--apply-every-ms", str(T_MS))
    user = bundle.user_ids[3]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        before = top_items(http, user, keys)
        sent = time.monotonic()
        answer = http.post("/events", json={"user_id": user, "item_id": before[0], "timestamp": 1_900_000_000},
                           headers={"X-API-Key": keys.write})
        answered = time.monotonic()
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["stored"] == 1 and body["applied"] is False and body["model_updated"] is None
        assert body["apply_within_ms"] == T_MS
        first = top_items(http, user, keys)
        if time.monotonic() - sent < T_MS / 2000:  # (on a loaded machine the check may come too late to tell)
            assert first == before, "applied before T elapsed: the request did not defer the update"
        seen = first
        while before[0] in seen and time.monotonic() - answered < 30:
            time.sleep(0.02)
            seen = top_items(http, user, keys)
        visible = time.monotonic() - answered
        text = settled(http, keys)
    assert before[0] not in seen  # now in the history: not recommended again
    bound = T_MS / 1000 + 2 * gauge(text, "longtail_apply_seconds_max")
    print(f"\ndeferred: 201 in {1000 * (answered - sent):.0f} ms, visible {1000 * visible:.0f} ms after it "
          f"(bound {1000 * bound:.0f} ms + polling), max lag {gauge(text, 'longtail_apply_lag_seconds_max'):.3f} s")
    # the server's own measure; + scheduling slack for the nice'd applier on a shared 2-core machine
    assert gauge(text, "longtail_apply_lag_seconds_max") <= bound + 0.5
    assert visible <= bound + 0.5  # + one poll's round trips on a shared machine


def test_kill_9_mid_stream_loses_no_acknowledged_deferred_event(start_server, artifact: Path, keys: Keys,
                                                                bundle: Bundle) -> None:  # noqa: ANN001
    server = start_server(artifact, keys.url, "--apply-every-ms", "100")
    write = {"X-API-Key": keys.write}
    n_items = len(bundle.item_ids)
    events = [{"user_id": f"k{n % 20}", "item_id": bundle.item_ids[(n * 7) % n_items],
               "timestamp": 1_700_000_000 + n, "event_id": f"kv-{n}"} for n in range(1500)]
    acked: list[dict] = []
    lock, enough = threading.Lock(), threading.Event()

    def client(part: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for event in events[part::3]:
                try:
                    response = http.post("/events", json=event, headers=write)
                except httpx.HTTPError:
                    return
                if response.status_code == 201:
                    with lock:
                        acked.append(event)
                        if len(acked) >= 300:
                            enough.set()

    threads = [threading.Thread(target=client, args=(p,)) for p in range(3)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=60), f"only {len(acked)} events acknowledged"
    server.kill()
    for thread in threads:
        thread.join()
    store = open_store(keys.url)
    stored = store.event_ids()
    store.close()
    assert {e["event_id"] for e in acked} <= stored and len(acked) < len(events)

    restarted = start_server(artifact, keys.url, "--apply-every-ms", "100")  # replays the store on start
    with httpx.Client(base_url=restarted.url, timeout=30) as http:
        for user in {e["user_id"] for e in acked}:
            profile = http.get(f"/users/{user}/profile", params={"limit": 100}, headers={"X-API-Key": keys.admin})
            assert profile.status_code == 200, profile.text
            history = {h["item_id"] for h in profile.json()["history"]}
            assert {e["item_id"] for e in acked if e["user_id"] == user} <= history


def test_deferred_refusal_leaves_the_state_whole_and_is_counted(start_server, tmp_path: Path, keys: Keys,
                                                                ease_bundle: Bundle) -> None:  # noqa: ANN001, F811
    artifact = save_bundle(ease_bundle, tmp_path / "model")
    write, admin = {"X-API-Key": keys.write}, {"X-API-Key": keys.admin}
    server = start_server(artifact, keys.url, "--apply-every-ms", "100")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        posted = http.post("/items", json=new_items(ease_bundle, ["NEW-0", "NEW-1", "NEW-2"]), headers=write)
        assert posted.status_code == 201, posted.text
        batch = [{"user_id": f"h{n}", "item_id": f"NEW-{n}"} for n in range(3)]  # the third: past max_items
        answer = http.post("/events", json={"events": batch}, headers=write)
        assert answer.status_code == 201 and answer.json()["applied"] is False, answer.text
        text = settled(http, keys)
        assert gauge(text, "longtail_events_not_applied") == 1
        assert http.get("/users/h2/profile", headers=admin).status_code == 404  # no trace of it
        for n in range(2):
            history = http.get(f"/users/h{n}/profile", headers=admin).json()["history"]
            assert [h["item_id"] for h in history] == [f"NEW-{n}"]
        later = http.post("/events", json={"user_id": "h0", "item_id": "NEW-1"}, headers=write)
        assert later.status_code == 201, later.text
        text = settled(http, keys)
        assert gauge(text, "longtail_events_not_applied") == 1
        history = http.get("/users/h0/profile", headers=admin).json()["history"]
        assert {h["item_id"] for h in history} == {"NEW-0", "NEW-1"}
    assert (tmp_path / "server.log").read_text().count("not applied") == 1  # one line for the apply
