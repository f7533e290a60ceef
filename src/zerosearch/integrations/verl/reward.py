"""verl's custom reward function for ZeroSearch episodes: answer F1 (or EM / cover-EM) on the policy's text.

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info, **reward_kwargs)`` with
``solution_str`` = the decoded response, which also holds the injected ``<information>`` blocks and
invalid-action messages (the latter even spells out ``<answer> and </answer>``). The answer must come from
what the policy wrote, so the score reads, in order of preference:

1. ``extra_info["zerosearch_answer"]``: the content of the answer turn the agent loop's turn parser found
   (None: the episode never answered), as the single-machine rollout scores it;
2. ``extra_info["zerosearch_generated_text"]``: the policy-generated text the agent loop records;
3. otherwise ``solution_str`` with every injected span removed (:func:`policy_text`).

(1) and (2) reach ``extra_info`` through verl's ``tool_extra_fields`` when the reward loop runs inside the
rollout; otherwise (3) applies.

Launch config::

    reward:
      custom_reward_function:
        path: pkg://zerosearch.integrations.verl.reward
        name: compute_score
        reward_kwargs: {metric: f1}      # or em, cover_em; format_score: 0.0 (paper: no format reward)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from zerosearch.protocol import INFORMATION_CLOSE, INFORMATION_OPEN, INVALID_ACTION_MESSAGE
from zerosearch.rewards import METRICS, Metric, RewardConfig, extract_answer

_INFORMATION_BLOCK = re.compile(re.escape(INFORMATION_OPEN) + r".*?(?:" + re.escape(INFORMATION_CLOSE) + r"|\Z)",
                                re.DOTALL)
GENERATED_TEXT_KEY = "zerosearch_generated_text"
ANSWER_KEY = "zerosearch_answer"


def policy_text(solution_str: str) -> str:
    """The decoded response without injected text: information blocks (a block cut by the length budget runs
    to the end) and invalid-action messages are removed."""
    without_info = _INFORMATION_BLOCK.sub("", solution_str)
    return without_info.replace(INVALID_ACTION_MESSAGE.strip(), "")


def gold_answers(ground_truth: Any) -> list[str]:
    """The gold aliases from verl's ``reward_model.ground_truth``: ``{"target": [...]}``, a list, or one string."""
    if isinstance(ground_truth, Mapping):
        if "target" not in ground_truth:
            raise ValueError(f"ground_truth has no 'target' key: {ground_truth!r:.200}; export data with "
                             "`zerosearch data export-verl` (reward_model.ground_truth.target)")
        ground_truth = ground_truth["target"]
    if isinstance(ground_truth, str):
        return [ground_truth]
    if isinstance(ground_truth, Sequence) or hasattr(ground_truth, "tolist"):
        golds = [str(g) for g in (ground_truth.tolist() if hasattr(ground_truth, "tolist") else ground_truth)]
        if golds:
            return golds
    raise ValueError(f"ground_truth must hold at least one gold answer, got {ground_truth!r:.200}")


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    metric: str = "f1",
    format_score: float = 0.0,
    **_: Any,
) -> dict[str, float]:
    """Score one episode; returns ``{"score", "f1", "em", "cover_em", "answered"}`` (verl logs every key).

    ``metric`` picks the reward (f1: the paper; em; cover_em); the other metrics are reported alongside.
    ``data_source`` is accepted for verl's signature; the rule is the same for every QA source.

    >>> compute_score("nq", "<answer> Paris </answer>", {"target": ["Paris"]})["score"]
    1.0
    """
    del data_source
    config = RewardConfig(metric=Metric(metric), format_score=format_score)
    extra_info = extra_info or {}
    golds = gold_answers(ground_truth)
    if ANSWER_KEY in extra_info:
        answer = extra_info[ANSWER_KEY]
        answer = answer if isinstance(answer, str) else None
    else:
        text = extra_info.get(GENERATED_TEXT_KEY)
        answer = extract_answer(text if isinstance(text, str) else policy_text(solution_str))
    scores = {m.value: (0.0 if answer is None else fn(answer, golds)) for m, fn in METRICS.items()}
    score = scores[config.metric.value]
    if answer is not None and score == 0.0 and config.format_score > 0:
        score = config.format_score  # an answered episode that scored 0 (RewardConfig's format reward)
    return {"score": score, **scores, "answered": float(answer is not None)}
