"""``GET /users/{id}/profile?portrait=true``: the library's profile of the live history, served; the
artifact keeps the catalogue's categories for it; posted items are listed but left out of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serve_helpers import Keys

from longtail.profile import ProfileContext, profile_user
from longtail.serve.bundle import Bundle, load_bundle


def test_portrait_is_the_librarys_profile_of_the_live_history(client: TestClient, keys: Keys, artifact: Path,
                                                             bundle: Bundle) -> None:
    read, write = {"X-API-Key": keys.profile}, {"X-API-Key": keys.write}
    loaded = load_bundle(artifact)
    assert loaded.categories is not None and loaded.categories == bundle.categories  # saved with the artifact
    counts = np.bincount(bundle.train.users, minlength=len(bundle.user_ids))
    u = int(np.argmax(counts))  # the longest history: several interests
    user = bundle.user_ids[u]
    assert client.get(f"/users/{user}/profile", headers=read).json()["portrait"] is None  # only when asked
    posted = client.post("/items", json={"items": [{"item_id": "fresh-1", "title": "A brand new record"}]},
                         headers=write)
    assert posted.status_code == 201, posted.text
    client.post("/events", json={"events": [{"user_id": user, "item_id": "fresh-1"}]}, headers=write)
    served = client.get(f"/users/{user}/profile", params={"portrait": "true"}, headers=read)
    assert served.status_code == 200, served.text
    portrait = served.json()["portrait"]
    mine = bundle.train.users == u
    order = np.lexsort((bundle.train.items[mine], bundle.train.timestamps[mine]))
    items = pd.DataFrame({"item_id": bundle.item_ids, "title": bundle.titles, "text": bundle.texts,
                          "categories": bundle.categories})
    context = ProfileContext.from_catalogue(items, bundle.embeddings, bundle.popularity,
                                            user_lengths=np.diff(bundle.train.csr.indptr))
    expected = profile_user(context, bundle.train.items[mine][order].tolist(),
                            bundle.train.timestamps[mine][order].tolist())
    assert portrait["left_out"] == 1 and portrait["n_items"] == expected.n_items == counts[u]
    assert [k["keyword"] for k in portrait["keywords"]] == [w for w, _ in expected.keywords]
    assert [g["genre"] for g in portrait["genres"]] == [g for g, _ in expected.genres] and portrait["genres"]
    assert portrait["mix"] == pytest.approx(expected.mix) and portrait["activity"] == expected.level
    assert [i["representative_id"] for i in portrait["interests"]] == [i.representative_id for i in expected.interests]
    missing = client.get("/users/nobody-at-all/profile", params={"portrait": "true"}, headers=read)
    assert missing.status_code == 404
