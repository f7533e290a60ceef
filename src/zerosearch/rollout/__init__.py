"""Multi-turn agent rollout: the policy searches and answers; episodes come back as token ids with masks.

    from zerosearch.rollout import RolloutConfig, run_rollout, score_episodes, write_episodes_jsonl

    episodes = run_rollout(policy, engine, examples, RolloutConfig(n_samples=5), noise_probability=p, seed=0)
    score_episodes(episodes, RewardConfig())
    write_episodes_jsonl(episodes, "runs/x/episodes.jsonl", step=12)

``config`` holds the settings, ``episode`` the record (and scoring / JSONL), ``machine`` the state machine,
``rules`` the pure turn rules (what a turn means, information blocks, injected ids) that the machine and
the verl agent loop share.
"""

from zerosearch.rollout.config import RolloutConfig
from zerosearch.rollout.episode import Episode, Turn, score_episodes, write_episodes_jsonl
from zerosearch.rollout.machine import RowState, run_rollout

__all__ = ["Episode", "RolloutConfig", "RowState", "Turn", "run_rollout", "score_episodes", "write_episodes_jsonl"]
