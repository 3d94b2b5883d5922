"""EmbeddingCache: only new texts are encoded, corrupt shards are survived, writers never collide."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from text_doubles import FakeEncoder, SpyEncoder, expected_vectors

from longtail.text import EmbeddingCache, TextEncoder, embed_items, embed_texts, item_texts
from longtail.text.cache import SUFFIX, CacheWarning, _write_shard, default_cache_root, text_key


def shards(root: Path) -> list[Path]:
    return sorted(root.rglob(f"*{SUFFIX}"))


def test_vectors_match_direct_encoding_and_hits_skip_the_encoder(
        tmp_path: Path, encoder: TextEncoder, titles: list[str]) -> None:
    spy = SpyEncoder(encoder)
    cache = EmbeddingCache(tmp_path)
    texts = titles[:20] + titles[:5]  # duplicates are encoded once
    vectors = cache.encode_with_cache(spy, texts)
    assert len(spy.received) == 20
    assert vectors.shape == (25, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, encoder.encode(texts), atol=1e-5)
    spy.received.clear()
    again = EmbeddingCache(tmp_path).encode_with_cache(spy, texts[::-1])  # a fresh process, say
    assert spy.received == []
    np.testing.assert_array_equal(again, vectors[::-1])


def test_changing_one_item_re_encodes_exactly_one(tmp_path: Path, encoder: TextEncoder,
                                                  items: pd.DataFrame) -> None:
    catalogue = items.head(50).copy()
    spy = SpyEncoder(encoder)
    cache = EmbeddingCache(tmp_path)
    first = embed_items(catalogue, encoder=spy, cache=cache)  # type: ignore[arg-type]
    assert len(spy.received) == 50
    spy.received.clear()
    catalogue.loc[catalogue.index[7], "text"] = "A brand new description of this film."
    second = embed_items(catalogue, encoder=spy, cache=cache)  # type: ignore[arg-type]
    assert spy.received == [item_texts(catalogue)[7]]
    unchanged = np.arange(50) != 7
    np.testing.assert_array_equal(second[unchanged], first[unchanged])
    assert not np.allclose(second[7], first[7])


def test_fingerprints_are_kept_apart(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    a, b = FakeEncoder(fingerprint="model-a"), FakeEncoder(dim=8, fingerprint="model-b")
    cache.encode_with_cache(a, ["x", "y"])
    assert cache.encode_with_cache(b, ["x", "y"]).shape == (2, 8)
    assert b.received == ["x", "y"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_shard_warns_and_re_encodes(tmp_path: Path, encoder: TextEncoder,
                                            titles: list[str], damage: str) -> None:
    texts = titles[:30]
    truth = EmbeddingCache(tmp_path).encode_with_cache(encoder, texts)
    (shard,) = shards(tmp_path)
    data = shard.read_bytes()
    if damage == "truncate":
        shard.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        middle = len(data) - 1000
        shard.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    elif damage == "garbage":
        shard.write_bytes(os.urandom(len(data)))
    else:
        shard.write_bytes(b"")
    spy = SpyEncoder(encoder)
    with pytest.warns(CacheWarning, match="corrupt"):
        vectors = EmbeddingCache(tmp_path).encode_with_cache(spy, texts)
    assert sorted(spy.received) == sorted(texts)
    np.testing.assert_allclose(vectors, truth, atol=1e-5)
    assert shard.with_name(shard.name + ".corrupt").exists()  # set aside, not read again
    assert len(shards(tmp_path)) == 1  # the re-encoded vectors


def test_shard_with_valid_checksum_but_wrong_vectors_is_rejected(tmp_path: Path) -> None:
    fake = FakeEncoder()
    folder = tmp_path / fake.fingerprint
    folder.mkdir()
    keys = np.frombuffer(text_key("a"), dtype=np.uint8).reshape(1, 32)
    _write_shard(folder / f"bad{SUFFIX}", keys, np.full((1, 16), 3.0, dtype=np.float32))
    with pytest.warns(CacheWarning, match="unit vectors"):
        vectors = EmbeddingCache(tmp_path).encode_with_cache(fake, ["a"])
    np.testing.assert_array_equal(vectors, expected_vectors(["a"]))
    assert fake.received == ["a"]


def _writer(root: str, prefix: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    cache = EmbeddingCache(root, compact_every=3)  # compactions race the other writer too
    encoder = FakeEncoder()
    barrier.wait()
    for batch in range(25):
        cache.encode_with_cache(encoder, [f"{prefix}-{batch}-{i}" for i in range(8)] + ["shared"])


def test_two_processes_writing_at_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_writer, args=(str(tmp_path), p, barrier)) for p in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    texts = [f"{p}-{b}-{i}" for p in "ab" for b in range(25) for i in range(8)] + ["shared"]
    reader = FakeEncoder()
    vectors = EmbeddingCache(tmp_path).encode_with_cache(reader, texts)
    assert reader.received == []  # both sets are there
    np.testing.assert_array_equal(vectors, expected_vectors(texts))
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.corrupt"))


def test_compaction_merges_shards(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, compact_every=None)
    fake = FakeEncoder()
    for i in range(6):
        cache.encode_with_cache(fake, [f"t{i}", f"u{i}"])
    assert len(shards(tmp_path)) == 6
    assert cache.compact() == 6
    assert len(shards(tmp_path)) == 1
    texts = [f"{c}{i}" for c in "tu" for i in range(6)]
    np.testing.assert_array_equal(EmbeddingCache(tmp_path).encode_with_cache(fake, texts),
                                  expected_vectors(texts))
    auto = EmbeddingCache(tmp_path / "auto", compact_every=4)
    for i in range(10):
        auto.encode_with_cache(fake, [f"v{i}"])
    assert len(shards(tmp_path / "auto")) <= 4


def test_unwritable_cache_only_warns(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.warns(CacheWarning, match="cannot write"):
        vectors = EmbeddingCache(blocker).encode_with_cache(FakeEncoder(), ["a", "b"])
    np.testing.assert_array_equal(vectors, expected_vectors(["a", "b"]))


def test_warm_reads_are_fast(tmp_path: Path) -> None:
    texts = [f"item number {i} with some words" for i in range(20_000)]
    EmbeddingCache(tmp_path).encode_with_cache(FakeEncoder(dim=384), texts)
    start = time.perf_counter()
    fresh = FakeEncoder(dim=384)
    EmbeddingCache(tmp_path).encode_with_cache(fresh, texts)
    assert fresh.received == [] and time.perf_counter() - start < 1.0  # encoding: ~60 s


def test_default_root_and_convenience_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                encoder: TextEncoder, items: pd.DataFrame) -> None:
    monkeypatch.setenv("LONGTAIL_CACHE", str(tmp_path / "c"))
    assert default_cache_root() == tmp_path / "c" / "embeddings"
    catalogue = items.head(10)
    raw = embed_items(catalogue, template=None)
    assert shards(tmp_path / "c")  # the default cache was used
    np.testing.assert_allclose(raw, encoder.encode(catalogue["text"].tolist()), atol=1e-5)
    np.testing.assert_array_equal(embed_texts(catalogue["text"].tolist()), raw)
    uncached = embed_texts(["nothing stored"], cache=False)
    assert uncached.shape == (1, 384)
    assert embed_texts([]).shape == (0, 384)
