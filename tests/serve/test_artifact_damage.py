"""A damaged service artifact is refused with one ``ArtifactError`` (exit code 3), never a raw
numpy / zipfile / json exception: at load, at ``longtail serve`` start-up (one line on stderr, no
traceback) and at ``POST /admin/reload`` (503, the old version keeps serving).

Most damages are "resealed": the manifest's checksums are recomputed after the damage, so the
checksum passes and the parse or the shape checks must catch it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_helpers import Keys

from longtail.common.files import sha256_file
from longtail.models.artifact import ArtifactError
from longtail.serve import create_app
from longtail.serve.bundle import Bundle, load_bundle, save_bundle

Damage = Callable[[Path], None]


def _manifest(version: Path) -> dict:
    return json.loads((version / "manifest.json").read_text())


def _write_manifest(version: Path, manifest: dict) -> None:
    (version / "manifest.json").write_text(json.dumps(manifest))


def reseal(version: Path) -> None:
    """Recompute the checksums of the files the manifest lists (as a careless tool would)."""
    manifest = _manifest(version)
    manifest["checksums"] = {name: sha256_file(version / name) for name in manifest["checksums"]}
    _write_manifest(version, manifest)


def edit_manifest(change: Callable[[dict], None]) -> Damage:
    def damage(version: Path) -> None:
        manifest = _manifest(version)
        change(manifest)
        _write_manifest(version, manifest)
    return damage


def write_file(name: str, content: Callable[[bytes], bytes], *, sealed: bool = True) -> Damage:
    def damage(version: Path) -> None:
        (version / name).write_bytes(content((version / name).read_bytes()))
        if sealed:
            reseal(version)
    return damage


def edit_arrays(change: Callable[[dict[str, np.ndarray]], None]) -> Damage:
    def damage(version: Path) -> None:
        with np.load(version / "arrays.npz") as data:
            arrays = {key: data[key] for key in data.files}
        change(arrays)
        with (version / "arrays.npz").open("wb") as handle:
            np.savez(handle, **arrays)
        reseal(version)
    return damage


def edit_json(name: str, change: Callable[[object], object]) -> Damage:
    return write_file(name, lambda raw: json.dumps(change(json.loads(raw))).encode())


def _pop(key: str) -> Callable[[dict], None]:
    return lambda d: d.pop(key)


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda d: d.__setitem__(key, value)


def _npy(raw: bytes) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.arange(10))
    return buffer.getvalue()


def _flip_member_byte(raw: bytes) -> bytes:
    """One byte changed inside a stored member's data: the zip's CRC check fails on read."""
    at = raw.index(b"NUMPY") + 200
    return raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:]


def _without_checksums_truncated(version: Path) -> None:
    edit_manifest(_pop("checksums"))(version)
    raw = (version / "arrays.npz").read_bytes()
    (version / "arrays.npz").write_bytes(raw[:len(raw) // 2])


def _embeddings(change: Callable[[np.ndarray], object]) -> Damage:
    return edit_arrays(lambda a: a.__setitem__("embeddings", change(a["embeddings"])))


DAMAGES: dict[str, Damage] = {
    # checksums are required, and every file read must be listed and intact
    "manifest-without-checksums": edit_manifest(_pop("checksums")),
    "no-checksums-and-truncated-arrays": _without_checksums_truncated,
    "checksums-not-a-mapping": edit_manifest(_set("checksums", ["arrays.npz"])),
    "catalogue-not-listed": edit_manifest(lambda m: m["checksums"].pop("catalogue.json")),
    "arrays-not-listed": edit_manifest(lambda m: m["checksums"].pop("arrays.npz")),
    "listed-name-outside-the-version": edit_manifest(lambda m: m["checksums"].__setitem__("../x", "0" * 64)),
    "listed-file-missing": lambda v: (v / "users.json").unlink(),
    "checksum-mismatch": write_file("catalogue.json", lambda raw: raw.replace(b'"', b"'", 1), sealed=False),
    "manifest-not-json": lambda v: (v / "manifest.json").write_bytes(b"{\xff not json"),
    "manifest-not-an-object": lambda v: (v / "manifest.json").write_text("[]"),
    # parse failures behind a passing checksum
    "truncated-arrays": write_file("arrays.npz", lambda raw: raw[:len(raw) // 2]),
    "garbage-arrays": write_file("arrays.npz", lambda raw: b"garbage" * 100),
    "npy-instead-of-npz": write_file("arrays.npz", _npy),
    "arrays-member-crc": write_file("arrays.npz", _flip_member_byte),
    "garbage-catalogue": write_file("catalogue.json", lambda raw: b"\x00{garbage"),
    "catalogue-not-utf8": write_file("catalogue.json", lambda raw: b'{"item_ids": ["\xff"]}'),
    "catalogue-missing-key": edit_json("catalogue.json", lambda c: {k: v for k, v in c.items() if k != "titles"}),
    "catalogue-lengths-differ": edit_json("catalogue.json", lambda c: {**c, "titles": c["titles"][:-1]}),
    "catalogue-ids-not-strings": edit_json("catalogue.json",
                                           lambda c: {**c, "item_ids": list(range(len(c["item_ids"])))}),
    "catalogue-ids-repeated": edit_json("catalogue.json",
                                        lambda c: {**c, "item_ids": [c["item_ids"][0]] * len(c["item_ids"])}),
    "users-not-a-list": edit_json("users.json", lambda u: {"users": u}),
    "users-not-strings": edit_json("users.json", lambda u: [None] * len(u)),
    "users-too-few": edit_json("users.json", lambda u: u[:1]),
    # arrays of the wrong shape or dtype
    "embeddings-missing": edit_arrays(_pop("embeddings")),
    "embeddings-short": _embeddings(lambda e: e[:-1]),
    "embeddings-1d": _embeddings(lambda e: e[:, 0]),
    "embeddings-integers": _embeddings(lambda e: e.astype(np.int64)),
    "embeddings-strings": _embeddings(lambda e: e.astype(str)),
    "embeddings-not-finite": _embeddings(lambda e: np.where(np.arange(len(e))[:, None] == 0, np.nan, e)),
    "embeddings-objects": _embeddings(lambda e: np.array([None] * len(e), dtype=object)),
    "train-users-float": edit_arrays(lambda a: a.__setitem__("train.users", a["train.users"].astype(np.float64))),
    "train-items-out-of-range": edit_arrays(lambda a: a.__setitem__("train.items", a["train.items"] + 10**6)),
    "train-negative-users": edit_arrays(lambda a: a.__setitem__("train.users", a["train.users"] - 10**6)),
    "train-lengths-differ": edit_arrays(lambda a: a.__setitem__("train.timestamps", a["train.timestamps"][:-1])),
    "train-2d": edit_arrays(lambda a: a.__setitem__("train.items", a["train.items"][:, None])),
    "model-array-missing": edit_arrays(_pop("model.sim.data")),
    "model-array-short": edit_arrays(lambda a: a.__setitem__("model.warm", a["model.warm"][:-1])),
    "model-indptr-garbage": edit_arrays(lambda a: a.__setitem__("model.sim.indptr", a["model.sim.indptr"][::-1])),
    # a manifest that parses but says nonsense
    "model-manifest-missing": edit_manifest(_pop("model_manifest")),
    "model-manifest-not-an-object": edit_manifest(_set("model_manifest", "itemknn")),
    "model-unknown": edit_manifest(lambda m: m["model_manifest"]["spec"].__setitem__("model", "nope")),
    "model-n-items-differs": edit_manifest(lambda m: m["model_manifest"].__setitem__("n_items", 3)),
    "encoder-not-an-object": edit_manifest(_set("encoder", "minilm")),
    "fallback-garbage": edit_manifest(_set("pipeline", {"fallback": {"threshold": "high", "extra": 1}})),
}


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_damaged_artifact_raises_artifact_error(name: str, artifact: Path) -> None:
    DAMAGES[name](artifact.resolve())
    with pytest.raises(ArtifactError) as caught:
        load_bundle(artifact)
    assert caught.value.exit_code == 3
    assert "\n" not in str(caught.value)


def test_intact_artifact_still_loads(artifact: Path, bundle: Bundle) -> None:
    loaded = load_bundle(artifact)
    assert loaded.item_ids == bundle.item_ids and loaded.user_ids == bundle.user_ids
    assert loaded.embeddings.dtype == np.float32 and loaded.train.users.dtype == np.int32


def test_unlisted_extra_file_is_ignored(artifact: Path) -> None:
    """Only the files the loader reads must be listed; a stray file it never reads is harmless."""
    (artifact.resolve() / "notes.txt").write_text("left by an operator")
    assert load_bundle(artifact).item_ids


# a bare model's arrays carry no "model." prefix
MODEL_DAMAGES = {**{name: DAMAGES[name] for name in ("manifest-without-checksums", "arrays-not-listed",
                                                      "truncated-arrays", "garbage-arrays", "arrays-member-crc",
                                                      "manifest-not-an-object")},
                 "model-array-missing": edit_arrays(_pop("sim.data"))}


@pytest.mark.parametrize("name", sorted(MODEL_DAMAGES))
def test_damaged_model_artifact_raises_artifact_error(name: str, bundle: Bundle, tmp_path: Path) -> None:
    """The same file rules for a bare model (``save_model`` / ``load_model``)."""
    from longtail.models import load_model, save_model

    path = save_model(bundle.model, tmp_path / "model")
    assert load_model(path).n_items_ == len(bundle.item_ids)
    MODEL_DAMAGES[name](path.resolve())
    with pytest.raises(ArtifactError) as caught:
        load_model(path)
    assert "\n" not in str(caught.value)


CLI_DAMAGES = ["manifest-without-checksums", "no-checksums-and-truncated-arrays", "truncated-arrays",
               "garbage-catalogue"]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: rich wraps stderr at 160 columns when it is not a terminal, and
    the message names the damaged file by its full path (see cli.handle_errors)."""
    where = Path(tempfile.mkdtemp(prefix="lt"))
    yield where
    shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize("name", CLI_DAMAGES)
