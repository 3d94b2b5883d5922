"""The app in process (Starlette's TestClient): live events and items, replay, the blend rule,
security edges (keys, scopes, sizes, limits, error bodies), metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_helpers import Keys

from longtail.data.history import HistoryBatch
from longtail.serve import create_app
from longtail.serve.bundle import Bundle, load_bundle
from longtail.serve.state import LiveState
from longtail.serve.store import open_store


@pytest.fixture
def client(artifact: Path, keys: Keys) -> Iterator[TestClient]:
    with TestClient(create_app(artifact, keys.url, max_body_bytes=20_000), raise_server_exceptions=False) as c:
        yield c


def ids(response) -> list[str]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def a_user_with_history(bundle: Bundle, size: int = 3) -> str:
    counts = np.bincount(bundle.train.users, minlength=len(bundle.user_ids))
    return bundle.user_ids[int(np.flatnonzero(counts >= size)[0])]


def test_artifact_manifest_carries_what_serving_needs(artifact: Path, bundle: Bundle) -> None:
    loaded = load_bundle(artifact)
    manifest = loaded.manifest
    assert manifest["model"] == "itemknn" and manifest["params"] == {"k": 200, "weighting": "tfidf", "shrink": 10.0}
    assert len(manifest["dataset"]["fingerprint"]) == 64 and manifest["encoder"]["fingerprint"]
    assert set(manifest["checksums"]) == {"arrays.npz", "catalogue.json", "users.json"}
    assert loaded.item_ids == bundle.item_ids and loaded.user_ids == bundle.user_ids
    np.testing.assert_array_equal(loaded.embeddings, bundle.embeddings)
    np.testing.assert_array_equal(loaded.popularity, bundle.popularity)
    queries = HistoryBatch.from_interactions(bundle.train, [0, 1])
    before = bundle.model.recommend(queries, k=10)
    after = loaded.model.recommend(queries, k=10)
    np.testing.assert_array_equal(before[0], after[0])
    assert manifest["pipeline"]["fallback"]["threshold"] == 0.35  # the default when none was chosen


def test_event_changes_next_recommendations_and_profile(client: TestClient, keys: Keys, bundle: Bundle) -> None:
    read, write = {"X-API-Key": keys.read}, {"X-API-Key": keys.write}
    user = a_user_with_history(bundle)
    first = ids(client.post("/recommend", json={"user_id": user, "k": 10}, headers=read))
    stored = client.post("/events", json={"events": [{"user_id": user, "item_id": first[0]},
                                                     {"user_id": user, "item_id": first[1]}]}, headers=write)
    assert stored.status_code == 201 and stored.json()["stored"] == 2
    second = ids(client.post("/recommend", json={"user_id": user, "k": 10}, headers=read))
    assert first[0] not in second and first[1] not in second and second != first
    profile = client.get(f"/users/{user}/profile", params={"limit": 2}, headers={"X-API-Key": keys.profile}).json()
    assert profile["event_items"] == 2 and len(profile["history"]) == 2
    assert {h["source"] for h in profile["history"]} == {"event"}  # most recent first


def test_new_user_gets_popular_then_personal(client: TestClient, keys: Keys, bundle: Bundle) -> None:
    read, write = {"X-API-Key": keys.profile}, {"X-API-Key": keys.write}  # profile: known_user, because
    cold = client.post("/recommend", json={"user_id": "brand-new", "k": 10}, headers=read).json()
    assert not cold["known_user"] and {i["source"] for i in cold["items"]} == {"popular"}
    assert len({i["item_id"] for i in cold["items"]}) == 10
    popular = int(np.argmax(bundle.popularity))
    assert cold["items"][0]["item_id"] == bundle.item_ids[popular]  # the most popular first
    item = bundle.item_ids[int(np.argsort(bundle.popularity)[len(bundle.popularity) // 2])]
    client.post("/events", json={"user_id": "brand-new", "item_id": item}, headers=write)
    warm = client.post("/recommend", json={"user_id": "brand-new", "k": 10}, headers=read).json()
    assert warm["known_user"] and warm["history_size"] == 1 and item not in ids_of(warm)
    assert warm["items"][0]["source"] in {"model", "text"} and warm["items"][0]["because"] == item


def ids_of(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_replay_rebuilds_the_same_state(client: TestClient, keys: Keys, artifact: Path, bundle: Bundle) -> None:
    write = {"X-API-Key": keys.write}
    events = [{"user_id": f"u{n % 7}", "item_id": bundle.item_ids[(n * 13) % len(bundle.item_ids)],
               "timestamp": 1_700_000_000 + n} for n in range(60)]
    assert client.post("/events", json={"events": events}, headers=write).status_code == 201
    live = client.app.state.service.state
    store = open_store(keys.url)
    try:
        replayed = LiveState.load(artifact, store)
    finally:
        store.close()
    for user in [f"u{n}" for n in range(7)] + [bundle.user_ids[0]]:
        a = live.histories.history(live.histories.index_of(user))
        b = replayed.histories.history(replayed.histories.index_of(user))
        np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(live.catalogue.popularity[:len(live.catalogue)],
                                  replayed.catalogue.popularity[:len(replayed.catalogue)])


def test_keys_and_scopes(client: TestClient, keys: Keys) -> None:
    body = {"user_id": "x", "item_id": "y"}
    missing = client.post("/recommend", json={"user_id": "x"})
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "ApiKey"
    assert client.post("/recommend", json={"user_id": "x"}, headers={"X-API-Key": "lt_00000000_" + "a" * 43}
                       ).status_code == 401
    forbidden = client.post("/events", json=body, headers={"X-API-Key": keys.read})
    assert forbidden.status_code == 403 and "write scope" in forbidden.json()["detail"]
    assert client.post("/items", json={"item_id": "n", "title": "t"}, headers={"X-API-Key": keys.read}
                       ).status_code == 403
    assert client.get("/health").status_code == 200 and client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": keys.read}).status_code == 200
    scheme = client.get("/openapi.json", headers={"X-API-Key": keys.read}).json()["components"]["securitySchemes"]
    assert scheme["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                      "description": scheme["APIKeyHeader"]["description"]}


def test_malformed_oversize_and_limits_get_clear_4xx(client: TestClient, keys: Keys) -> None:
    read, write = {"X-API-Key": keys.read}, {"X-API-Key": keys.write}
    bad_json = client.post("/recommend", content=b"{not json", headers={**read, "content-type": "application/json"})
    assert bad_json.status_code == 422 and bad_json.json()["detail"][0]["msg"] == "JSON decode error"
    big = client.post("/events", content=b"[" + b" " * 30_000 + b"]",
                      headers={**write, "content-type": "application/json"})
    assert big.status_code == 413 and big.json() == {"detail": "request body larger than 20000 bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        yield b'{"events": ['
        for _ in range(3000):
            yield b'{"user_id": "a", "item_id": "b"},'
        yield b"]}"

    streamed = client.post("/events", content=chunks(), headers={**write, "content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.post("/recommend", json={"user_id": "x", "k": 101}, headers=read).status_code == 422
    assert client.get("/users/x/profile", params={"limit": 1000}, headers={"X-API-Key": keys.profile}).status_code == 422
    assert client.get("/items/x/similar", params={"k": 0}, headers=read).status_code == 422
    surrogate = client.post("/events", content=b'{"user_id": "\\ud800", "item_id": "b"}',
                            headers={**write, "content-type": "application/json"})
    assert surrogate.status_code == 422 and "unicode" in surrogate.text
    unknown = client.post("/events", json={"user_id": "a", "item_id": "no-such-item"}, headers=write)
    assert unknown.status_code == 404 and "no-such-item" in unknown.json()["detail"]


def test_no_stack_trace_in_error_bodies(client: TestClient, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    import longtail.serve.routers.recommend as route

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(route, "recommend", broken)
    response = client.post("/recommend", json={"user_id": "x"}, headers={"X-API-Key": keys.read})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error (logged on the server)"}
    assert "Traceback" not in response.text and "secret" not in response.text


def test_metrics_are_prometheus_text(client: TestClient, keys: Keys, bundle: Bundle) -> None:
    client.post("/recommend", json={"user_id": "x"}, headers={"X-API-Key": keys.read})
    client.post("/events", json={"user_id": "x", "item_id": bundle.item_ids[0]}, headers={"X-API-Key": keys.write})
    client.get("/items/%2E%2E/similar", headers={"X-API-Key": keys.read})
    text = client.get("/metrics", headers={"X-API-Key": keys.read}).text
    assert 'longtail_requests_total{method="POST",route="/recommend",status="200"} 1' in text
    assert 'longtail_request_duration_seconds_bucket{method="POST",route="/recommend",le="+Inf"} 1' in text
    assert 'route="/items/{item_id}/similar",status="404"' in text  # the template, never the raw path
    assert f"longtail_catalogue_items {len(bundle.item_ids)}" in text and "longtail_events_stored 1" in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2


def test_watcher_swaps_in_a_new_artifact_version(artifact: Path, keys: Keys, pop_bundle: Bundle) -> None:
    from longtail.serve.bundle import save_bundle

    app = create_app(artifact, keys.url, watch_s=0.05)
    with TestClient(app) as client:
        read, write = {"X-API-Key": keys.read}, {"X-API-Key": keys.write}
        item = pop_bundle.item_ids[0]
        client.post("/events", json={"user_id": "watched", "item_id": item}, headers=write)
        assert client.post("/recommend", json={"user_id": "x"}, headers=read).json()["model"] == "itemknn"
        save_bundle(pop_bundle, artifact)
        deadline = time.monotonic() + 20
        while client.app.state.service.state.model.name != "pop" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.post("/recommend", json={"user_id": "x"}, headers=read).json()["model"] == "pop"
        profile = client.get("/users/watched/profile", headers={"X-API-Key": keys.profile}).json()
        assert [h["item_id"] for h in profile["history"]] == [item]  # the store was replayed over it
        assert "longtail_artifact_reloads_total 1" in client.get("/metrics", headers=read).text


@pytest.mark.parametrize("name", ["als", "semantic"])
def test_other_models_serve_new_users_and_new_items(name: str, bundle: Bundle, tmp_path: Path) -> None:
    """ALS folds a user it never saw in; a posted item reaches the list through the model's
    ``partial_fit``: a text model indexes it and scores it itself, ALS (no event on it yet) leaves
    it to the text fallback."""
    from longtail.models import make_model
    from longtail.serve.bundle import save_bundle
    from longtail.serve.ranking import recommend

    params = {"als": {"factors": 8, "iterations": 3}}.get(name, {})
    model = make_model(name, **params).fit(bundle.train, item_embeddings=bundle.embeddings)
    other = Bundle(bundle.manifest, model, bundle.user_ids, bundle.item_ids, bundle.titles, bundle.texts,
                   bundle.embeddings, bundle.train)
    store = open_store(tmp_path / "s.db")
    state = LiveState.load(save_bundle(other, tmp_path / "model"), store)
    store.close()
    anchor = 5
    state.apply_events([1], ["stranger"], [bundle.item_ids[anchor]], [1])
    state.add_items([1], ["copy"], ["copy"], ["copy"], bundle.embeddings[anchor][None, :])
    _, picks = recommend(state, "stranger", 10)
    assert len(picks) == 10 and bundle.item_ids[anchor] not in [state.catalogue.ids[p.item] for p in picks]
    copy = [p for p in picks if state.catalogue.ids[p.item] == "copy"]
    assert copy and copy[0].source == {"als": "text", "semantic": "model"}[name]
    assert copy[0].explanation.kind == {"als": "text", "semantic": "history"}[name]
    assert copy[0].explanation.evidence[0].item == anchor
    if name == "semantic":
        assert copy[0].score == pytest.approx(1.0, abs=1e-5) and picks[0] == copy[0]


def test_a_broken_new_version_keeps_the_old_one_serving(client: TestClient, keys: Keys, artifact: Path) -> None:
    target = artifact.resolve()
    (target / "catalogue.json").write_text("[]")  # corrupt the version being served, on disk
    swapped = client.post("/admin/reload", headers={"X-API-Key": keys.admin})
    assert swapped.status_code == 503 and "still serving" in swapped.json()["detail"]
    assert "checksum" in swapped.json()["detail"]
    assert client.post("/recommend", json={"user_id": "x"}, headers={"X-API-Key": keys.read}).status_code == 200


def test_explain_false_gives_the_same_list_without_reasons(client: TestClient, keys: Keys, bundle: Bundle) -> None:
    read = {"X-API-Key": keys.read}
    user = a_user_with_history(bundle)
    full = client.post("/recommend", json={"user_id": user, "k": 8}, headers=read).json()["items"]
    bare = client.post("/recommend", json={"user_id": user, "k": 8, "explain": False}, headers=read).json()["items"]
    assert all(item["explanation"] for item in full)
    assert [(i["item_id"], i["score"]) for i in bare] == [(i["item_id"], i["score"]) for i in full]
    assert all(i["explanation"] is None and i["because"] is None for i in bare)
