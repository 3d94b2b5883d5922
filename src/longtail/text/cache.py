"""On-disk embedding cache keyed by (encoder fingerprint, sha256 of the text).

Layout: ``root/<fingerprint>/<uuid>.emb`` shards, each written once to a temporary name and then
``os.replace``d into place, never modified afterwards. Writers therefore never share a file (two
processes writing at once both land), readers only ever see whole shards, and compaction is "write
one merged shard, then delete the shards it merged" -- a shard another process adds meanwhile is
not among them. Duplicate entries (two processes encoding the same text) are harmless: first wins.

Shard format (little-endian): 8-byte magic, n (u64), d (u32), flags (u32), sha256 of the body,
then the body: n sha256 text keys (n x 32 bytes) and n x d float32 vectors. A shard whose size,
checksum, dimension or vector norms are wrong is reported with a warning, moved aside to
``*.corrupt`` and its texts re-encoded: a damaged cache costs time, never a wrong vector.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from longtail.common.files import atomic_writer

logger = logging.getLogger(__name__)

MAGIC = b"LTEMB\x00\x00\x01"
_HEADER = struct.Struct("<8sQII32s")
_KEY_BYTES = 32
SUFFIX = ".emb"
NORM_TOLERANCE = 1e-3


class CacheWarning(UserWarning):
    """A cache shard was unreadable and has been set aside; its texts are encoded again."""


class Encoder(Protocol):
    """What the cache needs of an encoder (``TextEncoder`` and test doubles)."""

    @property
    def fingerprint(self) -> str: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...


def cache_home() -> Path:
    """``$LONGTAIL_CACHE`` when set, else ``~/.cache/longtail``."""
    base = os.environ.get("LONGTAIL_CACHE")
    return Path(base).expanduser() if base else Path.home() / ".cache" / "longtail"


def default_cache_root() -> Path:
    """``$LONGTAIL_CACHE/embeddings`` when set, else ``~/.cache/longtail/embeddings``."""
    return cache_home() / "embeddings"


def text_key(text: str) -> bytes:
    """The 32-byte cache key of one text (sha256 of its UTF-8 bytes)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class CorruptShard(Exception):
    """Internal: a shard failed verification (caught, warned about, quarantined)."""


def _write_shard(path: Path, keys: np.ndarray, vectors: np.ndarray) -> None:
    """Write (n, 32) uint8 keys and (n, d) float32 vectors to ``path`` atomically."""
    body_keys = np.ascontiguousarray(keys, dtype=np.uint8).tobytes()
    body_vectors = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    checksum = hashlib.sha256(body_keys)
    checksum.update(body_vectors)
    header = _HEADER.pack(MAGIC, len(keys), vectors.shape[1], 0, checksum.digest())
    with atomic_writer(path) as handle:
        handle.write(header)
        handle.write(body_keys)
        handle.write(body_vectors)


def _read_shard(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(n, 32) uint8 keys and (n, d) float32 unit vectors; ``CorruptShard`` on any inconsistency.
    ``FileNotFoundError`` passes through (a concurrent compaction removed the shard)."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise CorruptShard(f"{len(data)} bytes, shorter than the header")
    magic, n, d, _flags, checksum = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptShard("bad magic bytes (not a longtail embedding shard)")
    if d < 1 or d > 1 << 16:
        raise CorruptShard(f"implausible dimension {d}")
    expected = _HEADER.size + n * (_KEY_BYTES + 4 * d)
    if len(data) != expected:
        raise CorruptShard(f"{len(data)} bytes, expected {expected} for {n} vectors of {d}")
    body = memoryview(data)[_HEADER.size:]
    if hashlib.sha256(body).digest() != checksum:
        raise CorruptShard("checksum mismatch")
    keys = np.frombuffer(body, dtype=np.uint8, count=n * _KEY_BYTES).reshape(n, _KEY_BYTES)
    vectors = np.frombuffer(body, dtype="<f4", offset=n * _KEY_BYTES).reshape(n, d)
    vectors = vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1)  # (n,)
    if not np.all(np.isfinite(norms)) or np.any(np.abs(norms - 1.0) > NORM_TOLERANCE):
        raise CorruptShard("vectors are not finite unit vectors")
    return keys, vectors