def test_serve_refuses_a_damaged_artifact_with_one_line(name: str, bundle: Bundle, serve_env: dict[str, str],
                                                        short_dir: Path) -> None:
    artifact = save_bundle(bundle, short_dir / "m")
    DAMAGES[name](artifact.resolve())
    done = subprocess.run(
        [sys.executable, "-m", "longtail.cli", "serve", "--artifact", str(artifact),
         "--store", f"sqlite:///{short_dir / 's.db'}", "--port", "0"],
        env=serve_env, capture_output=True, text=True, timeout=60)  # a served artifact never exits
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize("name", ["no-checksums-and-truncated-arrays", "garbage-catalogue", "embeddings-short"])
def test_reload_of_a_damaged_version_keeps_the_old_one(name: str, artifact: Path, keys: Keys, bundle: Bundle) -> None:
    with TestClient(create_app(artifact, keys.url), raise_server_exceptions=False) as client:
        old = client.get("/health").json()["artifact"]
        save_bundle(bundle, artifact)  # a new version (the old directory is deleted; its state is in memory)
        DAMAGES[name](artifact.resolve())
        reloaded = client.post("/admin/reload", headers={"X-API-Key": keys.admin})
        assert reloaded.status_code == 503, reloaded.text
        assert "still serving" in reloaded.json()["detail"]
        assert client.get("/health").json()["artifact"] == old
        served = client.post("/recommend", json={"user_id": "x"}, headers={"X-API-Key": keys.read})
        assert served.status_code == 200 and served.json()["artifact"] == old
