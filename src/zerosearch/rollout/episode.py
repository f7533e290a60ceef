"""The episode record: one multi-turn trajectory in token ids, plus what happened in it.

The trainer consumes ``prompt_ids``, ``response_ids``, ``response_mask`` and ``sampling_logprobs``; the
rest (turns, queries, documents, noise draws, answer, reward) is for metrics and for reading episodes
back from JSONL (``write_episodes_jsonl``). Layout of ``response_ids`` for two turns::

    [gen turn 0][injected 0][gen turn 1]          mask: 1…1 0…0 1…1
     ^start    ^end=injected_start    ^injected_end = next turn's start
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zerosearch.data.types import QAExample
from zerosearch.protocol import ActionKind
from zerosearch.rewards import RewardConfig, compute_reward, score_all


@dataclass
class Turn:
    """One policy turn and what was injected after it.

    ``start``/``end``: the generated ids' span in ``Episode.response_ids``; ``injected_start``/
    ``injected_end``: the span injected after it (an ``<information>`` block or the invalid-action
    message; empty when nothing was injected). ``kind``: search, answer or invalid; ``content``: the
    query or answer text. ``text``: the decoded generated ids (policy text only); ``injected_text``: the
    decoded injected ids. ``searched``: a search turn whose query was sent to the engine (the final
    turn's search never is). ``finish_reason``: the backend's "stop" or "length".
    """

    kind: str
    content: str
    text: str
    start: int
    end: int
    injected_start: int
    injected_end: int
    injected_text: str = ""
    searched: bool = False
    finish_reason: str = "stop"

    @property
    def valid(self) -> bool:
        """False for a turn that neither searched nor answered."""
        return self.kind != ActionKind.INVALID.value


@dataclass
class Episode:
    """One sampled trajectory of the policy for one question.

    Fields:
        example: the question and gold answers.
        group / sample: index of the example in the batch and of the sample within its group; episodes
            are ordered group-major (index ``group * n_samples + sample``).
        prompt_ids: the tokenized prompt (shared by a group).
        response_ids: everything after the prompt, generated and injected, in order.
        response_mask: 1 where the policy generated the token, 0 where it was injected.
        sampling_logprobs: log-probability of each generated token under the sampling distribution;
            0.0 where the mask is 0.
        turns: per-turn boundaries and actions (see :class:`Turn`).
        queries / documents / noise_modes: one entry per executed search: the query, the passages
            (``Document.as_passage()``) and the simulator's useful/noisy draw (None for real engines).
        answer: the last ``<answer>`` in the policy's own text (never in the prompt or injected text).
        generated_text: the policy's text only (concatenated turn texts).
        truncated: a length limit (per-turn ``max_new_tokens`` without a stop, or the response budget)
            cut the episode.
        stop_reason: why the episode ended: answer, max_turns, max_new_tokens, max_response_tokens or (with
            ``RolloutConfig.eos_ends_episode``) eos; the rules are ``zerosearch.rollout.rules.decide_turn``.
        noise_probability: the simulator's noise probability used for this episode's searches.
        reward / metrics: set by :func:`score_episodes`.
        prompt_text: the rendered prompt, for inspection.
    """

    example: QAExample
    group: int
    sample: int
    prompt_ids: list[int]
    response_ids: list[int] = field(default_factory=list)
    response_mask: list[int] = field(default_factory=list)
    sampling_logprobs: list[float] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    documents: list[list[str]] = field(default_factory=list)
    noise_modes: list[str | None] = field(default_factory=list)
    answer: str | None = None
    generated_text: str = ""
    truncated: bool = False
    stop_reason: str | None = None
    noise_probability: float | None = None
    reward: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    prompt_text: str = ""

    @property
    def num_searches(self) -> int:
        """Searches the engine answered in this episode."""
        return len(self.queries)

    @property
    def all_turns_valid(self) -> bool:
        """Every turn searched or answered (the condition for a format reward)."""
        return all(t.valid for t in self.turns)

    @property
    def num_generated_tokens(self) -> int:
        """Tokens the policy generated (mask 1)."""
        return sum(self.response_mask)

    @property
    def response_text(self) -> str:
        """Generated and injected text in order (what the policy saw after the prompt)."""
        return "".join(t.text + t.injected_text for t in self.turns)

    def to_record(self, *, include_ids: bool = False) -> dict[str, Any]:
        """A JSON-able dict for inspection; ids, mask and logprobs only with ``include_ids``."""
        record: dict[str, Any] = {
            "id": self.example.id,
            "dataset": self.example.dataset,
            "question": self.example.question,
            "golden_answers": list(self.example.golden_answers),
            "group": self.group,
            "sample": self.sample,
            "prompt": self.prompt_text,
            "turns": [asdict(t) for t in self.turns],
            "queries": self.queries,
            "documents": self.documents,
            "noise_modes": self.noise_modes,
            "noise_probability": self.noise_probability,
            "answer": self.answer,
            "generated_text": self.generated_text,
            "reward": self.reward,
            "metrics": self.metrics,
            "truncated": self.truncated,
            "stop_reason": self.stop_reason,
            "prompt_tokens": len(self.prompt_ids),
            "response_tokens": len(self.response_ids),
            "generated_tokens": self.num_generated_tokens,
        }
        if include_ids:
            record.update(prompt_ids=self.prompt_ids, response_ids=self.response_ids,
                          response_mask=self.response_mask, sampling_logprobs=self.sampling_logprobs)
        return record


def score_episodes(episodes: Iterable[Episode], reward_config: RewardConfig | None = None) -> list[Episode]:
    """Set ``reward`` (from the policy's own text) and ``metrics`` (EM, cover-EM, F1) on each episode."""
    config = reward_config or RewardConfig()
    scored = list(episodes)
    for ep in scored:
        golds = ep.example.golden_answers
        ep.reward = compute_reward(ep.generated_text, golds, config, ep.all_turns_valid)
        ep.metrics = score_all(ep.answer, golds)
    return scored


def write_episodes_jsonl(
    episodes: Iterable[Episode], path: str | Path, *, include_ids: bool = False, **extra: Any
) -> Path:
    """Append one JSON object per episode to ``path`` (a resumed run keeps earlier lines).

    ``extra`` (e.g. ``step=12``) is written into every line; it may not reuse a record key.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for ep in episodes:
        record = ep.to_record(include_ids=include_ids)
        clash = sorted(set(extra) & set(record))
        if clash:
            raise ValueError(f"extra fields {clash} would overwrite episode fields; rename them")
        lines.append(json.dumps({**extra, **record}, ensure_ascii=False))
    with path.open("a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    return path
