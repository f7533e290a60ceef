"""Answer metrics and the RL reward: SQuAD-style normalisation, EM, cover-EM, token F1.

The paper's reward is answer F1 against the gold aliases. Metrics are plain functions so evaluation,
rewards and user code share them. Naming is honest: ``exact_match`` is SQuAD's exact equality (what
Search-R1 calls EM); ``cover_exact_match`` is the ZeroSearch reference's "EM" (the normalised gold is a
substring of the normalised prediction).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from zerosearch.protocol import ANSWER_CLOSE, ANSWER_OPEN

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)
_ANSWER = re.compile(re.escape(ANSWER_OPEN) + r"(.*?)" + re.escape(ANSWER_CLOSE), re.DOTALL)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lowercase, drop punctuation and articles, collapse whitespace.

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def contains_answer(passages: Sequence[str], answers: Sequence[str]) -> bool:
    """Whether a normalised gold answer occurs as whole words in one of the passages.

    >>> contains_answer(["(Title: Kovani Tesu) Kovani Tesu was born in Bavoru."], ["bavoru"])
    True
    >>> contains_answer(["Bavorus is a city of Kesa."], ["Bavoru"])
    False
    """
    targets = [f" {normalize_answer(a)} " for a in answers if normalize_answer(a)]
    texts = [f" {normalize_answer(p)} " for p in passages]
    return any(t in text for t in targets for text in texts)


def _as_list(golds: str | Sequence[str]) -> list[str]:
    return [golds] if isinstance(golds, str) else list(golds)


def exact_match(prediction: str, golds: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold alias.

    >>> exact_match("the Paris", ["Paris", "City of Light"])
    1.0
    """
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _as_list(golds)))


def cover_exact_match(prediction: str, golds: str | Sequence[str]) -> float:
    """1.0 if a normalised gold alias occurs inside the normalised prediction (the reference's "EM").

    >>> cover_exact_match("it is Paris, France", "paris")
    1.0
    """
    pred = normalize_answer(prediction)
    return float(any(normalize_answer(g) and normalize_answer(g) in pred for g in _as_list(golds)))


def _f1_single(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: str | Sequence[str]) -> float:
    """Token-level F1 (SQuAD v1.1), max over gold aliases.

    >>> round(f1_score("Paris France", "Paris"), 3)
    0.667
    """
    return max((_f1_single(prediction, g) for g in _as_list(golds)), default=0.0)


class Metric(str, Enum):
    """Answer metrics known by name (configs and the CLI use these names)."""

    EM = "em"
    COVER_EM = "cover_em"
    F1 = "f1"


METRICS: dict[Metric, Callable[[str, str | Sequence[str]], float]] = {
    Metric.EM: exact_match,
    Metric.COVER_EM: cover_exact_match,
    Metric.F1: f1_score,
}


def score_all(prediction: str | None, golds: str | Sequence[str]) -> dict[str, float]:
    """Every metric for one prediction; a missing prediction scores 0 on all."""
    if prediction is None:
        return {m.value: 0.0 for m in Metric}
    return {m.value: fn(prediction, golds) for m, fn in METRICS.items()}


def extract_answer(generated_text: str) -> str | None:
    """The final answer in text the policy generated, or None.

    Pass only the policy's own tokens (the rollout keeps them apart from injected information and the
    prompt), so neither the prompt's example answer nor a document can be scored. The last complete
    ``<answer>…</answer>`` wins.

    >>> extract_answer("<think>..</think><answer> Paris </answer>")
    'Paris'
    >>> extract_answer("no tags") is None
    True
    """
    found = _ANSWER.findall(generated_text)
    return found[-1].strip() if found else None


@dataclass(frozen=True)
class RewardConfig:
    """How an episode is scored.

    ``metric``: f1 (the paper), em or cover_em. ``format_score``: reward given to a well-formed episode
    (it produced an answer and every turn was a valid action) whose answer scores 0; 0 disables it
    (the paper uses no format reward).
    """

    metric: Metric = Metric.F1
    format_score: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric", Metric(self.metric))
        if not 0.0 <= self.format_score <= 1.0:
            raise ValueError(f"format_score must be in [0, 1], got {self.format_score}")


def compute_reward(
    generated_text: str,
    golds: str | Sequence[str],
    config: RewardConfig | None = None,
    all_turns_valid: bool = True,
) -> float:
    """Scalar reward of one episode from the policy-generated text only.

    >>> compute_reward("<answer>Paris</answer>", ["Paris"])
    1.0
    >>> compute_reward("no answer", ["Paris"])
    0.0
    """
    return answer_reward(extract_answer(generated_text), golds, config, all_turns_valid)


def answer_reward(
    answer: str | None,
    golds: str | Sequence[str],
    config: RewardConfig | None = None,
    all_turns_valid: bool = True,
) -> float:
    """Scalar reward of an already extracted answer (None: no answer, reward 0).

    The rollout passes the content of the answer turn its parser found, so an ``<answer>`` that spans
    turns is never scored.

    >>> answer_reward("Paris", ["Paris"]), answer_reward(None, ["Paris"])
    (1.0, 0.0)
    """
    config = config or RewardConfig()
    if answer is None:
        return 0.0
    score = METRICS[config.metric](answer, golds)
    if score == 0.0 and config.format_score > 0 and all_turns_valid:
        return config.format_score
    return score
