"""``--protocol leave-one-out`` and ``--keep-seen`` on amazon-scientific-seqorder (8,442 users, 291
repeated (user, item) pairs): the split against an independent pandas computation, and an evaluation
of cheap models on a user subset whose runs and qrels are recomputed with ranx and with pandas."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from longtail.cli import app
from longtail.data import HistoryBatch, load_dataset
from longtail.eval import runner as runner_module
from longtail.eval.evaluator import Evaluator
from longtail.eval.runner import EvaluationConfig, run_evaluation
from longtail.models import make_model

SCIENTIFIC = Path(__file__).resolve().parents[3] / "shared" / "data" / "amazon-scientific-seqorder"
KS = (10, 20, 50)
RANX_NAMES = {"ndcg": "ndcg", "recall": "recall", "mrr": "mrr", "hit": "hit_rate", "precision": "precision"}
PINNED = {False: {"train": 42256, "valid": 8440, "test": 8440},  # duplicates reduced: 291 pairs fewer
          True: {"train": 42543, "valid": 8442, "test": 8442}}  # 59,427 rows, every one a step

pytestmark = pytest.mark.skipif(not SCIENTIFIC.is_dir(), reason="../shared/data is not beside the repository")


def read_frame(folder: Path) -> pd.DataFrame:
    frame = pd.read_csv(next(folder.glob("interactions.csv*")), dtype={"user_id": str, "item_id": str})
    return frame[frame["rating"].isna() | (frame["rating"] >= 4.0)]


def pandas_split(frame: pd.DataFrame, keep_seen: bool) -> dict[str, pd.DataFrame]:
    """The protocol written with pandas: order by (user, timestamp, item_id); first time per pair
    unless keep_seen; users with >= 3 positives give the last to test, the one before to valid."""
    df = frame.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    if not keep_seen:
        df = df.drop_duplicates(["user_id", "item_id"], keep="first")
    n = df.groupby("user_id")["item_id"].transform("size")
    from_end = df.groupby("user_id").cumcount(ascending=False)
    test, valid = (n >= 3) & (from_end == 0), (n >= 3) & (from_end == 1)
    cols = ["user_id", "item_id", "timestamp"]
    return {"train": df[~test & ~valid][cols], "valid": df[valid][cols], "test": df[test][cols]}


def triples(frame: pd.DataFrame) -> list[tuple[str, str, int]]:
    return sorted(zip(frame["user_id"], frame["item_id"], frame["timestamp"].astype(int)))


@pytest.mark.parametrize("keep_seen", [False, True])
def test_split_matches_pandas(keep_seen: bool) -> None:
    ds = load_dataset(SCIENTIFIC, protocol="leave-one-out", keep_seen=keep_seen)
    expected = pandas_split(read_frame(SCIENTIFIC), keep_seen)
    for name in ("train", "valid", "test"):
        part = getattr(ds, name)
        got = sorted(zip(ds.users.ids[part.users], ds.item_vocab.ids[part.items], part.timestamps.tolist()))
        assert got == triples(expected[name]), name
        assert len(part) == PINNED[keep_seen][name]
    # one target per user; every test user has a history
    assert len(ds.test_users) == len(ds.test) and np.isin(ds.test_users, ds.train_valid.active_users()).all()


def test_keep_seen_keeps_the_repeats() -> None:
    ds = load_dataset(SCIENTIFIC, protocol="leave-one-out", keep_seen=True)
    everything = ds.train_valid + ds.test
    assert len(everything) - everything.csr.nnz == 291  # the README's repeated pairs, all kept
    frame = pandas_split(read_frame(SCIENTIFIC), True)
    seen = frame["test"].merge(pd.concat([frame["train"], frame["valid"]]).drop_duplicates(["user_id", "item_id"]),
                               on=["user_id", "item_id"])
    in_history = ds.test.csr.multiply(ds.train_valid.csr).nnz
    assert in_history == len(seen) == 50  # test items already in the user's history
    queries = Evaluator(ds, split="test", beyond=False).queries(ds.test_users)
    assert queries.repeats and len(queries.items) == len(ds.train_valid) > queries.csr().nnz


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every 5th user plus every user with a repeated pair (~2,000 users), the full catalogue."""
    frame = pd.read_csv(SCIENTIFIC / "interactions.csv.gz", dtype={"user_id": str, "item_id": str})
    users = np.sort(frame["user_id"].unique())
    repeaters = frame.loc[frame.duplicated(["user_id", "item_id"]), "user_id"]
    keep = set(users[::5]) | set(repeaters)
    folder = tmp_path_factory.mktemp("scientific-subset")
    frame[frame["user_id"].isin(keep)].to_csv(folder / "interactions.csv", index=False)
    shutil.copy(SCIENTIFIC / "items.csv.gz", folder / "items.csv.gz")
    return folder


