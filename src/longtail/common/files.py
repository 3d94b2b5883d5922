"""Atomic file writes and sha256 checksums of files.

Every writer here writes to a temporary file in the destination's own folder (same filesystem, so
the rename is atomic), named ``.<name>.<random hex>.tmp`` (hidden, and never matching a glob on the
real name's suffix), flushes and fsyncs it, then ``os.replace``s it over the destination and
fsyncs the folder where the platform allows. A reader therefore sees the old file or the new one,
never a half-written one; on any error (the caller's included) the temporary file is removed and
the destination is left as it was. Folders are not created: the caller makes ``path.parent``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_writer", "fsync_dir", "open_new", "private_dir", "sha256_file",
           "sha256_files", "temp_path"]

_BLOCK = 1 << 22  # 4 MiB per read when hashing


def temp_path(path: Path) -> Path:
    """A fresh hidden temporary name beside ``path``: ``.<name>.<uuid hex>.tmp``."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def fsync_dir(path: str | Path) -> None:
    """fsync the folder ``path`` so a rename or new entry in it survives a crash. A no-op where
    folders cannot be opened or fsync'd (Windows, some network filesystems)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_new(path: str | Path, flags: int, file_mode: int | None = None) -> int:
    """``os.open(path, flags)``; a file it creates gets exactly ``file_mode`` (e.g. 0o600) whatever
    the process umask, which narrows open's mode but never widens it (None: the umask decides). An
    existing file keeps its mode."""
    fd = os.open(path, flags, 0o666 if file_mode is None else file_mode)
    if file_mode is not None and os.fstat(fd).st_size == 0:  # new (or never written)
        try:
            os.fchmod(fd, file_mode)
        except BaseException:
            os.close(fd)
            raise
    return fd


def private_dir(folder: str | Path, *, mode: int = 0o700, exist_ok: bool = False) -> None:
    """Create ``folder`` with exactly ``mode`` whatever the umask; an existing one is left as it is
    (``exist_ok``) or refused."""
    folder = Path(folder)
    try:
        folder.mkdir(mode=mode)
    except FileExistsError:
        if not exist_ok:
            raise
        return
    os.chmod(folder, mode)


@overload
def atomic_writer(path: str | Path, mode: Literal["wb"] = "wb", *, encoding: None = None,
                  fsync: bool = True, file_mode: int | None = None) -> AbstractContextManager[BinaryIO]: ...
@overload
def atomic_writer(path: str | Path, mode: Literal["w"], *, encoding: str = "utf-8",
                  fsync: bool = True, file_mode: int | None = None) -> AbstractContextManager[TextIO]: ...
@contextmanager
def atomic_writer(path: str | Path, mode: str = "wb", *, encoding: str | None = None,
                  fsync: bool = True, file_mode: int | None = None) -> Iterator[IO[Any]]:
    """Stream into ``path`` atomically: yields an open handle on a temporary file beside it
    (``mode`` ``"wb"``: binary; ``"w"``: text in ``encoding``, utf-8 by default), which replaces
    ``path`` when the block ends without an error and is deleted when it raises.

    ``fsync=False`` skips the file and folder fsyncs (still atomic, not durable across a power
    cut: for caches whose loss only costs recomputation). ``file_mode`` (e.g. ``0o600``): the
    file's permissions from its creation on, whatever the process umask (None: the umask decides).

    >>> with atomic_writer(path) as handle:  # doctest: +SKIP
    ...     np.savez(handle, x=x)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_writer mode must be 'wb' or 'w', got {mode!r}")
    if mode == "wb" and encoding is not None:
        raise ValueError("binary mode takes no encoding")
    path = Path(path)
    tmp = temp_path(path)
    try:
        # O_EXCL: exclusive create, so a clashing name fails rather than sharing a file
        fd = open_new(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
        with (os.fdopen(fd, "wb") if mode == "wb" else os.fdopen(fd, "w", encoding=encoding or "utf-8")) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = True, file_mode: int | None = None) -> Path:
    """Replace ``path`` with ``data`` atomically (see the module docstring); returns ``path``."""
    path = Path(path)
    with atomic_writer(path, "wb", fsync=fsync, file_mode=file_mode) as handle:
        handle.write(data)
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8", *, fsync: bool = True,
                      file_mode: int | None = None) -> Path:
    """Replace ``path`` with ``text`` encoded as ``encoding``, atomically; returns ``path``."""
    path = Path(path)
    with atomic_writer(path, "w", encoding=encoding, fsync=fsync, file_mode=file_mode) as handle:
        handle.write(text)
    return path


def sha256_file(path: str | Path, *, block: int = _BLOCK) -> str:
    """Hex sha256 of the file's bytes, read ``block`` bytes at a time (constant memory)."""
    digest = hashlib.sha256()
    _feed(digest, Path(path), block)
    return digest.hexdigest()


def sha256_files(paths: Iterable[str | Path], *, block: int = _BLOCK) -> str:
    """Hex sha256 over several files, in sorted path order: for each, its name (not its folder),
    a NUL byte, then its bytes. A fingerprint of a set of files, e.g. a dataset's tables."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(path.name.encode() + b"\0")
        _feed(digest, path, block)
    return digest.hexdigest()


def _feed(digest: Any, path: Path, block: int) -> None:
    """Update ``digest`` with the bytes of ``path``, ``block`` bytes at a time."""
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
