"""common.files: atomic writes that survive a crash at any step, and file checksums."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from longtail.common import files
from longtail.common.files import (
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    fsync_dir,
    sha256_file,
    sha256_files,
)


class Crash(Exception):
    """Stands for a crash (or a full disk) at one step of a write."""


def crash(*args: object, **kwargs: object) -> None:
    raise Crash


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_replace_the_file_and_leave_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    assert atomic_write_bytes(path, b"first") == path
    assert atomic_write_bytes(path, b"second") == path
    assert path.read_bytes() == b"second"
    assert atomic_write_text(tmp_path / "t.json", "caf\u00e9\n") == tmp_path / "t.json"
    assert (tmp_path / "t.json").read_bytes() == "caf\u00e9\n".encode()
    atomic_write_text(tmp_path / "l.txt", "caf\u00e9", encoding="latin-1")
    assert (tmp_path / "l.txt").read_bytes() == b"caf\xe9"
    assert listing(tmp_path) == ["l.txt", "out.bin", "t.json"]


@pytest.mark.parametrize("step", ["replace", "fsync"])
def test_crash_at_a_step_keeps_the_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       step: str) -> None:
    path = atomic_write_bytes(tmp_path / "data.bin", b"old contents")
    monkeypatch.setattr(os, step, crash)
    with pytest.raises(Crash):
        atomic_write_bytes(path, b"new contents that never land")
    with pytest.raises(Crash):
        atomic_write_text(tmp_path / "fresh.txt", "never written")
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents"
    assert listing(tmp_path) == ["data.bin"]  # no temp file, and no half-made new file


def test_crash_mid_stream_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = atomic_write_bytes(tmp_path / "a.npz", b"old")
    with pytest.raises(Crash), atomic_writer(path) as handle:
        handle.write(b"half of the new")
        assert path.read_bytes() == b"old"  # not visible before the block ends
        assert len(listing(tmp_path)) == 2
        raise Crash
    assert path.read_bytes() == b"old"
    assert listing(tmp_path) == ["a.npz"]


def test_failing_writer_library_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "arrays.npz"
    with atomic_writer(path) as handle:
        np.savez(handle, x=np.arange(3))
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(Crash), atomic_writer(path) as handle:
        np.savez(handle, x=np.arange(5))
    monkeypatch.undo()
    with np.load(path) as data:
        np.testing.assert_array_equal(data["x"], np.arange(3))
    assert listing(tmp_path) == ["arrays.npz"]


def test_temp_file_is_hidden_beside_the_target(tmp_path: Path) -> None:
    path = tmp_path / "shard.emb"
    with atomic_writer(path) as handle:
        handle.write(b"x")
        (tmp,) = tmp_path.iterdir()
        assert tmp.name.startswith(".shard.emb.") and tmp.name.endswith(".tmp")
        assert list(tmp_path.glob("*.emb")) == []  # a reader globbing shards never sees it
    assert listing(tmp_path) == ["shard.emb"]


def test_text_mode_writer_and_bad_modes(tmp_path: Path) -> None:
    with atomic_writer(tmp_path / "t.txt", "w") as handle:
        handle.write("\u00fcber")
    assert (tmp_path / "t.txt").read_bytes() == "\u00fcber".encode()
    for mode in ("a", "ab", "r", "w+"):
        with pytest.raises(ValueError), atomic_writer(tmp_path / "x", mode):  # type: ignore[call-overload]
            pass
    with pytest.raises(ValueError), atomic_writer(tmp_path / "x", "wb", encoding="utf-8"):  # type: ignore[call-overload]
        pass
    assert listing(tmp_path) == ["t.txt"]


def test_missing_folder_is_an_error_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "no" / "such.bin", b"x")
    assert listing(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_permissions_follow_the_umask_like_open(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    written = atomic_write_bytes(tmp_path / "atomic", b"")
    assert written.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777  # not mkstemp's 0600


@pytest.mark.skipif(os.name != "posix", reason="folders can be fsync'd on POSIX only")
def test_fsync_of_file_and_folder_and_opt_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    atomic_write_bytes(tmp_path / "a", b"a")
    assert len(synced) == 2  # the file, then the folder after the rename
    synced.clear()
    atomic_write_text(tmp_path / "b", "b", fsync=False)
    assert synced == [] and (tmp_path / "b").read_text() == "b"
    fsync_dir(tmp_path)
    assert len(synced) == 1
    fsync_dir(tmp_path / "missing")  # best effort: no error where it cannot open the folder


def test_sha256_file_matches_hashlib_over_many_blocks(tmp_path: Path) -> None:
    data = np.random.default_rng(7).bytes((9 << 20) + 12345)  # > 2 default 4 MiB blocks
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_file(path, block=1000) == expected  # block boundaries inside the data
    assert sha256_file(str(path)) == expected
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_sha256_files_is_the_dataset_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_bytes(b"item_id,title\n1,a\n")
    (tmp_path / "interactions.csv").write_bytes(b"user_id,item_id\n" * 50_000)
    paths = [tmp_path / "items.csv", tmp_path / "interactions.csv"]
    manual = hashlib.sha256()
    for path in sorted(paths):  # names in path order, each name NUL-terminated, then its bytes
        manual.update(path.name.encode() + b"\0" + path.read_bytes())
    assert sha256_files(paths) == manual.hexdigest()
    assert sha256_files(reversed(paths)) == manual.hexdigest()  # order of the argument is irrelevant
    assert sha256_files(paths, block=7) == manual.hexdigest()
    renamed = tmp_path / "items2.csv"
    (tmp_path / "items.csv").rename(renamed)
    assert sha256_files([renamed, paths[1]]) != manual.hexdigest()  # names count, not only bytes


def test_module_imports_nothing_from_longtail_but_errors() -> None:
    import ast

    import longtail.common.arrays as arrays_module

    for module in (files, arrays_module):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert {m for m in imported if m and m.startswith("longtail")} <= {"longtail.errors"}
