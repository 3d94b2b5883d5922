"""Atomic, checksummed model artifacts (npz arrays + JSON manifest; no pickle).

A saved artifact is a directory ``.<name>.v-<time>-<hex8>/`` beside ``<path>`` (= ``<parent>/<name>``),
and ``<path>`` is a symlink to it. Saving writes a new version directory completely (fsync'd), then
swaps the symlink with ``os.replace`` — one atomic step — so a crash mid-save leaves the previous
version in place and loadable, and a reader never sees a half-written artifact.

Old versions: a save keeps the newest ``keep`` versions (3 by default, the new one included) and
removes older ones, so another replica still serving the previous version (it loaded it before
the flip, and reads its files later: a bundled encoder) keeps its files until two more saves.
Only folders named like a version of this artifact, beside the link, are ever removed: never the
folder a hand-made link points to, nor anything else in the parent.

Versions are owner-only (folders 0o700, files 0o600, whatever the umask): an artifact holds every
user's history.

Loading trusts nothing on disk: the manifest must list a sha256 for every file the loader reads
(``checksums`` is required; an artifact without it cannot prove it is whole), and any failure to
read or parse what is there (a truncated zip, garbage, a non-numeric array) is an ``ArtifactError``
naming the file, never a raw numpy / zipfile / json exception: callers (``longtail serve``, the
service's reload) answer one clear line instead of a traceback or a 500.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from longtail.common.files import atomic_write_bytes, atomic_write_text, atomic_writer, fsync_dir, private_dir, sha256_file
from longtail.errors import LongtailError

MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
FORMAT_VERSION = 1
# what reading a damaged npz can raise: numpy (ValueError: bad header, pickled data; EOFError),
# zipfile (BadZipFile: no directory, bad CRC), zlib (a corrupt compressed member), the OS
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error)
# what np.savez writes first: a local file header, or the end record of an archive without arrays
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
NUMERIC_KINDS = "biufc"  # bool, ints, floats, complex: strings and objects never belong in an npz here
KEEP_VERSIONS = 3  # versions a save leaves on disk, the new one included
DIR_MODE, FILE_MODE = 0o700, 0o600  # owner-only: an artifact holds every user's history


class ArtifactError(LongtailError):
    """A missing, corrupted or incompatible artifact."""

    exit_code = 3


def save_artifact(
    path: str | Path,
    manifest: dict[str, Any],
    arrays: dict[str, np.ndarray],
    extra_files: dict[str, bytes] | None = None,
    *,
    keep: int = KEEP_VERSIONS,
) -> Path:
    """Write ``arrays`` and ``manifest`` as a new version of the artifact at ``path`` (atomic), then
    remove this artifact's versions older than the newest ``keep`` (see the module docstring)."""
    from longtail import __version__

    if keep < 1:
        raise ValueError(f"keep must be >= 1 (the version just written), got {keep}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    version_dir = path.parent / f".{path.name}.v-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    private_dir(version_dir, mode=DIR_MODE)
    try:
        with atomic_writer(version_dir / ARRAYS, file_mode=FILE_MODE) as handle:
            np.savez(handle, **arrays)
        for name, content in (extra_files or {}).items():  # "a/b" names make sub-folders
            for folder in reversed(Path(name).parents[:-1]):
                private_dir(version_dir / folder, mode=DIR_MODE, exist_ok=True)
            atomic_write_bytes(version_dir / name, content, file_mode=FILE_MODE)
        files = sorted(p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file())
        full = {
            **manifest,
            "format_version": FORMAT_VERSION,
            "longtail_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "checksums": {name: sha256_file(version_dir / name) for name in files},
        }
        atomic_write_text(version_dir / MANIFEST, json.dumps(full, indent=2, sort_keys=True), file_mode=FILE_MODE)
    except BaseException:
        shutil.rmtree(version_dir, ignore_errors=True)
        raise
    if path.exists() and not path.is_symlink():
        shutil.rmtree(version_dir, ignore_errors=True)
        raise ArtifactError(f"{path} exists and is not a longtail artifact link; refusing to replace it")
    link = path.parent / f".{path.name}.link-{uuid.uuid4().hex[:8]}"
    os.symlink(version_dir.name, link)
    os.replace(link, path)  # the atomic step
    fsync_dir(path.parent)
    for old in old_versions(path, keep=keep):
        shutil.rmtree(old, ignore_errors=True)
    return path


def old_versions(path: str | Path, *, keep: int = KEEP_VERSIONS) -> list[Path]:
    """The version folders of the artifact ``path`` a save removes: real folders named
    ``.<name>.v-<time>-<hex8>`` in its own parent, but the newest ``keep`` and the link's target.
    Newest by the time in the name, then by the folder's mtime (several saves in one second)."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.v-\d{{8}}T\d{{6}}-[0-9a-f]{{8}}")
    target = Path(os.path.realpath(path)) if path.is_symlink() else None
    found = []
    for entry in path.parent.iterdir():
        if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            try:
                found.append((entry.name.rsplit("-", 2)[1], entry.stat().st_mtime_ns, entry))
            except OSError:  # removed meanwhile (another process saving the same artifact)
                continue
    found.sort(reverse=True)
    return [entry for _, _, entry in found[keep:] if entry.resolve() != target]


def load_artifact(path: str | Path, *, verify: bool = True,
                  files: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read an artifact's manifest and arrays, checking the sha256 of ``arrays.npz`` and of each
    name in ``files`` (other files the caller will read) against the manifest's ``checksums``.

    Raises ``ArtifactError`` for anything missing, unlisted, mismatched or unparsable.
    ``verify=False`` skips the hashing (not the listing) for callers that checked already."""
    path = Path(path)
    manifest = read_manifest(path)
    checksums = manifest["checksums"]
    for name in (ARRAYS, *files):
        if name not in checksums:
            raise ArtifactError(f"{path / name}: not listed in the manifest's checksums (incomplete artifact)")
    if verify:
        for name, expected in checksums.items():
            _verify(path / name, expected)
    return manifest, read_arrays(path / ARRAYS)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the version directory ``path``: a JSON object of this format, whose
    ``checksums`` map relative file names (inside ``path``) to hex sha256."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{path}: no {MANIFEST}; not a longtail artifact")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise ArtifactError(f"{manifest_path}: corrupted manifest ({one_line(exc)})") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{manifest_path}: corrupted manifest (not a JSON object)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: artifact format {manifest.get('format_version')!r} not supported")
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or not checksums:
        raise ArtifactError(f"{manifest_path}: no checksums, so damage cannot be detected; write it again")
    for name, digest in checksums.items():
        # names inside the version only ("encoder/x" is fine): a listed "../x" would hash (and
        # vouch for) a file outside the version
        parts = Path(name).parts if isinstance(name, str) else ()
        if not name or Path(name).is_absolute() or not parts or any(p in {".", ".."} for p in parts) \
                or "\\" in name or not isinstance(digest, str):
            raise ArtifactError(f"{manifest_path}: bad checksums entry {name!r}")
    return manifest