class EmbeddingCache:
    """Embeddings on disk, one folder per encoder fingerprint, shared safely between processes.

    Loaded shards are kept in memory per instance (shards never change once written), so repeated
    lookups only read shards that appeared since. ``compact_every``: merge a fingerprint's shards into
    one once it has more than this many (None: never automatically; ``compact()`` does it on demand).
    """

    def __init__(self, root: Path | str | None = None, *, compact_every: int | None = 32) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.compact_every = compact_every
        self._shards: dict[Path, tuple[np.ndarray, np.ndarray]] = {}  # path -> (keys, vectors)
        self._index: dict[Path, tuple[tuple[Path, ...], dict[bytes, int], np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r})"

    def folder(self, fingerprint: str) -> Path:
        if not fingerprint or "/" in fingerprint or "\\" in fingerprint or fingerprint.startswith("."):
            raise ValueError(f"bad encoder fingerprint {fingerprint!r}")
        return self.root / fingerprint

    # -- reading ------------------------------------------------------------------------------
    def _quarantine(self, path: Path, reason: str) -> None:
        message = (f"embedding cache shard {path} is corrupt ({reason}); ignored and moved aside, "
                   "its texts will be re-encoded")
        warnings.warn(message, CacheWarning, stacklevel=4)
        logger.warning(message)
        try:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        except OSError:
            pass  # another process moved it already, or the folder is read-only: skip it anyway

    def _load(self, fingerprint: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every readable shard of ``fingerprint``, re-listing if a compaction raced the listing."""
        folder = self.folder(fingerprint)
        for _ in range(5):
            paths = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
            vanished = False
            for path in paths:
                if path in self._shards:
                    continue
                try:
                    self._shards[path] = _read_shard(path)
                except FileNotFoundError:
                    vanished = True
                except CorruptShard as exc:
                    self._quarantine(path, str(exc))
                except OSError as exc:
                    warnings.warn(f"cannot read embedding cache shard {path}: {exc}", CacheWarning,
                                  stacklevel=3)
            live = set(paths)
            for path in [p for p in self._shards if p.parent == folder and p not in live]:
                del self._shards[path]
            if not vanished:
                break
        return [shard for path, shard in self._shards.items() if path.parent == folder]

    def _merged(self, fingerprint: str) -> tuple[dict[bytes, int], np.ndarray] | None:
        """All shards of ``fingerprint`` as one key -> row map and one (N, d) matrix, rebuilt only
        when the set of shards changed (first shard wins on a duplicate key)."""
        folder = self.folder(fingerprint)
        shards = self._load(fingerprint)
        paths = tuple(p for p in self._shards if p.parent == folder)
        cached = self._index.get(folder)
        if cached is not None and cached[0] == paths:
            return cached[1], cached[2]
        if not shards:
            return None
        width = shards[0][1].shape[1]
        shards = [s for s in shards if s[1].shape[1] == width]  # one width per fingerprint
        raw = b"".join(k.tobytes() for k, _ in shards)
        index: dict[bytes, int] = {}
        for row in range(len(raw) // _KEY_BYTES):
            index.setdefault(raw[row * _KEY_BYTES:(row + 1) * _KEY_BYTES], row)
        vectors = np.concatenate([v for _, v in shards])  # (N, d)
        self._index[folder] = (paths, index, vectors)
        return index, vectors

    def get(self, fingerprint: str, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask (n,), float32 (n, d) vectors, zero rows where not found) for ``keys``;
        d is 0 when nothing is cached for ``fingerprint``."""
        merged = self._merged(fingerprint)
        if merged is None:
            return np.zeros(len(keys), dtype=bool), np.zeros((len(keys), 0), dtype=np.float32)
        index, stored = merged
        rows = np.fromiter((index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        found = rows >= 0
        out = np.zeros((len(keys), stored.shape[1]), dtype=np.float32)
        out[found] = stored[rows[found]]
        return found, out

    # -- writing ------------------------------------------------------------------------------
    def put(self, fingerprint: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store ``vectors`` (n, d) under ``keys`` as one new shard; OS errors only warn (a
        read-only cache must not stop encoding)."""
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if not len(keys):
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1)  # (n,)
        if vectors.ndim != 2 or not np.all(np.abs(norms - 1.0) <= NORM_TOLERANCE):
            raise ValueError("the cache stores finite unit vectors (n, d) only")
        if any(len(k) != _KEY_BYTES for k in keys):
            raise ValueError(f"cache keys are {_KEY_BYTES}-byte sha256 digests (see text_key)")
        key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), _KEY_BYTES)
        folder = self.folder(fingerprint)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{uuid.uuid4().hex}{SUFFIX}"
            _write_shard(path, key_array, vectors)
        except OSError as exc:
            warnings.warn(f"cannot write embedding cache under {folder}: {exc}", CacheWarning,
                          stacklevel=2)
            return
        self._shards[path] = (key_array, vectors.copy())
        if self.compact_every is not None and len(self._load(fingerprint)) > self.compact_every:
            self.compact(fingerprint)

    def compact(self, fingerprint: str | None = None) -> int:
        """Merge each fingerprint's shards (all fingerprints when None) into one, dropping
        duplicate keys; returns the number of shards removed. Safe alongside other writers."""
        fingerprints = [fingerprint] if fingerprint else (
            [p.name for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else [])
        removed = 0
        for fp in fingerprints:
            folder = self.folder(fp)
            self._load(fp)
            shards = {p: s for p, s in self._shards.items() if p.parent == folder}
            if len(shards) < 2:
                continue
            keys = np.concatenate([k for k, _ in shards.values()])  # (N, 32)
            vectors = np.concatenate([v for _, v in shards.values()])  # (N, d)
            _, first = np.unique(keys, axis=0, return_index=True)
            first.sort()
            path = folder / f"{uuid.uuid4().hex}{SUFFIX}"
            try:
                _write_shard(path, keys[first], vectors[first])
            except OSError as exc:
                warnings.warn(f"cannot compact embedding cache {folder}: {exc}", CacheWarning, stacklevel=2)
                continue
            for old in shards:
                old.unlink(missing_ok=True)
                del self._shards[old]
                removed += 1
            self._shards[path] = (keys[first], vectors[first])
        return removed

    def clear(self, fingerprint: str | None = None) -> None:
        """Delete the cached vectors of one fingerprint (all when None)."""
        folders = [self.folder(fingerprint)] if fingerprint else (
            [p for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else [])
        for folder in folders:
            for path in folder.glob("*"):
                path.unlink(missing_ok=True)
            self._shards = {p: s for p, s in self._shards.items() if p.parent != folder}

    # -- the one call most code needs ---------------------------------------------------------
    def encode_with_cache(self, encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
        """float32 (len(texts), d) in input order; only texts missing from the cache reach
        ``encoder.encode`` (each distinct text once), and their vectors are stored."""
        texts = list(texts)
        if not texts:
            return np.asarray(encoder.encode([]), dtype=np.float32)
        fingerprint = encoder.fingerprint
        keys = [text_key(t) for t in texts]
        unique: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            unique.setdefault(key, i)
        unique_keys = list(unique)
        found, vectors = self.get(fingerprint, unique_keys)
        missing = [j for j in range(len(unique_keys)) if not found[j]]
        if missing:
            fresh = np.asarray(encoder.encode([texts[unique[unique_keys[j]]] for j in missing]),
                               dtype=np.float32)  # (len(missing), d)
            if vectors.shape[1] != fresh.shape[1]:
                if found.any():
                    raise ValueError(f"encoder gives {fresh.shape[1]}-d vectors, the cache holds "
                                     f"{vectors.shape[1]}-d ones for the same fingerprint")
                vectors = np.zeros((len(unique_keys), fresh.shape[1]), dtype=np.float32)
            vectors[missing] = fresh
            self.put(fingerprint, [unique_keys[j] for j in missing], fresh)
        position = {key: j for j, key in enumerate(unique_keys)}
        return np.ascontiguousarray(vectors[[position[k] for k in keys]])
