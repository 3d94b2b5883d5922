"""TextEncoder: shape, dtype, unit norm, determinism, offline loading, fingerprint, errors."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.errors import ConfigError, LongtailError
from longtail.text import TextEncoder, encoder as encoder_module


def test_shape_dtype_unit_norm(encoder: TextEncoder, titles: list[str]) -> None:
    vectors = encoder.encode(titles)
    assert vectors.shape == (50, 384)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_deterministic_and_order_independent(encoder: TextEncoder, titles: list[str]) -> None:
    first = encoder.encode(titles)
    assert np.array_equal(first, encoder.encode(titles))
    reversed_ = encoder.encode(titles[::-1])[::-1]
    np.testing.assert_allclose(first, reversed_, atol=1e-5)


def test_batch_size_moves_vectors_by_noise_only(titles: list[str], encoder: TextEncoder) -> None:
    small = TextEncoder(batch_size=7).encode(titles)
    np.testing.assert_allclose(small, encoder.encode(titles), atol=1e-5)


def test_matches_plain_sentence_transformers(encoder: TextEncoder, titles: list[str]) -> None:
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(str(encoder.path), device="cpu").encode(
        titles, batch_size=64, normalize_embeddings=True)
    np.testing.assert_allclose(encoder.encode(titles), plain, atol=1e-5)


def test_meaningful_neighbours(encoder: TextEncoder) -> None:
    a, b, c = encoder.encode(["Toy Story (1995)", "Toy Story 2 (1999)", "Heat (1995)"])
    assert a @ b > a @ c


def test_empty_and_bad_input(encoder: TextEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(TypeError):
        encoder.encode("a single string")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encoder.encode(["ok", None])  # type: ignore[list-item]


def test_num_threads_and_progress(titles: list[str], encoder: TextEncoder) -> None:
    before = torch.get_num_threads()
    vectors = TextEncoder(num_threads=1, show_progress=True).encode(titles[:10])
    assert torch.get_num_threads() == before
    np.testing.assert_allclose(vectors, encoder.encode(titles[:10]), atol=1e-5)


def test_never_touches_the_network(monkeypatch: pytest.MonkeyPatch, titles: list[str]) -> None:
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    encoder_module.clear_model_cache()  # force a real load under the patch
    vectors = TextEncoder().encode(titles[:5])
    assert vectors.shape == (5, 384)
    assert attempts == []
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_lazy_load_once_per_path(titles: list[str]) -> None:
    encoder_module.clear_model_cache()
    first, second = TextEncoder(), TextEncoder(batch_size=8)
    assert encoder_module._models == {}  # constructing loads nothing
    first.encode(titles[:2])
    second.encode(titles[:2])
    assert len(encoder_module._models) == 1


def _model_copy(tmp_path: Path, source: Path) -> Path:
    """A copy of the model folder with the big weights symlinked (configs copied, editable)."""
    target = tmp_path / "model"
    for file in source.rglob("*"):
        if file.is_file():
            dest = target / file.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if file.stat().st_size > 1 << 20:
                dest.symlink_to(file)
            else:
                shutil.copy2(file, dest)
    return target


def test_fingerprint(tmp_path: Path, encoder: TextEncoder) -> None:
    fingerprint = encoder.fingerprint
    assert fingerprint == TextEncoder(batch_size=3, num_threads=1).fingerprint
    assert fingerprint != TextEncoder(max_seq_length=128).fingerprint
    copy = _model_copy(tmp_path, encoder.path)
    assert TextEncoder(model_path=str(copy)).fingerprint == fingerprint  # same files, same vectors
    pooling = copy / "1_Pooling" / "config.json"
    pooling.write_text(pooling.read_text().replace("true", "false", 1))
    assert TextEncoder(model_path=str(copy)).fingerprint != fingerprint


def test_bad_model_paths(tmp_path: Path) -> None:
    with pytest.raises(LongtailError, match="does not exist"):
        TextEncoder(model_path=str(tmp_path / "missing"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(LongtailError, match="not a sentence-transformers model"):
        TextEncoder(model_path=str(tmp_path / "plain"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("not json")
    with pytest.raises(LongtailError, match="cannot load"):
        TextEncoder(model_path=str(broken)).encode(["x"])
    with pytest.raises(ConfigError):
        TextEncoder(batch_size=0)


def test_weight_digests_are_memoised_but_follow_changes(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGTAIL_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "modules.json").write_text("[]")
    weights = model / "model.safetensors"
    weights.write_bytes(os.urandom(2 << 20))
    first = TextEncoder(model_path=str(model)).fingerprint
    assert (tmp_path / "cache" / "file-digests.json").is_file()
    encoder_module.clear_model_cache()
    assert TextEncoder(model_path=str(model)).fingerprint == first  # from the memo
    data = bytearray(weights.read_bytes())
    data[12345] ^= 0xFF  # same size, new content (and a new mtime)
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    encoder_module.clear_model_cache()
    assert TextEncoder(model_path=str(model)).fingerprint != first
