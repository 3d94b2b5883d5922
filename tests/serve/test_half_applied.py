"""Issue 29, apply then publish: a stored write the live state cannot take leaves it exactly as it
was, is answered as such (201: it is stored), counted in /metrics, learned by the next refit, and
never keeps the service from starting again (replay skips it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_helpers import Keys

from longtail.serve import create_app
from longtail.serve.bundle import Bundle, save_bundle, train_bundle
from longtail.serve.refit import refit, snapshot
from longtail.serve.store import open_store
from longtail.text.index import VectorIndex

TEMPLATE = "{title}. {genres}{category}"
LEAKS = ("Error", "Traceback", "/", "max_items", "SELECT")


@pytest.fixture(scope="module")
def ease_bundle(serve_env: dict[str, str], dataset_dir: Path) -> Bundle:
    """Real EASE whose ``max_items`` is the artifact's warm count + 2: the third posted item that
    gets an event makes ``partial_fit`` refuse (a write key can always get there)."""
    warm = len(train_bundle(dataset_dir, "ease", template=TEMPLATE).model.warm_items_)
    return train_bundle(dataset_dir, "ease", {"max_items": warm + 2}, template=TEMPLATE)


def new_items(bundle: Bundle, names: list[str], offset: int = 0) -> dict[str, Any]:
    return {"items": [{"item_id": name, "title": bundle.titles[offset + n], "text": bundle.texts[offset + n],
                       "categories": []} for n, name in enumerate(names)]}


def gauge(metrics: str, name: str) -> float:
    return float(next(line.split()[-1] for line in metrics.splitlines() if line.startswith(name + " ")))


def lists(http: httpx.Client | TestClient, users: list[str], read: dict[str, str]) -> dict[str, list]:
    answers = {u: http.post("/recommend", json={"user_id": u, "k": 20}, headers=read) for u in users}
    assert all(a.status_code == 200 for a in answers.values()), {u: a.text for u, a in answers.items()}
    return {u: [(i["item_id"], i["score"], i["source"]) for i in a.json()["items"]] for u, a in answers.items()}


def test_event_the_model_refuses_is_stored_answered_counted_and_replayable(
        start_server, tmp_path: Path, keys: Keys, ease_bundle: Bundle) -> None:  # noqa: ANN001
    bundle = ease_bundle
    artifact = save_bundle(bundle, tmp_path / "model")
    read, write = {"X-API-Key": keys.read}, {"X-API-Key": keys.write}
    users = [bundle.user_ids[0], bundle.user_ids[1], "h0"]
    server = start_server(artifact, keys.url)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        posted = http.post("/items", json=new_items(bundle, ["NEW-0", "NEW-1", "NEW-2"]), headers=write)
        assert posted.status_code == 201 and posted.json()["indexed"] is True, posted.text
        for n in range(2):  # each turns one more item warm: up to max_items
            ok = http.post("/events", json={"user_id": f"h{n}", "item_id": f"NEW-{n}", "timestamp": 1_700_000_000 + n},
                           headers=write)
            assert ok.status_code == 201 and ok.json()["model_updated"] is True, ok.text
        before = lists(http, users, read)
        refused = http.post("/events", json={"user_id": "h2", "item_id": "NEW-2", "timestamp": 1_700_000_002},
                            headers=write)  # one warm item too many: EASE's partial_fit refuses
        print("\nrefused event answered:", refused.status_code, refused.text)
        assert refused.status_code == 201, refused.text
        body = refused.json()
        assert body["stored"] == 1 and body["model_updated"] is False and body["not_applied"] == 1
        assert body["reason"] and not any(leak in body["reason"] for leak in LEAKS), body["reason"]
        assert lists(http, users, read) == before  # nothing of it reached the live state
        assert http.get("/users/h2/profile", headers={"X-API-Key": keys.admin}).status_code == 404  # no new user
        assert gauge(http.get("/metrics", headers=read).text, "longtail_events_not_applied") == 1
        again = http.post("/events", json={"user_id": "h0", "item_id": "NEW-1", "timestamp": 1_700_000_003},
                          headers=write)  # an event the model can take still goes in
        assert again.status_code == 201 and again.json()["model_updated"] is True, again.text
        after_more = lists(http, users, read)
    store = open_store(keys.url)
    try:
        assert store.count_events() == 4
    finally:
        store.close()
    server.stop()

    restarted = start_server(artifact, keys.url)  # replays the refused event: skipped, not fatal
    with httpx.Client(base_url=restarted.url, timeout=60) as http:
        assert http.get("/health").status_code == 200
        assert [[i for i, _, _ in v] for v in lists(http, users, read).values()] == \
            [[i for i, _, _ in v] for v in after_more.values()]  # the same events applied, in order
        assert gauge(http.get("/metrics", headers=read).text, "longtail_events_not_applied") == 1
    log = (tmp_path / "server.log").read_text()
    assert log.count("not applied") == 2, log[-3000:]  # once live, once for the whole replay


def test_refit_learns_the_events_the_model_refused(keys: Keys, tmp_path: Path, ease_bundle: Bundle) -> None:
    """``snapshot`` folds the stored-but-not-applied events in; the refit artifact learns them."""
    bundle = ease_bundle
    artifact = save_bundle(bundle, tmp_path / "model")
    write = {"X-API-Key": keys.write}
    with TestClient(create_app(artifact, keys.url), raise_server_exceptions=False) as client:
        assert client.post("/items", json=new_items(bundle, ["N0", "N1", "N2"]), headers=write).status_code == 201
        answers = [client.post("/events", json={"events": [{"user_id": f"h{n}", "item_id": f"N{n}"}]}, headers=write)
                   for n in range(3)]
        assert [a.json()["model_updated"] for a in answers] == [True, True, False], [a.text for a in answers]
        state = client.app.state.service.state
        with state.lock:
            data = snapshot(state)
    refused = (data.user_ids.index("h2"), data.item_ids.index("N2"))
    assert refused in set(zip(data.positives.users.tolist(), data.positives.items.tolist(), strict=True))
    assert data.event_seq == answers[-1].json()["last_seq"]  # the refit's ``through`` covers it
    spec = {**data.spec, "params": {**data.spec["params"], "max_items": 100_000}}  # a refit with room for it
    model = refit(dataclasses.replace(data, spec=spec)).model
    assert refused[1] in model.warm_items_


def test_a_batch_keeps_what_the_model_takes(keys: Keys, tmp_path: Path, ease_bundle: Bundle) -> None:
    """One batch, one refused event in the middle: the events around it are applied, it alone is
    set aside (the failing group is split), and ``last_event_seq`` passes it (never retried)."""
    bundle = ease_bundle
    write = {"X-API-Key": keys.write}
    with TestClient(create_app(save_bundle(bundle, tmp_path / "model"), keys.url),
                    raise_server_exceptions=False) as client:
        assert client.post("/items", json=new_items(bundle, ["N0", "N1", "N2"]), headers=write).status_code == 201
        state = client.app.state.service.state
        updates = state.model_updates
        batch = [{"user_id": "h0", "item_id": "N0"}, {"user_id": "h1", "item_id": "N1"},
                 {"user_id": "h2", "item_id": "N2"}, {"user_id": "h0", "item_id": bundle.item_ids[4]}]
        answer = client.post("/events", json={"events": batch}, headers=write).json()
        assert answer["stored"] == 4 and answer["model_updated"] is False and answer["not_applied"] == 1, answer
        assert [r[0] for r in state.unapplied] == [answer["last_seq"] - 1]  # h2 -> N2 only
        assert state.last_event_seq == answer["last_seq"] and state.histories.index_of("h2") is None
        warm = set(state.model.warm_items_.tolist())
        assert {state.catalogue.index_of("N0"), state.catalogue.index_of("N1")} <= warm
        assert state.catalogue.index_of("N2") not in warm and state.model_updates == updates + 2
        h0 = state.histories.history(state.histories.index_of("h0")).items.tolist()
        assert state.catalogue.index_of("N0") in h0 and 4 in h0
        assert state.catalogue.popularity[state.catalogue.index_of("N2")] == 0
        with state.writing, state.lock:  # a replay of the same seqs changes nothing
            assert not state.catch_up(client.app.state.service.store) and len(state.unapplied) == 1


def test_failing_index_add_changes_nothing_and_shifts_no_id(client: TestClient, keys: Keys, bundle: Bundle,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    read, write = {"X-API-Key": keys.read}, {"X-API-Key": keys.write}
    service = client.app.state.service
    catalogue = service.state.catalogue
    size, ids = len(catalogue), list(catalogue.ids)
    users = [bundle.user_ids[0], bundle.user_ids[5]]
    before = lists(client, users, read)

    def broken(self: VectorIndex, ids: Any, vectors: np.ndarray) -> None:
        raise RuntimeError("faiss: cannot allocate 1 TiB in /secret/path")

    monkeypatch.setattr(VectorIndex, "add", broken)
    failed = client.post("/items", json=new_items(bundle, ["LOST-A", "LOST-B"]), headers=write)
    monkeypatch.undo()
    print("\nfailed index add answered:", failed.status_code, failed.text)
    assert failed.status_code == 201, failed.text  # stored: the answer says so
    body = failed.json()
    assert body["added"] == ["LOST-A", "LOST-B"] and body["indexed"] is False
    assert body["reason"] and not any(leak in body["reason"] for leak in LEAKS), body["reason"]
    catalogue = service.state.catalogue
    assert len(catalogue) == size and catalogue.ids == ids and body["catalogue_size"] == size
    assert catalogue.index_of("LOST-A") is None and len(catalogue.snapshot()[0]) == size
    assert client.get("/items/LOST-A/similar", headers=read).status_code == 404
    assert lists(client, users, read) == before
    assert gauge(client.get("/metrics", headers=read).text, "longtail_items_not_indexed") == 2

    later = client.post("/items", json=new_items(bundle, ["LATER"], offset=9), headers=write)
    assert later.status_code == 201 and later.json()["indexed"] is True, later.text
    catalogue = service.state.catalogue
    assert catalogue.index_of("LATER") == size and catalogue.ids[size] == "LATER" and len(catalogue) == size + 1
    similar = client.get("/items/LATER/similar", params={"k": 3}, headers=read).json()["items"]
    twin = bundle.item_ids[9]  # LATER's text is item 9's: its nearest neighbour, under its own id
    assert twin in [s["item_id"] for s in similar], similar
    assert service.state.catalogue.all.ids.tolist() == list(range(size + 1))  # index ids = positions
