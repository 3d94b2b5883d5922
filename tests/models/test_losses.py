"""Long-tail losses on a toy problem with a known answer: learn one free logit per item from targets
drawn with Zipf frequencies. Plain softmax learns ``log frequency``; every long-tail loss must end
with the tail items raised relative to the head ones, compared with plain softmax. (Focal acts only
where the model is confident, so its toy has one dominant item, predicted with p ~ 0.8.)"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from longtail.errors import ConfigError
from longtail.models.losses import (
    LongTailLoss,
    LossConfig,
    focal_cross_entropy,
    ips_weights,
    log_prior,
    sampled_softmax_loss,
)

N_ITEMS = 40
COUNTS = np.round(100.0 / np.arange(1, N_ITEMS + 1)).astype(np.int64)  # Zipf: 100, 50, 33, ...
PEAKED = np.array([400] + [5] * (N_ITEMS - 1))  # one item ~0.67 of the targets
HEAD, TAIL = np.arange(8), np.arange(8, N_ITEMS)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors: one thread avoids OpenMP spinning when the machine is shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def learned_logits(config: LossConfig, counts: np.ndarray = COUNTS, steps: int = 300) -> np.ndarray:
    """Centred free logits (N_ITEMS,) after full-batch Adam on every target once."""
    targets = torch.from_numpy(np.repeat(np.arange(N_ITEMS), counts))  # (T,)
    theta = torch.zeros(N_ITEMS, requires_grad=True)
    criterion = LongTailLoss(config, counts)
    items = torch.arange(N_ITEMS)
    optimizer = torch.optim.Adam([theta], lr=0.1)
    for _ in range(steps):
        logits = theta.expand(len(targets), -1)  # (T, N_ITEMS): one shared distribution
        loss = criterion(logits, targets, items)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = theta.detach().numpy()
    return out - out.mean()


def tail_gap(logits: np.ndarray) -> float:
    """Mean tail logit minus mean head logit (higher = the tail is favoured more)."""
    return float(logits[TAIL].mean() - logits[HEAD].mean())


@pytest.fixture(scope="module")
def softmax_gap() -> float:
    return tail_gap(learned_logits(LossConfig("softmax")))


def test_softmax_learns_log_frequency() -> None:
    logits = learned_logits(LossConfig("softmax"))
    expected = np.log(COUNTS) - np.log(COUNTS).mean()
    np.testing.assert_allclose(logits, expected, atol=0.05)


def test_logit_adjustment_explains_popularity_away(softmax_gap: float) -> None:
    """tau = 1: the prior absorbs popularity, so the learned logits are ``log f - log prior``,
    flat up to the prior's add-one smoothing."""
    logits = learned_logits(LossConfig("logit-adjustment", tau=1.0))
    expected = np.log(COUNTS / (COUNTS + 1.0))
    np.testing.assert_allclose(logits, expected - expected.mean(), atol=0.05)
    half = tail_gap(learned_logits(LossConfig("logit-adjustment", tau=0.5)))
    assert softmax_gap < half < tail_gap(logits)


@pytest.mark.parametrize("power", [0.5, 1.0])
def test_ips_raises_the_tail(power: float, softmax_gap: float) -> None:
    assert tail_gap(learned_logits(LossConfig("ips", ips_power=power))) > softmax_gap + 0.1


def test_focal_lowers_a_confidently_predicted_head() -> None:
    plain = learned_logits(LossConfig("softmax"), PEAKED)
    focal = [learned_logits(LossConfig("focal", gamma=g), PEAKED) for g in (1.0, 2.0)]
    gaps = [float(logits[1:].mean() - logits[0]) for logits in (plain, *focal)]
    assert gaps[0] + 0.1 < gaps[1] < gaps[2]  # the stronger the focus, the flatter


def test_ips_weights_are_inverse_popularity_clipped() -> None:
    weights = ips_weights(np.array([100, 25, 1, 0]), power=0.5, clip=5.0)
    np.testing.assert_allclose(weights, [1.0, 2.0, 5.0, 5.0])  # sqrt(100/1) = 10 is clipped


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    logits = torch.randn(6, 9, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 3, 8, 1, 1, 2])
    plain = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(focal_cross_entropy(logits, target, 0.0), plain)
    assert torch.all(focal_cross_entropy(logits, target, 2.0) < plain)  # easy examples count less


def test_per_row_candidates_match_shared_candidates() -> None:
    """The sampled-softmax form (items per row) gives the full-softmax loss on the same items."""
    logits = torch.randn(5, N_ITEMS, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 10, 20, 39])
    for name in ("logit-adjustment", "ips", "focal"):
        criterion = LongTailLoss(LossConfig(name), COUNTS)
        shared = criterion(logits, target, torch.arange(N_ITEMS))
        per_row = criterion(logits, target, torch.arange(N_ITEMS).expand(5, -1))
        torch.testing.assert_close(shared, per_row)


def test_sampled_softmax_with_every_item_once_is_the_full_softmax() -> None:
    """Negatives = the whole catalogue, uniform Q: log_q = log(S / S) = 0 and the target's copy
    among the negatives is masked, so the loss is exactly the full softmax."""
    gen = torch.Generator().manual_seed(2)
    user, vectors = torch.randn(6, 4, generator=gen), torch.randn(N_ITEMS, 4, generator=gen)
    target = torch.tensor([0, 5, 5, 17, 30, 39])
    for name in ("softmax", "logit-adjustment", "ips", "focal"):
        criterion = LongTailLoss(LossConfig(name), COUNTS)
        full = criterion(user @ vectors.T, target, torch.arange(N_ITEMS))
        sampled = sampled_softmax_loss(criterion, user, vectors, target, torch.arange(N_ITEMS),
                                       torch.zeros(N_ITEMS), torch.arange(N_ITEMS))
        torch.testing.assert_close(sampled, full)


def test_log_prior_is_smoothed_and_normalised() -> None:
    prior = np.exp(log_prior(np.array([3, 0, 1])))
    np.testing.assert_allclose(prior, [4 / 7, 1 / 7, 2 / 7], rtol=1e-6)


def test_bad_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="loss must be one of"):
        LossConfig("hinge")
    with pytest.raises(ConfigError):
        LossConfig("focal", gamma=-1.0)