def evaluate(subset: Path, out: Path, models: list[str], **options) -> dict:
    """run_evaluation without item texts (the CF models read none; the text fallback is off), so
    the test never encodes the catalogue."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner_module, "_embeddings", lambda dataset, needed, template, encoder=None: None)
        return run_evaluation(EvaluationConfig(dataset=str(subset), models=models, out=out,
                                               protocol="leave-one-out", ild=False, **options))


@pytest.fixture(scope="module")
def keep_seen_run(subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("loo-keep-seen")
    # pop is tuned on valid (one grid point), the others fixed to keep the test fast
    evaluate(subset, out, ["pop", "itemknn", "ease"], keep_seen=True,
             params={"itemknn": {}, "ease": {"l2": 500.0}})
    return out


def read_run(out: Path, model: str) -> pd.DataFrame:
    return pd.read_csv(out / "runs" / f"{model}.tsv", sep="\t", dtype={"user_id": str, "item_id": str})


def test_outputs_report_the_leave_one_out_cut_offs(keep_seen_run: Path) -> None:
    payload = json.loads((keep_seen_run / "metrics.json").read_text())
    protocol = payload["protocol"]
    assert protocol["name"] == "leave-one-out" and protocol["keep_seen"] is True and protocol["ks"] == [10, 20, 50]
    qrels = pd.read_csv(keep_seen_run / "qrels.tsv", sep="\t", dtype=str)
    assert qrels["user_id"].is_unique  # one target per user
    for model, entry in payload["models"].items():
        overall = entry["overall"]
        assert {f"{m}@{k}" for m in RANX_NAMES for k in KS} <= set(overall)
        for k in KS:
            assert overall[f"recall@{k}"] == overall[f"hit@{k}"], (model, k)  # one target: Recall = Hit
        run = read_run(keep_seen_run, model)
        assert (run.groupby("user_id")["rank"].apply(list) == [list(range(1, 51))] * qrels["user_id"].nunique()).all()
        assert set(run["user_id"]) == set(qrels["user_id"])


@pytest.mark.parametrize("model", ["pop", "itemknn", "ease"])
def test_metrics_match_a_recomputation_from_the_files(keep_seen_run: Path, model: str) -> None:
    """hit / recall / ndcg / mrr / precision from the target's rank in runs/*.tsv (pandas), and
    every metric again with ranx, overall and per bucket, at 10, 20 and 50."""
    entry = json.loads((keep_seen_run / "metrics.json").read_text())["models"][model]
    run, qrels = read_run(keep_seen_run, model), pd.read_csv(keep_seen_run / "qrels.tsv", sep="\t", dtype=str)
    rank = qrels.merge(run, on=["user_id", "item_id"], how="left")["rank"].to_numpy(float)  # NaN: not in the top 50
    for k in KS:
        hit = np.nan_to_num(rank <= k)
        assert entry["overall"][f"hit@{k}"] == pytest.approx(hit.mean(), abs=1e-12)
        assert entry["overall"][f"ndcg@{k}"] == pytest.approx(np.mean(hit / np.log2(np.nan_to_num(rank, nan=2) + 1)))
        assert entry["overall"][f"mrr@{k}"] == pytest.approx(np.mean(hit / np.nan_to_num(rank, nan=1)))
        assert entry["overall"][f"precision@{k}"] == pytest.approx(hit.mean() / k)
    ranx = pytest.importorskip("ranx")
    run["score"] = -run["rank"].astype(float)  # the rank column is authoritative
    qrels["relevance"] = 1
    for group in ("overall", "head", "tail"):
        q = qrels if group == "overall" else qrels[qrels["bucket"] == group]
        r = run[run["user_id"].isin(set(q["user_id"]))]
        q, r = q.astype({"user_id": object, "item_id": object}), r.astype({"user_id": object, "item_id": object})
        got = ranx.evaluate(ranx.Qrels.from_df(q, q_id_col="user_id", doc_id_col="item_id", score_col="relevance"),
                            ranx.Run.from_df(r, q_id_col="user_id", doc_id_col="item_id", score_col="score"),
                            [f"{RANX_NAMES[m]}@{k}" for k in KS for m in RANX_NAMES], make_comparable=True)
        for k in KS:
            for ours, theirs in RANX_NAMES.items():
                assert entry[group][f"{ours}@{k}"] == pytest.approx(got[f"{theirs}@{k}"], abs=1e-6), (group, ours, k)


def test_history_items_are_ranked_and_a_repeat_target_is_a_hit(subset: Path, keep_seen_run: Path) -> None:
    frame = pandas_split(read_frame(subset), True)
    history = pd.concat([frame["train"], frame["valid"]])[["user_id", "item_id"]].drop_duplicates()
    run = read_run(keep_seen_run, "ease")
    assert len(run.merge(history, on=["user_id", "item_id"])) > 0  # history items in top-50 lists
    repeat_targets = frame["test"].merge(history, on=["user_id", "item_id"])
    assert len(repeat_targets) >= 40  # the subset keeps every user with a repeat
    ranked = repeat_targets.merge(run, on=["user_id", "item_id"])
    assert len(ranked) > len(repeat_targets) // 2  # EASE ranks most of them; each counts as a hit above


def test_order_free_models_score_repeats_like_their_first_times(subset: Path) -> None:
    ds = load_dataset(subset, protocol="leave-one-out", keep_seen=True)
    users = ds.test_users
    repeated = HistoryBatch.from_interactions(ds.train_valid, users)
    reduced = HistoryBatch.from_interactions(ds.train_valid, users, keep_repeats=False)
    assert len(repeated.items) > len(reduced.items)
    for name in ("itemknn", "ease"):
        model = make_model(name).fit(ds.train_valid)
        np.testing.assert_array_equal(model.score(repeated), model.score(reduced))


def test_plain_leave_one_out_still_excludes_the_history(subset: Path, tmp_path: Path) -> None:
    payload = evaluate(subset, tmp_path, ["pop"], tune=False)
    assert payload["protocol"]["keep_seen"] is False and payload["protocol"]["ks"] == [10, 20, 50]
    frame = pandas_split(read_frame(subset), False)
    history = pd.concat([frame["train"], frame["valid"]])[["user_id", "item_id"]]
    run = read_run(tmp_path, "pop")
    assert run.groupby("user_id").size().eq(50).all()
    assert run.merge(history, on=["user_id", "item_id"]).empty


def test_keep_seen_without_leave_one_out_is_a_clear_error(subset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "-d", str(subset), "--models", "pop", "--keep-seen",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--keep-seen" in result.stderr and "needs --protocol leave-one-out" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "metrics.json").exists()
