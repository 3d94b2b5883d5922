"""Edge validation of text and ids (schemas.py), through the app: control characters, blank titles,
and ids that must round-trip through one URL path segment (``/users/{id}/profile``,
``/items/{id}/similar``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from serve_helpers import Keys, Server

from longtail.serve.bundle import Bundle


def refused(response, field: str) -> bool:  # noqa: ANN001
    """422 with an error on ``field`` (its loc names it; a union body also reports the other
    variant's "extra field" errors, which prove nothing)."""
    assert response.status_code == 422, response.text
    return any(field in error["loc"] and error["type"] != "extra_forbidden" for error in response.json()["detail"])


CONTROLS = ["\x00", "\x1b[31mred\x1b[0m", "\x07", "\r", "\x7f", "\x85", "\x9b31m"]  # C0, DEL, C1 (NEL, CSI)


@pytest.mark.parametrize("title", ["", " ", "   \t ", "\u3000", *(f"a{c}b" for c in CONTROLS), "a\nb", "a\tb"])
def test_titles_must_be_printable_and_not_blank(client: TestClient, keys: Keys, title: str) -> None:
    sent = client.post("/items", json={"item_id": "new", "title": title}, headers={"X-API-Key": keys.write})
    assert refused(sent, "title")


@pytest.mark.parametrize("text", [f"a{c}b" for c in CONTROLS])
def test_text_refuses_control_characters_but_newlines_and_tabs(client: TestClient, keys: Keys, text: str) -> None:
    sent = client.post("/items", json={"item_id": "new", "title": "t", "text": text}, headers={"X-API-Key": keys.write})
    assert refused(sent, "text")


@pytest.mark.parametrize("category", [f"rock{c}" for c in CONTROLS])
def test_categories_refuse_control_characters(client: TestClient, keys: Keys, category: str) -> None:
    sent = client.post("/items", json={"item_id": "new", "title": "t", "categories": ["pop", category]},
                       headers={"X-API-Key": keys.write})
    assert refused(sent, "categories")


@pytest.mark.parametrize("bad", [f"u{c}" for c in CONTROLS] + ["u\n", "u\tv", " u", "u "])
def test_ids_refuse_control_characters_and_outer_spaces(client: TestClient, keys: Keys, bundle: Bundle,
                                                        bad: str) -> None:
    write = {"X-API-Key": keys.write}
    assert refused(client.post("/events", json={"user_id": bad, "item_id": bundle.item_ids[0]}, headers=write),
                   "user_id")
    assert refused(client.post("/events", json={"user_id": "u", "item_id": bad}, headers=write), "item_id")
    assert refused(client.post("/items", json={"item_id": bad, "title": "t"}, headers=write), "item_id")
    assert refused(client.post("/recommend", json={"user_id": bad}, headers={"X-API-Key": keys.read}), "user_id")


@pytest.mark.parametrize("bad", ["a/b", "/", "a/", ".", ".."])
def test_ids_that_cannot_be_a_path_segment_are_refused(client: TestClient, keys: Keys, bundle: Bundle,
                                                       bad: str) -> None:
    """Such a user could post events but never read their profile; such an item never be asked
    for similar items (clients resolve '.' and '..' segments before sending)."""
    write = {"X-API-Key": keys.write}
    assert refused(client.post("/events", json={"user_id": bad, "item_id": bundle.item_ids[0]}, headers=write),
                   "user_id")
    assert refused(client.post("/items", json={"item_id": bad, "title": "t"}, headers=write), "item_id")
    assert refused(client.post("/items", json={"items": [{"item_id": bad, "title": "t"}]}, headers=write),
                   "item_id")


def test_event_id_is_not_a_path_segment_and_may_hold_a_slash(client: TestClient, keys: Keys, bundle: Bundle) -> None:
    sent = client.post("/events", json={"user_id": "u", "item_id": bundle.item_ids[0], "event_id": "order/7/1"},
                       headers={"X-API-Key": keys.write})
    assert sent.status_code == 201, sent.text


def test_text_keeps_newlines_tabs_and_unicode(client: TestClient, keys: Keys) -> None:
    sent = client.post("/items", json={"item_id": "multi", "title": "Café — 東京 ✓",
                                       "text": "line one\nline two\tindented", "categories": ["a b", "ü"]},
                       headers={"X-API-Key": keys.write})
    assert sent.status_code == 201, sent.text


def test_surrogates_are_still_refused(client: TestClient, keys: Keys) -> None:
    write = {"X-API-Key": keys.write, "content-type": "application/json"}
    for body, field in [(b'{"item_id": "n", "title": "\\ud800"}', "title"),
                        (b'{"item_id": "n", "title": "t", "text": "\\udfff"}', "text"),
                        (b'{"item_id": "n", "title": "t", "categories": ["\\ud800"]}', "categories"),
                        (b'{"item_id": "\\ud800", "title": "t"}', "item_id")]:
        assert refused(client.post("/items", content=body, headers=write), field)


AWKWARD = ["with space", "what?", "hash#tag", "100%", "a+b", "café", "~tilde", "x" * 128]
# Starlette's TestClient unquotes the path twice (httpx's ``url.path`` is decoded already), so an id
# holding a percent-escape is only checked against the real server (`longtail serve`), which unquotes once.
ESCAPED = ["%2F", "%41%", "a%20b"]


def round_trip(client: TestClient | httpx.Client, keys: Keys, bundle: Bundle, awkward: list[str]) -> None:
    """Post items and events with these ids, then read each back through a percent-encoded path."""
    read, write = {"X-API-Key": keys.profile}, {"X-API-Key": keys.write}
    items = [{"item_id": i, "title": f"Item {n}", "text": "an awkward id"} for n, i in enumerate(awkward)]
    created = client.post("/items", json={"items": items}, headers=write)
    assert created.status_code == 201, created.text
    events = [{"user_id": u, "item_id": bundle.item_ids[0] if n % 2 else u} for n, u in enumerate(awkward)]
    assert client.post("/events", json={"events": events}, headers=write).status_code == 201
    for n, awkward_id in enumerate(awkward):
        path = quote(awkward_id, safe="")
        profile = client.get(f"/users/{path}/profile", headers=read)
        assert profile.status_code == 200, (awkward_id, profile.text)
        assert profile.json()["user_id"] == awkward_id
        assert [h["item_id"] for h in profile.json()["history"]] == [events[n]["item_id"]]
        similar = client.get(f"/items/{path}/similar", params={"k": 3}, headers=read)
        assert similar.status_code == 200, (awkward_id, similar.text)
        assert similar.json()["item_id"] == awkward_id and len(similar.json()["items"]) == 3


def test_awkward_ids_round_trip_through_a_percent_encoded_path(client: TestClient, keys: Keys,
                                                               bundle: Bundle) -> None:
    round_trip(client, keys, bundle, AWKWARD)


def test_awkward_ids_round_trip_through_the_real_server(artifact: Path, keys: Keys, bundle: Bundle,
                                                        start_server: Callable[[Path, str], Server]) -> None:
    server = start_server(artifact, keys.url)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        round_trip(client, keys, bundle, AWKWARD + ESCAPED)
