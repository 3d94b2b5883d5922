"""Acceptance: every event answered 2xx survives a ``kill -9`` of the server mid-stream."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from longtail.serve.bundle import Bundle
from longtail.serve.store import open_store

N_EVENTS = 2000
CLIENTS = 4
KILL_AFTER = 700  # acknowledged events before the SIGKILL


def test_acknowledged_events_survive_kill_9(start_server, artifact: Path, keys, bundle: Bundle) -> None:  # noqa: ANN001
    server = start_server(artifact, keys.url)
    headers = {"X-API-Key": keys.write}
    events = [{"user_id": f"d{n % 50}", "item_id": bundle.item_ids[(n * 7) % len(bundle.item_ids)],
               "timestamp": 1_700_000_000 + n, "event_id": f"ev-{n}"} for n in range(N_EVENTS)]
    acked: set[str] = set()
    lock = threading.Lock()
    enough = threading.Event()

    def client(part: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for event in events[part::CLIENTS]:
                try:
                    response = http.post("/events", json=event, headers=headers)
                except httpx.HTTPError:
                    return  # the server is gone: this event and the rest are not acknowledged
                if 200 <= response.status_code < 300:
                    with lock:
                        acked.add(event["event_id"])
                        if len(acked) >= KILL_AFTER:
                            enough.set()

    threads = [threading.Thread(target=client, args=(part,)) for part in range(CLIENTS)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=120), f"only {len(acked)} events acknowledged"
    server.kill()  # SIGKILL: no shutdown handler, no flush
    for thread in threads:
        thread.join()

    store = open_store(keys.url)
    stored = store.event_ids()
    store.close()
    lost = acked - stored
    print(f"\ndurability: acknowledged {len(acked)}, stored {len(stored)}, acknowledged but lost {len(lost)} "
          f"(stored without an answer: {len(stored - acked)})")
    assert not lost and len(acked) < N_EVENTS

    restarted = start_server(artifact, keys.url)
    with httpx.Client(base_url=restarted.url, timeout=30) as http:
        assert http.get("/health").json()["events"] == len(stored)  # replayed on start
        retried = [http.post("/events", json={"events": events[i:i + 500]}, headers=headers).json()
                   for i in range(0, N_EVENTS, 500)]  # the client retries everything it sent
        assert sum(r["duplicates"] for r in retried) == len(stored)  # event_id: no double counting
        assert sum(r["stored"] for r in retried) == N_EVENTS - len(stored)
        profile = http.get("/users/d0/profile", params={"limit": 100}, headers={"X-API-Key": keys.profile}).json()
    expected = {e["item_id"] for e in events if e["user_id"] == "d0"}
    assert {h["item_id"] for h in profile["history"]} == expected
