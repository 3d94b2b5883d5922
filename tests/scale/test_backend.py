"""The backend layer without Ray: shards, the local backend, and the error a missing Ray gives."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.errors import ConfigError
from longtail.scale.backend import LocalBackend, RayMissing, Shard, open_backend, require_ray, shards_of

runner = CliRunner()


def test_shards_cover_every_row_once_and_start_on_batch_boundaries() -> None:
    shards = shards_of(610, 100, align=128)  # 100 rounds up to one batch of 128
    assert [(s.start, s.stop) for s in shards] == [(0, 128), (128, 256), (256, 384), (384, 512), (512, 610)]
    assert [s.index for s in shards] == list(range(5)) and sum(len(s) for s in shards) == 610
    assert shards_of(0, 10) == [] and shards_of(5, 10) == [Shard(0, 0, 5)]
    with pytest.raises(ConfigError):
        shards_of(10, 0)


def test_the_local_backend_keeps_shard_order_and_reports_each() -> None:
    seen: list[int] = []
    backend = LocalBackend()
    shared = backend.put({"offset": 10})
    out = backend.map(lambda shard, s: shard.start + s["offset"], shards_of(7, 3), shared,
                      on_result=lambda shard, _: seen.append(shard.index))
    assert out == [10, 13, 16] and seen == [0, 1, 2]


def test_bad_backend_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="--backend must be one of"):
        open_backend("spark")
    with pytest.raises(ConfigError, match="--address needs --backend ray"):
        open_backend("local", address="auto")
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        open_backend("local", 0)


@pytest.mark.parametrize("command", [["embed"], ["evaluate", "--models", "pop"],
                                     ["recommend", "--all-users", "--model", "pop"]])
def test_without_ray_the_commands_say_what_to_install(command: list[str], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(RayMissing):
        require_ray()
    result = runner.invoke(app, [*command, "--backend", "ray", "--out" if command[0] != "embed" else "--json",
                                 *([str(tmp_path / "out")] if command[0] != "embed" else [])])
    assert result.exit_code == 2, result.output
    assert "install longtail[ray]" in " ".join(result.output.split())
