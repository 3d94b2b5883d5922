"""Order reaches the models: the same two items, liked in the other order (by time, whatever their
item indices), change semantic-attn's top item, in the library and through the service."""

from __future__ import annotations

import httpx
import numpy as np
from conftest import TEMPLATE

from longtail.data.history import HistoryBatch
from longtail.serve.bundle import save_bundle, train_bundle

PARAMS = {"half_life": 1.0, "temperature": None}  # the newest event weighs twice the one before


def _two_items(vectors: np.ndarray) -> tuple[int, int]:
    """Two items whose texts are far apart, the lower index first."""
    a = 0
    b = int(np.argmin(vectors @ vectors[a]))
    return min(a, b), max(a, b)


def test_most_recent_event_decides_in_library_and_service(serve_env, dataset_dir, tmp_path, keys,  # noqa: ANN001
                                                          start_server) -> None:
    bundle = train_bundle(dataset_dir, "semantic-attn", PARAMS, template=TEMPLATE)
    model, n = bundle.model, len(bundle.item_ids)
    low, high = _two_items(bundle.embeddings)

    # library: identical item sets, opposite times
    low_last = HistoryBatch.from_lists([[high, low]], n)  # `low` is the newest
    high_last = HistoryBatch.from_lists([[low, high]], n)
    top_low_last = int(model.recommend(low_last, 1)[0][0, 0])
    top_high_last = int(model.recommend(high_last, 1)[0][0, 0])
    assert top_low_last != top_high_last
    sims = bundle.embeddings @ bundle.embeddings.T
    assert sims[top_low_last, low] > sims[top_low_last, high]  # the top item follows the newest event
    assert sims[top_high_last, high] > sims[top_high_last, low]
    # and the order is time, not the order of the list given
    by_time = HistoryBatch.from_lists([[low, high]], n, times=[[5, 1]])
    assert int(model.recommend(by_time, 1)[0][0, 0]) == top_low_last

    # service: two new users post the same two events with opposite timestamps
    server = start_server(save_bundle(bundle, tmp_path / "model"), keys.url)
    ids = bundle.item_ids
    events = [{"user_id": "u-low-last", "item_id": ids[high], "timestamp": 100},
              {"user_id": "u-low-last", "item_id": ids[low], "timestamp": 200},
              {"user_id": "u-high-last", "item_id": ids[high], "timestamp": 200},
              {"user_id": "u-high-last", "item_id": ids[low], "timestamp": 100}]
    reply = httpx.post(f"{server.url}/events", json={"events": events}, headers={"X-API-Key": keys.write})
    assert reply.status_code == 201, reply.text

    def served_top(user: str) -> str:
        reply = httpx.post(f"{server.url}/recommend", json={"user_id": user, "k": 1},
                           headers={"X-API-Key": keys.read}, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.json()["items"][0]["item_id"]

    assert served_top("u-low-last") == ids[top_low_last]
    assert served_top("u-high-last") == ids[top_high_last]
