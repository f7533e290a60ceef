"""Advantage estimators against values worked out by hand, and masking invariants for every estimator.

The arithmetic of each expected value is written next to it. Layout: (B, T) tensors with the episode's
reward on its last policy token; mask 0 marks injected tokens (inside a response) or padding.
"""

from __future__ import annotations

import doctest

import pytest
import torch

from zerosearch.train import estimators
from zerosearch.train.estimators import (
    ESTIMATORS,
    AdvantageEstimator,
    AdvantageInputs,
    get_estimator,
    register_estimator,
)

ALL = sorted(ESTIMATORS)


def _t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def test_builtins_registered_under_verl_names():
    assert set(ALL) >= {e.value for e in AdvantageEstimator}
    assert get_estimator("gae").needs_values
    assert not get_estimator("grpo").needs_values
    assert get_estimator("reinforce_plus_plus").kl_in_reward
    assert not get_estimator(AdvantageEstimator.GRPO).kl_in_reward


def test_double_registration_and_unknown_name_are_errors():
    with pytest.raises(ValueError, match="already registered"):
        register_estimator("grpo")(lambda inputs: (inputs.mask, inputs.mask))
    with pytest.raises(KeyError, match="unknown advantage estimator 'nope'"):
        get_estimator("nope")


def test_grpo_by_hand():
    # Group 0: three episodes with scores 1, 0, 0 (rewards on their last policy token; episode 0 has an
    # injected token at t=1). mean = 1/3; unbiased var = ((2/3)^2 + 2 (1/3)^2) / 2 = (6/9)/2 = 1/3,
    # std = 0.57735. Advantages: (2/3)/0.57735 = 1.154701, (-1/3)/0.57735 = -0.577350.
    # Group 1: a single episode with score 0.7 -> mean 0, std 1 -> 0.7 / (1 + 1e-6).
    rewards = _t([[0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0.7, 0]])
    mask = _t([[1, 0, 1], [1, 1, 0], [1, 1, 1], [1, 1, 0]])
    groups = torch.tensor([0, 0, 0, 1])
    adv, ret = get_estimator("grpo").fn(AdvantageInputs(rewards, mask, groups))
    expected = _t([[1.154701, 0, 1.154701], [-0.577350, -0.577350, 0], [-0.577350] * 3, [0.7 / (1 + 1e-6)] * 2 + [0]])
    torch.testing.assert_close(adv, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(ret, adv)
    # Without std normalisation: score - mean = 2/3, -1/3, -1/3 and 0.7.
    adv, _ = get_estimator("grpo").fn(AdvantageInputs(rewards, mask, groups, norm_adv_by_std=False))
    assert adv[0, 0].item() == pytest.approx(2 / 3) and adv[1, 0].item() == pytest.approx(-1 / 3)
    assert adv[3, 0].item() == pytest.approx(0.7)


def test_reinforce_pp_baseline_by_hand():
    # Scores: A=1, B=0 (group 0, mean 0.5) -> 0.5, -0.5; C=0.5 alone (mean 0) -> 0.5.
    # Policy tokens: A has 2, B 1, C 1 -> values [0.5, 0.5, -0.5, 0.5]; mean 0.25;
    # deviations .25 .25 -.75 .25, squares sum 0.75, unbiased var 0.75/3 = 0.25, std 0.5.
    # Whitened: A 0.25/0.5 = 0.5, B -0.75/0.5 = -1.5, C 0.5.
    rewards = _t([[0, 0, 1], [0, 0, 0], [0.5, 0, 0]])
    mask = _t([[1, 0, 1], [1, 0, 0], [1, 0, 0]])
    adv, _ = get_estimator("reinforce_plus_plus_baseline").fn(AdvantageInputs(rewards, mask, torch.tensor([0, 0, 1])))
    torch.testing.assert_close(adv, _t([[0.5, 0, 0.5], [-1.5, 0, 0], [0.5, 0, 0]]), atol=1e-6, rtol=0)


def test_reinforce_pp_by_hand_carries_returns_across_injected_tokens():
    # gamma = 0.5. Row 0: mask [1, 0, 1] (an injected token between two policy tokens),
    # token rewards [-0.1 (a KL penalty), 0, 1.0]: G2 = 1.0; t=1 injected: carried (1.0);
    # G0 = -0.1 + 0.5 * 1.0 = 0.4. (verl's reset rule would give G0 = -0.1: it zeroes the running
    # return at every mask-0 position, cutting earlier turns off the outcome reward.)
    # Row 1: mask [1, 1, 0] (padding), rewards [0, 0.5, 0]: G1 = 0.5, G0 = 0.5 * 0.5 = 0.25.
    # Returns on policy tokens: 0.4 1.0 0.25 0.5; mean 0.5375; deviations -.1375 .4625 -.2875 -.0375;
    # squares .01890625 .21390625 .08265625 .00140625 = .316875; unbiased var /3 = .105625; std .325.
    rewards = _t([[-0.1, 0, 1.0], [0, 0.5, 0]])
    mask = _t([[1, 0, 1], [1, 1, 0]])
    inputs = AdvantageInputs(rewards, mask, torch.tensor([0, 1]), gamma=0.5)
    adv, ret = get_estimator("reinforce_plus_plus").fn(inputs)
    torch.testing.assert_close(ret, _t([[0.4, 0, 1.0], [0.25, 0.5, 0]]))
    expected = _t([[-0.1375 / 0.325, 0, 0.4625 / 0.325], [-0.2875 / 0.325, -0.0375 / 0.325, 0]])
    torch.testing.assert_close(adv, expected, atol=1e-6, rtol=0)


def test_gae_by_hand_skips_injected_tokens():
    # gamma = 1, lambda = 0.5. Row 0: mask [1, 0, 1], values [0.2, 9.9 (injected: must be ignored), 0.5],
    # rewards [0, 0, 1].
    #   t=2: delta = 1 + 1*0 - 0.5 = 0.5; A2 = 0.5.
    #   t=1: injected -> skipped; V_next stays 0.5, A_next stays 0.5.
    #   t=0: delta = 0 + 1*0.5 - 0.2 = 0.3; A0 = 0.3 + 1*0.5*0.5 = 0.55.   returns: 0.75, 1.0
    # Row 1: mask [1, 1, 0] (padding), values [0.1, 0.3, 7.0], rewards [0, 0.4, 0].
    #   t=1: delta = 0.4 - 0.3 = 0.1; A1 = 0.1.   t=0: delta = 0.3 - 0.1 = 0.2; A0 = 0.2 + 0.5*0.1 = 0.25.
    #   returns: 0.35, 0.4
    # Whitening [0.55, 0.5, 0.25, 0.1]: mean 0.35; deviations .2 .15 -.1 -.25; squares sum .135;
    # unbiased var .045; std .2121320 -> .942809 .707107 -.471405 -1.178511.
    rewards = _t([[0, 0, 1], [0, 0.4, 0]])
    values = _t([[0.2, 9.9, 0.5], [0.1, 0.3, 7.0]])
    mask = _t([[1, 0, 1], [1, 1, 0]])
    inputs = AdvantageInputs(rewards, mask, torch.tensor([0, 1]), values=values, gamma=1.0, lam=0.5)
    adv, ret = get_estimator("gae").fn(inputs)
    torch.testing.assert_close(ret, _t([[0.75, 0, 1.0], [0.35, 0.4, 0]]))
    std = 0.045**0.5
    expected = _t([[0.2 / std, 0, 0.15 / std], [-0.1 / std, -0.25 / std, 0]])
    torch.testing.assert_close(adv, expected, atol=1e-6, rtol=0)


def test_gae_needs_values():
    with pytest.raises(ValueError, match="needs critic values"):
        get_estimator("gae").fn(AdvantageInputs(_t([[1.0]]), _t([[1.0]]), torch.tensor([0])))


def _random_case(seed: int) -> AdvantageInputs:
    gen = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[0, 1, 1, 0, 0, 1, 1, 0], [0, 0, 1, 1, 1, 0, 1, 0],
                         [0, 1, 0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 0, 0, 0, 0]], dtype=torch.float64)
    rewards = torch.zeros_like(mask)
    for b in range(mask.shape[0]):
        last = int(torch.nonzero(mask[b]).max())
        rewards[b, last] = torch.rand((), generator=gen, dtype=torch.float64)
    rewards = rewards - 0.01 * torch.rand(mask.shape, generator=gen, dtype=torch.float64) * mask  # KL-like
    values = torch.randn(mask.shape, generator=gen, dtype=torch.float64)
    return AdvantageInputs(rewards, mask, torch.tensor([0, 0, 1, 1]), values=values, gamma=0.9, lam=0.8)


