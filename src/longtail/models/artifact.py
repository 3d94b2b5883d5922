"""Atomic, checksummed model artifacts (npz arrays + JSON manifest; no pickle).

A saved artifact is a directory ``<path>.v-<id>/`` and ``<path>`` is a symlink to it. Saving writes
a new version directory completely (fsync'd), then swaps the symlink with ``os.replace`` — one
atomic step — so a crash mid-save leaves the previous version in place and loadable, and a reader
never sees a half-written artifact.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from longtail.common.files import atomic_write_bytes, atomic_write_text, atomic_writer, fsync_dir, sha256_file
from longtail.errors import LongtailError

MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
FORMAT_VERSION = 1


class ArtifactError(LongtailError):
    """A missing, corrupted or incompatible artifact."""

    exit_code = 3


def save_artifact(
    path: str | Path,
    manifest: dict[str, Any],
    arrays: dict[str, np.ndarray],
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write ``arrays`` and ``manifest`` as a new version of the artifact at ``path`` (atomic)."""
    from longtail import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    version_dir = path.parent / f".{path.name}.v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    version_dir.mkdir()
    try:
        with atomic_writer(version_dir / ARRAYS) as handle:
            np.savez(handle, **arrays)
        for name, content in (extra_files or {}).items():
            atomic_write_bytes(version_dir / name, content)
        files = sorted(p.name for p in version_dir.iterdir())
        full = {
            **manifest,
            "format_version": FORMAT_VERSION,
            "longtail_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "checksums": {name: sha256_file(version_dir / name) for name in files},
        }
        atomic_write_text(version_dir / MANIFEST, json.dumps(full, indent=2, sort_keys=True))
    except BaseException:
        shutil.rmtree(version_dir, ignore_errors=True)
        raise
    previous = path.resolve() if path.is_symlink() else None
    if path.exists() and not path.is_symlink():
        raise ArtifactError(f"{path} exists and is not a longtail artifact link; refusing to replace it")
    link = path.parent / f".{path.name}.link-{uuid.uuid4().hex[:8]}"
    os.symlink(version_dir.name, link)
    os.replace(link, path)  # the atomic step
    fsync_dir(path.parent)
    if previous is not None and previous != version_dir.resolve():
        shutil.rmtree(previous, ignore_errors=True)
    return path


def load_artifact(path: str | Path, *, verify: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read an artifact's manifest and arrays, checking every file's sha256 against the manifest."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{path}: no {MANIFEST}; not a longtail artifact")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{manifest_path}: corrupted manifest ({exc})") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: artifact format {manifest.get('format_version')} not supported")
    if verify:
        for name, expected in manifest.get("checksums", {}).items():
            file = path / name
            if not file.is_file() or sha256_file(file) != expected:
                raise ArtifactError(f"{file}: checksum mismatch (corrupted or modified artifact)")
    with np.load(path / ARRAYS, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return manifest, arrays
