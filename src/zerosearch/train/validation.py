"""Periodic validation: greedy (or low-temperature) episodes on held-out questions with a chosen engine.

Usually the engine is a real one (BM25, a retrieval server) while training uses the simulator, which is
how ZeroSearch reports its numbers. One sample per question; metrics are keyed ``val/<name>``.

No engine is ever shown the gold answers here (``reveal_answers=False``): a simulated engine that gets
them writes them into its documents, and the validation score would measure the hint, not the policy.
A simulated validation engine therefore writes useful results (p = 0) from the query and question alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zerosearch.data.types import QAExample
from zerosearch.rewards import RewardConfig
from zerosearch.rollout import RolloutConfig, run_rollout, score_episodes
from zerosearch.train.metrics import episode_metrics


def validate(
    policy: Any,
    engine: Any,
    examples: Sequence[QAExample],
    rollout: RolloutConfig,
    reward: RewardConfig,
    *,
    temperature: float = 0.0,
    seed: int = 0,
) -> tuple[dict[str, float], list[Any]]:
    """Score one episode per held-out question; returns (``val/*`` metrics, episodes)."""
    if not examples:
        raise ValueError("validation needs held-out questions (data.val)")
    config = rollout.model_copy(update={"n_samples": 1, "temperature": temperature})
    episodes = run_rollout(policy, engine, list(examples), config, noise_probability=0.0, seed=seed,
                           reveal_answers=False)
    score_episodes(episodes, reward)
    return episode_metrics(episodes, prefix="val"), episodes
