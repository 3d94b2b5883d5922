"""An artifact trained with an adapted encoder carries it: the service encodes a posted item with
that encoder, so the item's vector is the library's for the same text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from serve_helpers import Keys, adapted_slice

from longtail.serve import create_app
from longtail.serve.bundle import load_bundle, save_bundle, train_bundle
from longtail.text import TextEncoder, embed_texts, item_texts

TEMPLATE = "{title}. {genres}{category}"


def test_posted_item_is_encoded_with_the_artifacts_adapted_encoder(tmp_path: Path, keys: Keys,
                                                                   serve_env: dict[str, str]) -> None:
    data, _ = adapted_slice(tmp_path, TEMPLATE, max_steps=2)
    adapted = TextEncoder(tmp_path / "ft")
    bundle = train_bundle(data, "semantic", template=TEMPLATE, encoder_path=tmp_path / "ft")
    assert bundle.manifest["encoder"]["fingerprint"] == adapted.fingerprint != TextEncoder().fingerprint
    artifact = save_bundle(bundle, tmp_path / "model")
    (tmp_path / "ft").rename(tmp_path / "moved")  # the artifact needs its own copy, not the original
    assert (load_bundle(artifact).source / "encoder" / "adapter_model.safetensors").is_file()
    item = {"item_id": "fresh-1", "title": "Space Wolves (2031)", "categories": ["Sci-Fi", "Action"]}
    with TestClient(create_app(artifact, keys.url)) as client:
        posted = client.post("/items", json={"items": [item]}, headers={"X-API-Key": keys.write})
        assert posted.status_code in (200, 201), posted.text
        catalogue = client.app.state.service.state.catalogue
        vectors, n = catalogue.snapshot()
        served = vectors[catalogue.positions["fresh-1"]]
    text = item_texts(pd.DataFrame({"title": [item["title"]], "text": [""], "categories": ["Sci-Fi|Action"]}), TEMPLATE)
    library = embed_texts(text, encoder=TextEncoder(tmp_path / "moved"), cache=False)[0]
    frozen = embed_texts(text, encoder=TextEncoder(), cache=False)[0]
    assert np.allclose(served, library, atol=1e-5)
    assert not np.allclose(served, frozen, atol=1e-4)  # not the bundled encoder's vector
