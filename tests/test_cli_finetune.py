"""`longtail finetune` end to end on a slice of ml-latest-small (its 150 most rated films, real
titles and ratings), then the output used as `--encoder` by `similar` and `embed`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from slices import popular_slice
from typer.testing import CliRunner

from longtail.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return popular_slice(tmp_path_factory.mktemp("films"), n_items=150)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGTAIL_CACHE", str(tmp_path / "cache"))


def test_finetune_reports_trainable_share_curves_and_before_after(films: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft"
    args = ["finetune", "--dataset", str(films), "--mode", "lora", "--out", str(out), "--max-steps", "2",
            "--batch-size", "8", "--eval-every", "1", "--threads", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trainable parameters:" in result.output and "%)" in result.output
    share = float(result.output.split("trainable parameters:")[1].split("(")[1].split("%")[0])
    assert 0 < share < 2
    assert "frozen" in result.output and "adapted" in result.output and "relative change" in result.output
    report = json.loads((out / "training" / "report.json").read_text())
    trained = [v for v in report["validations"] if v["alpha"] == 1.0]
    assert [v["step"] for v in trained] == [0, 1, 2]
    mixes = [v["alpha"] for v in report["validations"] if v["alpha"] != 1.0]
    best = max(trained, key=lambda v: v["ndcg@20"])["step"]
    assert mixes == ([] if best == 0 else [0.75, 0.5, 0.25])  # WiSE-FT mixes only of an adapted encoder
    assert report["trainable_share"] < 0.02 and (out / "training" / "loss.png").stat().st_size > 10_000
    # rerunning a finished run trains nothing and prints the same comparison
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "resuming at step 2" in again.output

    frozen = runner.invoke(app, ["similar", "Toy Story", "--dataset", str(films), "--json", "-k", "5"])
    adapted = runner.invoke(app, ["similar", "Toy Story", "--dataset", str(films), "--json", "-k", "5",
                                  "--encoder", str(out)])
    assert frozen.exit_code == 0 and adapted.exit_code == 0, adapted.output
    scores = [[n["score"] for n in json.loads(r.output)["similar"]] for r in (frozen, adapted)]
    kept = max(report["validations"], key=lambda v: v["ndcg@20"])["step"]
    assert (scores[0] == scores[1]) == (kept == 0)  # the kept encoder is the adapted one unless step 0 won
    embedded = runner.invoke(app, ["embed", "--dataset", str(films), "--json", "--encoder", str(out)])
    assert embedded.exit_code == 0, embedded.output
    assert json.loads(embedded.output)["encoder"].startswith("encoder-")


def test_bad_encoder_folder_is_a_clear_error(films: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["similar", "Toy Story", "--dataset", str(films), "--encoder", str(tmp_path / "empty")])
    assert result.exit_code != 0 and "not a sentence-transformers model folder" in result.output
    bad = runner.invoke(app, ["finetune", "--dataset", str(films), "--mode", "qlora", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "mode must be one of" in bad.output
