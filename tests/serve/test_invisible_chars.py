"""Invisible characters (issue 29): bidi controls and zero-width / format characters (Unicode "Cf")
would let one id look like another, or a title reorder what other clients display around it. Ids,
titles and categories refuse them (422 naming the field); item text refuses the bidi controls only
(zero-width joiners are part of emoji and of Persian and Indic writing)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from serve_helpers import Keys

from longtail.serve.bundle import Bundle

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e",
        "\u200f", "\u061c"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\U000e0041"]  # ZW*, WJ, BOM, SHY, tag


def _refused(response, field: str) -> None:  # noqa: ANN001
    assert response.status_code == 422, response.text
    errors = [e for e in response.json()["detail"] if field in e["loc"] and e["type"] != "extra_forbidden"]
    assert errors and any("invisible" in e["msg"] for e in errors), response.text


def test_ids_titles_and_categories_refuse_bidi_and_zero_width_characters(client: TestClient, keys: Keys,
                                                                         bundle: Bundle) -> None:
    write, read = {"X-API-Key": keys.write}, {"X-API-Key": keys.read}
    for char in BIDI + ZERO_WIDTH:
        bad = f"adm{char}in"
        _refused(client.post("/events", json={"user_id": bad, "item_id": bundle.item_ids[0]}, headers=write),
                 "user_id")
        _refused(client.post("/events", json={"user_id": "u", "item_id": bad}, headers=write), "item_id")
        _refused(client.post("/items", json={"item_id": bad, "title": "t"}, headers=write), "item_id")
        _refused(client.post("/items", json={"item_id": "new", "title": bad}, headers=write), "title")
        _refused(client.post("/items", json={"item_id": "new", "title": "t", "categories": [bad]}, headers=write),
                 "categories")
        _refused(client.post("/recommend", json={"user_id": bad}, headers=read), "user_id")


def test_text_refuses_bidi_controls(client: TestClient, keys: Keys) -> None:
    for char in BIDI:
        sent = client.post("/items", json={"item_id": "new", "title": "t", "text": f"price 10{char}01 USD"},
                           headers={"X-API-Key": keys.write})
        _refused(sent, "text")


def test_text_keeps_joiners_of_emoji_and_scripts(client: TestClient, keys: Keys) -> None:
    text = "family \U0001f468\u200d\U0001f469\u200d\U0001f467, Persian \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    sent = client.post("/items", json={"item_id": "joined", "title": "Joined", "text": text},
                       headers={"X-API-Key": keys.write})
    assert sent.status_code == 201, sent.text
