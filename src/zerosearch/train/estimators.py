"""Advantage estimators: GAE (PPO), GRPO, REINFORCE, REINFORCE++ and REINFORCE++-baseline, in one registry.

Formulas as in verl's ``verl/trainer/ppo/core_algos.py`` (facts only; our code). Every estimator has
the same signature, ``fn(inputs: AdvantageInputs) -> (advantages, returns)`` with ``(B, T)`` tensors,
and carries metadata (``needs_values``: the trainer runs a critic; ``kl_in_reward``: the default
placement of the KL term) so the trainer never branches on the algorithm's name.

Multi-turn masking. A response interleaves policy tokens (mask 1) with injected ``<information>``
blocks (mask 0). The recursions of GAE and of REINFORCE++'s discounted return *jump over* mask-0
positions: at such a position nothing is added, nothing is discounted and the running value/return is
carried unchanged to the policy token before it, so the value at the end of turn k bootstraps from the
first policy token of turn k+1 as if the injected tokens were part of the environment's transition
(verl's GAE does the same with its "skip observation tokens" rule). verl's REINFORCE++ instead *resets*
the running return at mask-0 positions, which is harmless for single-turn padding but would cut the
return of every turn before an injected block to zero; we carry it across, which equals verl's result
whenever no mask-0 token sits between two policy tokens. Advantages at mask-0 positions are garbage by
design and are zeroed before they are returned.

    >>> import torch
    >>> rewards = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    >>> mask = torch.ones(2, 2)
    >>> adv, _ = get_estimator("grpo").fn(AdvantageInputs(rewards, mask, torch.tensor([0, 0])))
    >>> adv  # group scores 1, 0: mean 0.5, unbiased std 0.7071
    tensor([[ 0.7071,  0.7071],
            [-0.7071, -0.7071]])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import torch

from zerosearch.train.losses import masked_whiten

Tensor = torch.Tensor


class AdvantageEstimator(str, Enum):
    """Built-in estimators (verl's names)."""

    GAE = "gae"
    GRPO = "grpo"
    REINFORCE = "reinforce"
    REINFORCE_PLUS_PLUS = "reinforce_plus_plus"
    REINFORCE_PLUS_PLUS_BASELINE = "reinforce_plus_plus_baseline"


@dataclass
class AdvantageInputs:
    """What every estimator receives; fields an estimator does not use are ignored.

    ``token_rewards``: (B, T) scalar reward on the last policy token, minus the KL penalty per token when
    the KL is placed in the reward. ``mask``: (B, T) 1 = policy token. ``group_ids``: (B,) episodes of
    the same prompt share an id. ``values``: (B, T) critic values (GAE only).
    """

    token_rewards: Tensor
    mask: Tensor
    group_ids: Tensor
    values: Tensor | None = None
    gamma: float = 1.0
    lam: float = 1.0
    epsilon: float = 1e-6
    norm_adv_by_std: bool = True


EstimatorFn = Callable[[AdvantageInputs], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class EstimatorSpec:
    """A registered estimator and what the trainer must provide for it."""

    name: str
    fn: EstimatorFn
    needs_values: bool = False
    kl_in_reward: bool = False


ESTIMATORS: dict[str, EstimatorSpec] = {}


def register_estimator(
    name: str | AdvantageEstimator, *, needs_values: bool = False, kl_in_reward: bool = False
) -> Callable[[EstimatorFn], EstimatorFn]:
    """Decorator adding an estimator; registering a name twice is an error."""
    key = name.value if isinstance(name, AdvantageEstimator) else str(name)

    def wrap(fn: EstimatorFn) -> EstimatorFn:
        if key in ESTIMATORS:
            raise ValueError(f"advantage estimator {key!r} is already registered")
        ESTIMATORS[key] = EstimatorSpec(key, fn, needs_values, kl_in_reward)
        return fn

    return wrap


def get_estimator(name: str | AdvantageEstimator) -> EstimatorSpec:
    """The registered estimator ``name``."""
    key = name.value if isinstance(name, AdvantageEstimator) else str(name)
    if key not in ESTIMATORS:
        raise KeyError(f"unknown advantage estimator {key!r}; registered: {sorted(ESTIMATORS)}")
    return ESTIMATORS[key]


def _group_stats(scores: Tensor, group_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Per-episode mean and unbiased std of its group's scores; a group of one gets mean 0, std 1."""
    mean = torch.zeros_like(scores)
    std = torch.ones_like(scores)
    for gid in torch.unique(group_ids):
        members = group_ids == gid
        if int(members.sum()) > 1:
            mean[members] = scores[members].mean()
            std[members] = scores[members].std()
    return mean, std


def _scores(inputs: AdvantageInputs) -> Tensor:
    """Outcome score of each episode: the sum of its masked token rewards, (B,)."""
    return (inputs.token_rewards * inputs.mask).sum(-1)


@register_estimator(AdvantageEstimator.GRPO)
def grpo_advantage(inputs: AdvantageInputs) -> tuple[Tensor, Tensor]:
    """(score - group mean) / (group std + eps) on every policy token; returns = advantages."""
    scores = _scores(inputs)
    mean, std = _group_stats(scores, inputs.group_ids)
    norm = (scores - mean) / (std + inputs.epsilon) if inputs.norm_adv_by_std else scores - mean
    adv = norm.unsqueeze(-1) * inputs.mask  # (B, T)
    return adv, adv


@register_estimator(AdvantageEstimator.REINFORCE)
def reinforce_advantage(inputs: AdvantageInputs) -> tuple[Tensor, Tensor]:
    """Plain REINFORCE (ZeroSearch's ``adv_estimator=reinforce``): the episode's score on every policy
    token; no baseline, no whitening, no discount. With the KL in the reward the score is the sum of the
    token rewards, like every outcome estimator here."""
    adv = _scores(inputs).unsqueeze(-1) * inputs.mask  # (B, T)
    return adv, adv


@register_estimator(AdvantageEstimator.REINFORCE_PLUS_PLUS_BASELINE)
def reinforce_pp_baseline_advantage(inputs: AdvantageInputs) -> tuple[Tensor, Tensor]:
    """score - group mean, broadcast to policy tokens, then whitened over the whole batch."""
    scores = _scores(inputs)
    mean, _ = _group_stats(scores, inputs.group_ids)
    adv = (scores - mean).unsqueeze(-1) * inputs.mask  # (B, T)
    adv = masked_whiten(adv, inputs.mask) * inputs.mask
    return adv, adv


def _discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """G_t = r_t + gamma G_next over policy tokens only (mask-0 positions carry G unchanged)."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])  # (B,)
    for t in reversed(range(rewards.shape[1])):
        step = rewards[:, t] + gamma * running
        running = torch.where(mask[:, t].bool(), step, running)
        returns[:, t] = running
    return returns


@register_estimator(AdvantageEstimator.REINFORCE_PLUS_PLUS, kl_in_reward=True)
def reinforce_pp_advantage(inputs: AdvantageInputs) -> tuple[Tensor, Tensor]:
    """Discounted token-level returns (KL penalty already in the rewards), whitened over the batch."""
    returns = _discounted_returns(inputs.token_rewards, inputs.mask, inputs.gamma)
    adv = masked_whiten(returns, inputs.mask) * inputs.mask
    return adv, returns * inputs.mask


@register_estimator(AdvantageEstimator.GAE, needs_values=True, kl_in_reward=True)
def gae_advantage(inputs: AdvantageInputs) -> tuple[Tensor, Tensor]:
    """GAE(gamma, lambda) over policy tokens; returns = advantages + values; advantages whitened.

    delta_t = r_t + gamma V_next - V_t and A_t = delta_t + gamma lambda A_next, where "next" is the
    next *policy* token (mask-0 positions are skipped) and V_next = 0 after the last one.
    """
    if inputs.values is None:
        raise ValueError("GAE needs critic values: the trainer must run the value head for this estimator")
    rewards, values, keep = inputs.token_rewards, inputs.values, inputs.mask.bool()
    next_value = torch.zeros_like(rewards[:, 0])  # (B,)
    last_adv = torch.zeros_like(rewards[:, 0])
    adv = torch.zeros_like(rewards)
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + inputs.gamma * next_value - values[:, t]
        step_adv = delta + inputs.gamma * inputs.lam * last_adv
        next_value = torch.where(keep[:, t], values[:, t], next_value)
        last_adv = torch.where(keep[:, t], step_adv, last_adv)
        adv[:, t] = last_adv
    returns = (adv + values) * inputs.mask
    adv = masked_whiten(adv, inputs.mask) * inputs.mask
    return adv, returns
