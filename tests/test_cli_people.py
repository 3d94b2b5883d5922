"""`longtail recommend` end to end on the shipped dataset (semantic-attn: it fits in seconds), from a
dataset and from a trained artifact; unknown users get a clear message and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.data import load_dataset
from longtail.data.buckets import BUCKET_NAMES, bucket_mix, pick_user

runner = CliRunner()
MODEL = ["--model", "semantic-attn"]


def recommend(*args: str) -> dict:
    result = runner.invoke(app, ["recommend", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("artifact") / "model"
    result = runner.invoke(app, ["train", "--out", str(out), *MODEL])
    assert result.exit_code == 0, result.output
    return out


def test_the_picked_users_follow_their_rule() -> None:
    ds = load_dataset("ml-latest-small")
    histories = (ds.train_valid + ds.test).csr
    buckets = ds.buckets
    mix = bucket_mix(histories, buckets)
    head, tail = (pick_user(histories, buckets, rule) for rule in ("head-heavy", "tail-leaning"))
    assert mix[head, 0] > 0.9 and mix[tail, 1:].sum() > 0.9  # one lives in the head, one in the tail


def test_recommend_lists_unseen_items_with_bucket_and_reason(artifact: Path) -> None:
    listed = recommend("--pick", "tail-leaning", "--k", "7", *MODEL)
    ds = load_dataset("ml-latest-small")
    user = ds.users.index([listed["user_id"]])[0]
    seen = set(ds.item_vocab.ids[(ds.train_valid + ds.test).csr[user].indices])
    assert len(listed["items"]) == 7 and listed["model"] == "semantic-attn"
    assert [r["rank"] for r in listed["items"]] == list(range(1, 8))
    assert not seen & {r["item_id"] for r in listed["items"]}
    assert all(r["bucket"] in BUCKET_NAMES.values() and "because you liked" in r["reason"] for r in listed["items"])
    scores = [r["score"] for r in listed["items"]]
    assert scores == sorted(scores, reverse=True)
    # the artifact trained on the same data gives the same list (one ranking path)
    assert recommend("--artifact", str(artifact), "--user", listed["user_id"], "--k", "7")["items"] == listed["items"]


def test_the_table_shows_titles(artifact: Path) -> None:
    result = runner.invoke(app, ["recommend", "--artifact", str(artifact), "--pick", "head-heavy", "--k", "3"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "semantic-attn for user" in result.output and "because you liked" in result.output


@pytest.mark.parametrize("args", [["--user", "no-such-user"], [], ["--user", "1", "--pick", "head-heavy"],
                                  ["--pick", "sideways"]])
def test_a_bad_user_choice_is_a_clear_error(artifact: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["recommend", "--artifact", str(artifact), *args])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def films_with_a_newcomer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 films of ml-latest-small with their real positives, plus a user with one rated film."""
    import pandas as pd

    raw = load_dataset("ml-latest-small").raw
    items = raw.items.iloc[:300]
    folder = tmp_path_factory.mktemp("newcomer")
    items.to_csv(folder / "items.csv", index=False)
    inter = raw.interactions[raw.interactions["item_id"].isin(set(items["item_id"]))]
    solo = pd.DataFrame({"user_id": ["solo"], "item_id": [items["item_id"].iloc[0]],
                         "timestamp": [1_500_000_000], "rating": [5.0]})
    pd.concat([inter, solo]).to_csv(folder / "interactions.csv", index=False)
    return folder


def test_profile_of_a_one_item_user_and_its_plot(films_with_a_newcomer: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["profile", "--dataset", str(films_with_a_newcomer), "--user", "solo",
                                 "--method", "tfidf", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["n_items"] == 1 and len(found["interests"]) == 1 and found["activity"]["level"] == "light"
    assert Path(found["plot"]).read_bytes()[:4] == b"\x89PNG"
    title = load_dataset(films_with_a_newcomer).items["title"].iloc[0]
    assert found["interests"][0]["representative_title"] == title


def test_profile_panel_and_unknown_user(films_with_a_newcomer: Path, tmp_path: Path) -> None:
    shown = runner.invoke(app, ["profile", "--dataset", str(films_with_a_newcomer), "--pick", "tail-leaning",
                                "--method", "tfidf", "--out", str(tmp_path)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "interests (" in shown.output and "keywords:" in shown.output and "plot:" in shown.output
    missing = runner.invoke(app, ["profile", "--dataset", str(films_with_a_newcomer), "--user", "nobody"])
    assert missing.exit_code == 2 and "unknown user 'nobody'" in missing.output
