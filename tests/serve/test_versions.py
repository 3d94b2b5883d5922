"""Artifact versions on disk (issue 29): a save removes only old versions of that artifact (its
``.{name}.v-<time>-<hex8>`` folders beside the link) beyond the last ``keep``, never another folder,
so a second server still serving an older version keeps its files; and reloads with a bundled
encoder hold one encoder in memory, not one per version."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_helpers import Keys, adapted_slice, serving_folder

from longtail.models.artifact import save_artifact
from longtail.serve import create_app
from longtail.serve.bundle import Bundle, save_bundle, train_bundle
from longtail.serve.keys import create_key
from longtail.serve.store import open_store

TEMPLATE = "{title}. {genres}{category}"


def _versions(folder: Path, name: str = "model") -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(f".{name}.v-"))


def test_a_save_removes_only_old_versions_beyond_keep(tmp_path: Path) -> None:
    arrays = {"x": np.arange(3)}
    decoys = [tmp_path / ".model.v-not-a-version", tmp_path / ".model.v-20260101T000000-XYZ12345",
              tmp_path / "model.v-20260101T000000-abcdef01", tmp_path / ".other.v-20260101T000000-abcdef01"]
    for decoy in decoys:
        decoy.mkdir()
        (decoy / "keep.txt").write_text("mine")
    elsewhere = tmp_path / "elsewhere" / "precious"
    elsewhere.mkdir(parents=True)
    (elsewhere / "data.txt").write_text("not an artifact")
    os.symlink(elsewhere, tmp_path / "model")  # the link points somewhere that is not a version
    save_artifact(tmp_path / "model", {}, arrays, keep=2)
    assert (elsewhere / "data.txt").read_text() == "not an artifact"  # never removed
    made = []
    for _ in range(4):
        save_artifact(tmp_path / "model", {}, arrays, keep=2)
        made.append((tmp_path / "model").resolve())
    assert _versions(tmp_path) == sorted([*decoys[:2], *made[-2:]])  # the last 2 versions + the decoys
    assert all((d / "keep.txt").read_text() == "mine" for d in decoys)
    assert (elsewhere / "data.txt").is_file()
    with pytest.raises(ValueError, match="keep"):
        save_artifact(tmp_path / "model", {}, arrays, keep=0)


def test_a_second_server_keeps_serving_its_version_through_two_refits(tmp_path: Path, bundle: Bundle,
                                                                      start_server) -> None:  # noqa: ANN001
    artifact, keys = serving_folder(tmp_path, bundle)
    decoy = tmp_path / ".model.v-decoy"
    decoy.mkdir()
    other_url = f"sqlite:///{tmp_path / 'second.db'}"  # a SQLite store has one server: the second has its own
    store = open_store(other_url)
    try:
        second_keys = Keys(other_url, create_key(store, "read"), create_key(store, "admin"))  # admin: /admin/reload
    finally:
        store.close()
    second = start_server(artifact, other_url)
    served = httpx.get(f"{second.url}/health", timeout=30).json()["artifact"]
    assert served == artifact.resolve().name
    write = {"X-API-Key": keys.write}
    with TestClient(create_app(artifact, keys.url)) as client:
        service = client.app.state.service
        for n in range(2):
            events = [{"user_id": f"v{n}-{k}", "item_id": bundle.item_ids[k], "timestamp": 1_700_000_000 + k}
                      for k in range(5)]
            assert client.post("/events", json={"events": events}, headers=write).status_code == 201
            service.refit_now()
        assert artifact.resolve().name != served
    assert (tmp_path / served / "manifest.json").is_file(), "the version the second server serves was removed"
    assert decoy.is_dir()
    headers = {"X-API-Key": second_keys.write}
    asked = httpx.post(f"{second.url}/recommend", json={"user_id": bundle.user_ids[0], "k": 5}, headers=headers,
                       timeout=30)
    assert asked.status_code == 200, asked.text
    reloaded = httpx.post(f"{second.url}/admin/reload", headers=headers, timeout=60)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["artifact"] == artifact.resolve().name
    asked = httpx.post(f"{second.url}/recommend", json={"user_id": bundle.user_ids[0], "k": 5}, headers=headers,
                       timeout=30)
    assert asked.status_code == 200, asked.text


def _rss() -> int:
    """Resident bytes of this process now."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_reloads_with_a_bundled_encoder_hold_one_encoder(tmp_path: Path, serve_env: dict[str, str]) -> None:
    from longtail.text import encoder as encoder_module

    data, ft = adapted_slice(tmp_path, TEMPLATE, max_steps=1)
    adapted = train_bundle(data, "pop", template=TEMPLATE, encoder_path=ft)
    artifact, keys = serving_folder(tmp_path, adapted)
    encoder_module.clear_model_cache()
    sizes = []
    with TestClient(create_app(artifact, keys.url)) as client:
        service = client.app.state.service
        for _ in range(20):
            save_bundle(adapted, artifact)  # a new version folder: a new path to the same encoder
            _, version, _ = service.reload()
            assert version == artifact.resolve().name
            service.encode(service.state, ["Space Wolves"], [""], ["Sci-Fi"])  # what POST /items does
            sizes.append(_rss())
        print(f"RSS after reload 1: {sizes[0] / 2**20:.0f} MiB, after reload 20: {sizes[-1] / 2**20:.0f} MiB")
        assert sizes[-1] <= 1.2 * sizes[0], [round(s / 2**20) for s in sizes]
        assert len(service._encoders) == 1
        assert len(encoder_module._models) == 1
