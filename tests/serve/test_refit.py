"""Background refit (issue 16): the live state's data fitted from scratch, written as a new version
and swapped in, counts nothing twice and loses nothing posted meanwhile; under 8 clients it drops
no request."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_helpers import Keys, Server, serving_folder

from longtail.serve.bundle import Bundle
from longtail.serve.state import LiveState
from longtail.serve.store import open_store


def test_refit_counts_nothing_twice_and_keeps_what_follows(client: TestClient, keys: Keys, artifact: Path,
                                                            bundle: Bundle) -> None:
    write = {"X-API-Key": keys.write}
    events = [{"user_id": f"r{n % 5}", "item_id": bundle.item_ids[(n * 17) % len(bundle.item_ids)],
               "timestamp": 1_700_000_000 + n} for n in range(40)]
    events.append({"user_id": bundle.user_ids[0], "item_id": bundle.item_ids[3], "timestamp": 1_700_000_100})
    assert client.post("/events", json={"events": events}, headers=write).status_code == 201
    posted = client.post("/items", headers=write, json={"item_id": "NEW-R", "title": bundle.titles[7],
                                                        "text": bundle.texts[7], "categories": []})
    assert posted.status_code == 201, posted.text
    service = client.app.state.service
    before = service.state
    users = [f"r{n}" for n in range(5)] + [bundle.user_ids[0]]
    histories = {u: before.histories.history(before.histories.index_of(u)).items.copy() for u in users}
    popularity = before.catalogue.popularity[: len(before.catalogue)].copy()

    version = service.refit_now()
    after = service.state
    assert after is not before and after.bundle.version == version != before.bundle.version
    through = after.bundle.manifest["through"]
    assert through == {"event_seq": before.last_event_seq, "item_seq": before.last_item_seq}
    with before.lock:
        assert len(after.bundle.train) == len(before.histories.positives()[0])  # train + events, each once
    for u in users:  # the events are in the new artifact's train now, and counted once
        np.testing.assert_array_equal(np.sort(after.histories.history(after.histories.index_of(u)).items),
                                      np.sort(histories[u]))
    np.testing.assert_array_equal(after.catalogue.popularity[: len(after.catalogue)], popularity)
    assert "NEW-R" in after.bundle.item_ids and after.model.n_items_ == len(after.catalogue)

    # a write after the refit lands on top of it; a fresh replay of the store gives the same state
    late = {"user_id": "r0", "item_id": bundle.item_ids[11], "timestamp": 1_700_000_500}
    assert client.post("/events", json={"events": [late]}, headers=write).status_code == 201
    store = open_store(keys.url)
    try:
        replayed = LiveState.load(artifact, store)
    finally:
        store.close()
    for u in users:
        live = service.state.histories.history(service.state.histories.index_of(u)).items
        np.testing.assert_array_equal(np.sort(replayed.histories.history(replayed.histories.index_of(u)).items),
                                      np.sort(live))
    assert bundle.item_ids.index(bundle.item_ids[11]) in service.state.histories.history(
        service.state.histories.index_of("r0")).items


@pytest.mark.slow
def test_background_refit_under_load_drops_no_request_and_loses_no_event(
        tmp_path: Path, serve_env: dict[str, str], bundle: Bundle) -> None:
    """8 clients recommend and post events while ``--refit-every 40`` refits twice in the background."""
    artifact, keys = serving_folder(tmp_path, bundle)
    server = Server(artifact, keys.url, serve_env, tmp_path / "server.log", ("--refit-every", "40"))
    read, write = {"X-API-Key": keys.profile}, {"X-API-Key": keys.write}  # profile: histories read back
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    sent: list[tuple[str, str]] = []
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            k = 0
            while not stop.is_set():
                k += 1
                try:
                    if n % 2:
                        r = http.post("/recommend", json={"user_id": f"load{n}", "k": 10}, headers=read)
                    else:
                        item = bundle.item_ids[(n * 31 + k * 7) % len(bundle.item_ids)]
                        r = http.post("/events", json={"user_id": f"load{n}", "item_id": item}, headers=write)
                        if r.status_code == 201:
                            sent.append((f"load{n}", item))
                    statuses[r.status_code] += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.time() + 120
        refits = 0
        while time.time() < deadline and refits < 2:
            time.sleep(1)
            metrics = httpx.get(f"{server.url}/metrics", headers=read, timeout=10).text
            refits = int(float(next(line.split()[-1] for line in metrics.splitlines()
                                    if line.startswith("longtail_refits_total"))))
        time.sleep(2)  # requests on the swapped state
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert refits >= 2, f"{refits} refits in 120 s"
        assert not failures and set(statuses) <= {200, 201}, (failures[:3], statuses)
        for user in {u for u, _ in sent}:  # every event posted is in the user's history
            profile = httpx.get(f"{server.url}/users/{user}/profile", headers=read, timeout=30).json()
            assert profile["history_size"] == len({i for u, i in sent if u == user}), (user, profile)
    finally:
        server.stop()
