"""common.arrays: nesting one array dict inside another by key prefix, exactly and reversibly."""

from __future__ import annotations

import numpy as np

from longtail.common.arrays import pack, unpack


def test_pack_prepends_the_prefix_verbatim() -> None:
    x, y = np.arange(3), np.ones((2, 2))
    assert pack("model.", {"x": x, "y": y}) == {"model.x": x, "model.y": y}
    assert list(pack("cf", {"x": x})) == ["cfx"]  # no separator is added: the prefix carries it
    assert pack("", {"x": x}) == {"x": x}
    assert pack("p/", {}) == {}


def test_round_trip_keeps_the_very_arrays() -> None:
    arrays = {"item_factors": np.random.default_rng(0).random((4, 3)), "shape": np.array([4, 3]),
              "a.b/c": np.zeros(0, dtype=np.int8)}
    back = unpack("model.", pack("model.", arrays))
    assert back.keys() == arrays.keys()
    for key, value in arrays.items():
        assert back[key] is value  # not copied, not converted


def test_unpack_returns_only_its_own_prefix() -> None:
    cf, semantic, part1, part10 = np.arange(2), np.arange(3), np.arange(4), np.arange(5)
    flat = {"gate": np.zeros(1), **pack("cf/", {"w": cf}), **pack("semantic/", {"w": semantic}),
            **pack("part1/", {"w": part1}), **pack("part10/", {"w": part10})}
    assert unpack("cf/", flat) == {"w": cf}
    assert unpack("semantic/", flat) == {"w": semantic}
    assert unpack("part1/", flat) == {"w": part1}  # "part10/w" does not start with "part1/"
    assert unpack("part10/", flat) == {"w": part10}
    assert unpack("missing/", flat) == {}
    assert unpack("cf/", {"xcf/w": cf, "cf": cf}) == {}  # a prefix must start the key


def test_nested_packing_unpacks_level_by_level() -> None:
    leaf = {"v": np.arange(6).reshape(2, 3)}
    flat = pack("model.", {**pack("part0/", leaf), "weights": np.ones(2)})
    assert set(flat) == {"model.part0/v", "model.weights"}
    inner = unpack("model.", flat)
    assert unpack("part0/", inner) == leaf
    assert set(unpack("part0/", flat)) == set()  # the outer prefix must be removed first
