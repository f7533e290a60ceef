"""Plain REINFORCE for verl 0.9.1, registered as ``algorithm.adv_estimator=reinforce``.

Why: the ZeroSearch reference trains with REINFORCE (``train_reinforce.sh``: ``algorithm.adv_estimator=reinforce``
on its verl fork; ``compute_reinforce_outcome_advantage`` in that fork's ``core_algos.py``). verl 0.9.1 has
REINFORCE++ (batch-whitened returns) and REINFORCE++-baseline, but no plain REINFORCE, so
``configs/verl/zs_algo/reinforce.yaml`` names this estimator, registered through verl's own
``register_adv_est``. REINFORCE++ stays its own choice (``zs_algo=reinforce_pp``).

The estimator: each response's reward is its summed token-level reward (the F1 of the answer, plus any KL
penalty verl put in the reward), broadcast over the response's policy tokens; no baseline, no whitening,
no discount. ``returns`` equal the advantages. Tokens with ``response_mask`` 0 (the ``<information>`` blocks
the agent loop injected) get 0, as the reference's state masking left them out of the loss.

verl looks estimators up by name in the process that runs the trainer (its Ray ``TaskRunner``), so this
module must be imported there. ``zs_algo=reinforce`` does it through verl's own hook: it sets
``VERL_USE_EXTERNAL_MODULES=zerosearch.integrations.verl.estimators`` in the Ray runtime environment, and
``import verl`` in every job process imports the modules that variable names.
"""

from __future__ import annotations

from typing import Any

import torch
from verl.trainer.ppo.core_algos import register_adv_est

#: The name the reference's scripts use, and ours.
REINFORCE = "reinforce"


@register_adv_est(REINFORCE)
def compute_reinforce_outcome_advantage(
    token_level_rewards: torch.Tensor, response_mask: torch.Tensor, config: Any = None, **kwargs: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE advantages: the episode's total reward on every policy token.

    Args:
        token_level_rewards: ``(B, T)`` rewards per response token (verl puts the score on the last one).
        response_mask: ``(B, T)`` 1 for policy tokens, 0 for padding and injected tool tokens.
        config: verl's ``AlgoConfig`` (unused: plain REINFORCE has no settings); other kwargs (``index``,
            ``reward_baselines``) are accepted and ignored, as verl passes them to every registered estimator.

    Returns:
        ``(advantages, returns)``, both ``(B, T)`` and equal.

    >>> rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.5, 0.0]])
    >>> mask = torch.tensor([[1, 0, 1], [1, 1, 0]])
    >>> compute_reinforce_outcome_advantage(rewards, mask)[0]
    tensor([[1.0000, 0.0000, 1.0000],
            [0.5000, 0.5000, 0.0000]])
    """
    scores = token_level_rewards.sum(dim=-1)  # (B,)
    advantages = scores.unsqueeze(-1) * response_mask  # (B, T)
    return advantages, advantages.clone()
