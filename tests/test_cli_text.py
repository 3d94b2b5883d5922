"""`longtail similar` and `longtail embed` end to end, on a 200-film slice of ml-latest-small (the
real titles, texts and interactions of those films) so the real encoder runs in a second or two."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.data import load_dataset
from longtail.text.similar import TitleNotFoundError, match_title, title_variants

runner = CliRunner()


@pytest.fixture(scope="module")
def films_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """items.csv + interactions.csv of the first 180 films plus the Pixar films and a few decoys."""
    raw = load_dataset("ml-latest-small").raw
    titles = raw.items["title"].astype(str)
    pixar = titles.str.contains(r"Toy Story|Monsters, Inc|Finding Nemo|Incredibles|Bug's Life|Toys \(")
    items = raw.items[pixar | (np.arange(len(titles)) < 180)]
    folder = tmp_path_factory.mktemp("films")
    items.to_csv(folder / "items.csv", index=False)
    inter = raw.interactions[raw.interactions["item_id"].isin(set(items["item_id"]))]
    inter.to_csv(folder / "interactions.csv", index=False)
    return folder


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets an empty embedding cache (never the user's ~/.cache)."""
    monkeypatch.setenv("LONGTAIL_CACHE", str(tmp_path / "cache"))


def test_help_lists_the_text_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "similar" in result.output and "Items most similar to a title" in result.output
    assert "embed" in result.output and "Encode the catalogue" in result.output


def test_similar_toy_story_finds_its_sequels(films_dir: Path) -> None:
    result = runner.invoke(app, ["similar", "--dataset", str(films_dir), "Toy Story", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["match"]["title"] == "Toy Story (1995)" and payload["match"]["item_id"] == "1"
    titles = [n["title"] for n in payload["similar"]]
    scores = [n["score"] for n in payload["similar"]]
    assert len(titles) == 10 and "Toy Story (1995)" not in titles
    assert {"Toy Story 2 (1999)", "Toy Story 3 (2010)"} <= set(titles[:3])
    assert scores == sorted(scores, reverse=True)
    table = runner.invoke(app, ["similar", "-d", str(films_dir), "toy stroy", "--k", "3"])
    assert table.exit_code == 0 and "Toy Story 2 (1999)" in table.stdout  # one typo still matches


def test_unknown_title_exits_non_zero_and_suggests(films_dir: Path) -> None:
    result = runner.invoke(app, ["similar", "--dataset", str(films_dir), "Qwertyuiop Zzzxv"])
    assert result.exit_code == 2
    assert "no such title" in result.stderr and "Closest titles" in result.stderr
    assert result.stderr.count("(19") + result.stderr.count("(20") >= 5  # five titles with years
    assert "Traceback" not in result.output


def test_embed_reports_cache_hits(films_dir: Path) -> None:
    first = runner.invoke(app, ["embed", "--dataset", str(films_dir), "--json"])
    assert first.exit_code == 0, first.output
    cold = json.loads(first.stdout)
    assert cold["items"] >= 180 and cold["from_cache"] == 0 and cold["encoded"] > 0 and cold["dim"] == 384
    warm = json.loads(runner.invoke(app, ["embed", "--dataset", str(films_dir), "--json"]).stdout)
    assert warm["from_cache"] == warm["items"] == cold["items"] and warm["encoded"] == 0
    text = runner.invoke(app, ["embed", "-d", str(films_dir)])
    assert "items/s" in text.stdout and "from cache" in text.stdout


def test_title_matching_rules() -> None:
    titles = ["Matrix, The (1999)", "Godfather, The (1972)", "Godfather: Part II, The (1974)",
              "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "M (1931)"]
    assert "The Matrix" in title_variants(titles[0]) and "Matrix" in title_variants(titles[0])
    assert match_title(titles, "the matrix").index == 0
    assert match_title(titles, "amelie").index == 3  # not "M (1931)", as partial scorers would say
    # "Godfather" is a perfect match for both; the more popular one wins, then the first row
    assert match_title(titles, "Godfather", popularity=np.array([0, 5, 9, 0, 0])).index == 2
    assert match_title(titles, "Godfather").index == 1
    with pytest.raises(TitleNotFoundError) as error:
        match_title(titles, "xyz")
    assert len(error.value.suggestions) == 5