@pytest.mark.parametrize("name", ALL)
def test_masked_positions_get_zero_and_garbage_there_changes_nothing(name):
    inputs = _random_case(0)
    adv, _ = get_estimator(name).fn(inputs)
    assert torch.all(adv[inputs.mask == 0] == 0)
    off = inputs.mask == 0
    garbage = AdvantageInputs(
        inputs.token_rewards + off * 1e3, inputs.mask, inputs.group_ids,
        values=inputs.values + off * -5e2, gamma=inputs.gamma, lam=inputs.lam,
    )
    adv_garbage, _ = get_estimator(name).fn(garbage)
    torch.testing.assert_close(adv_garbage, adv, atol=1e-12, rtol=0)
    assert torch.isfinite(adv).all()


@pytest.mark.parametrize("name", ALL)
def test_higher_reward_gets_higher_advantage(name):
    # Two episodes of one prompt, identical but for the outcome: the better one must be pushed up.
    mask = _t([[1, 1, 0, 1], [1, 1, 0, 1]])
    rewards = _t([[0, 0, 0, 1.0], [0, 0, 0, 0.0]])
    values = torch.zeros_like(mask)
    adv, _ = get_estimator(name).fn(AdvantageInputs(rewards, mask, torch.tensor([0, 0]), values=values))
    assert adv[0, -1] > adv[1, -1]


def test_module_doctests():
    assert doctest.testmod(estimators).failed == 0


def test_plain_reinforce_is_the_score_on_every_policy_token():
    """ZeroSearch's ``adv_estimator=reinforce``: no baseline (group of two with scores 1 and 0.5 keeps
    both), no whitening (the values stay the raw scores), zero at injected/padding tokens."""
    rewards = _t([[0.0, 0.0, 1.0], [0.0, 0.5, 0.0]])
    mask = _t([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = get_estimator("reinforce").fn(AdvantageInputs(rewards, mask, torch.tensor([0, 0])))
    assert torch.equal(adv, _t([[1.0, 0.0, 1.0], [0.5, 0.5, 0.0]])) and torch.equal(ret, adv)
    assert not get_estimator("reinforce").needs_values and not get_estimator("reinforce").kl_in_reward


def test_gae_kl_defaults_to_k1_in_the_reward_like_the_reference():
    assert get_estimator("gae").kl_in_reward
