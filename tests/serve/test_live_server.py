"""Acceptance against a real ``uvicorn`` subprocess on 127.0.0.1: a posted item is similar to its
neighbour and recommendable at once; an event changes the next recommendations; swapping the
artifact while clients hammer the service drops no request."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from serve_helpers import Keys, Server, serving_folder

from longtail.serve.bundle import Bundle, save_bundle


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, serve_env: dict[str, str], bundle: Bundle
         ) -> Iterator[tuple[Server, Keys, Path]]:
    folder = tmp_path_factory.mktemp("live")
    artifact, keys = serving_folder(folder, bundle)
    server = Server(artifact, keys.url, serve_env, folder / "server.log")
    yield server, keys, artifact
    server.stop()


def item_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [i["item_id"] for i in response.json()["items"]]


def test_posted_item_is_similar_and_recommendable_at_once(live: tuple[Server, Keys, Path], bundle: Bundle,
                                                         dataset_dir: Path) -> None:
    server, keys, _ = live
    read, write = {"X-API-Key": keys.read}, {"X-API-Key": keys.write}
    anchor = int(np.argsort(bundle.popularity)[len(bundle.popularity) // 3])  # a tail item
    anchor_id, title = bundle.item_ids[anchor], bundle.titles[anchor]
    items = pd.read_csv(next(dataset_dir.glob("items.*")), dtype={"item_id": str}).set_index("item_id")
    column = "categories" if "categories" in items.columns else "genres"
    categories = str(items.loc[anchor_id, column]).split("|")
    with httpx.Client(base_url=server.url, timeout=120) as client:
        assert client.post("/events", json={"user_id": "fan", "item_id": anchor_id}, headers=write).status_code == 201
        before = item_ids(client.post("/recommend", json={"user_id": "fan", "k": 20}, headers=read))
        created = client.post("/items", headers=write, json={
            "item_id": "NEW-1", "title": f"{title} (Deluxe Edition)", "text": bundle.texts[anchor],
            "categories": categories})
        assert created.status_code == 201, created.text
        assert created.json()["catalogue_size"] == len(bundle.item_ids) + 1
        similar = client.get(f"/items/{anchor_id}/similar", params={"k": 5}, headers=read).json()["items"]
        assert similar[0]["item_id"] == "NEW-1" and similar[0]["score"] > 0.8
        back = client.get("/items/NEW-1/similar", params={"k": 3}, headers=read).json()["items"]
        assert back[0]["item_id"] == anchor_id
        after = client.post("/recommend", json={"user_id": "fan", "k": 20},
                            headers={"X-API-Key": keys.profile}).json()["items"]  # profile: ``because``
        new = [i for i in after if i["item_id"] == "NEW-1"]
        assert "NEW-1" not in before and new, after
        # the model (updated with the item's text: ``partial_fit``) leaves it unscored, the text fallback ranks it
        assert new[0]["source"] == "text" and new[0]["because"] == anchor_id
        assert "without interactions" in new[0]["explanation"]


def test_event_changes_that_users_next_recommendations(live: tuple[Server, Keys, Path], bundle: Bundle) -> None:
    server, keys, _ = live
    read, write = {"X-API-Key": keys.read}, {"X-API-Key": keys.write}
    user = bundle.user_ids[int(np.argmax(np.bincount(bundle.train.users)))]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        first = item_ids(client.post("/recommend", json={"user_id": user, "k": 10}, headers=read))
        other = item_ids(client.post("/recommend", json={"user_id": "someone-else", "k": 10}, headers=read))
        assert client.post("/events", json={"user_id": user, "item_id": first[0]}, headers=write).status_code == 201
        second = item_ids(client.post("/recommend", json={"user_id": user, "k": 10}, headers=read))
        assert first[0] not in second and second != first
        assert item_ids(client.post("/recommend", json={"user_id": "someone-else", "k": 10}, headers=read)) == other
        profile = client.get(f"/users/{user}/profile", params={"limit": 1}, headers={"X-API-Key": keys.profile}).json()
        assert profile["history"][0] == {**profile["history"][0], "item_id": first[0], "source": "event"}


def test_artifact_swap_drops_no_request(live: tuple[Server, Keys, Path], bundle: Bundle, pop_bundle: Bundle) -> None:
    server, keys, artifact = live
    read = {"X-API-Key": keys.read}
    statuses: Counter[int] = Counter()
    models: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def hammer(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                try:
                    if n % 2:
                        r = client.post("/recommend", json={"user_id": bundle.user_ids[n], "k": 10}, headers=read)
                        if r.status_code == 200:
                            models[r.json()["model"]] += 1
                    else:
                        r = client.get(f"/items/{bundle.item_ids[n]}/similar", params={"k": 5}, headers=read)
                    statuses[r.status_code] += 1
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    versions = []
    with httpx.Client(base_url=server.url, timeout=60) as admin:
        for new in (pop_bundle, bundle):
            time.sleep(0.5)
            save_bundle(new, artifact)  # a new version directory, then the symlink flip
            swapped = admin.post("/admin/reload", headers={"X-API-Key": keys.admin})
            assert swapped.status_code == 200, swapped.text
            versions.append(swapped.json())
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join()
        profile = admin.get("/users/fan/profile", headers={"X-API-Key": keys.profile})
    print(f"\nswap test: {sum(statuses.values())} requests during 2 swaps, statuses {dict(statuses)}, "
          f"models answered {dict(models)}, client errors {len(failures)}")
    assert not failures and set(statuses) == {200}
    assert models["pop"] > 0 and models["itemknn"] > 0
    assert versions[0]["previous"] != versions[0]["artifact"] == versions[1]["previous"]
    assert profile.status_code == 200 and profile.json()["event_items"] >= 1  # events replayed over the new artifact