def _verify(file: Path, expected: str) -> None:
    try:
        actual = sha256_file(file) if file.is_file() else None
    except OSError as exc:
        raise ArtifactError(f"{file}: unreadable ({one_line(exc)})") from exc
    if actual is None:
        raise ArtifactError(f"{file}: missing (listed in the manifest's checksums)")
    if actual != expected:
        raise ArtifactError(f"{file}: checksum mismatch (corrupted or modified artifact)")


def read_arrays(file: Path) -> dict[str, np.ndarray]:
    """Every array of the npz ``file``, read now (a damaged member fails here, not on first use)."""
    try:
        with file.open("rb") as handle:
            magic = handle.read(4)
        if magic not in ZIP_MAGIC:  # np.load would take anything else for a pickle (or a plain .npy)
            raise ArtifactError(f"{file}: not an npz archive")
        data = np.load(file, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # pragma: no cover - the magic said zip
            raise ArtifactError(f"{file}: not an npz archive")
        with data:
            arrays = {key: data[key] for key in data.files}
    except READ_ERRORS as exc:
        raise ArtifactError(f"{file}: unreadable arrays ({one_line(exc)})") from exc
    odd = sorted(key for key, value in arrays.items() if value.dtype.kind not in NUMERIC_KINDS)
    if odd:
        raise ArtifactError(f"{file}: non-numeric arrays {', '.join(odd[:5])}")
    return arrays


def one_line(exc: BaseException) -> str:
    """An exception in one line (``BadZipFile: File is not a zip file``), for an error message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
