"""Score a toy policy on held-out toy questions through the real rollout, with per-kind breakdowns.

Besides EM/F1 it reports what explains a toy policy's score: how often it searches, and how often its
first query is the person's name from the question (the copy rate; in the ``fact`` layout followed by the
fact's word). Greedy and sampled
scores tell different things (the miniature's finding): greedy shows the mode, sampled shows how much
probability the policy puts on the good behaviour, which is what RL moves first.

    scores = evaluate_toy_policy(generator, engine, examples, rollout_config, temperature=1.0, n_samples=2)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from zerosearch.data.types import QAExample
from zerosearch.rewards import RewardConfig

_NAME = re.compile(r"(?:Where was|does|country was|company that) (\S+ \S+?)(?: born| work)")


def load_toy_questions(path: str | Path, limit: int | None = None) -> list[QAExample]:
    """Questions from a toy ``train.jsonl`` / ``test.jsonl`` (keeps ``kind`` in metadata), first ``limit``."""
    rows = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
    rows = rows[:limit] if limit else rows
    return [
        QAExample(r["id"], r["question"], tuple(r["golden_answers"]), "toyworld", {"kind": r["kind"]})
        for r in rows
    ]


def asked_name(question: str) -> str | None:
    """The person's name in a toy question, or None for other text."""
    found = _NAME.search(question)
    return found.group(1) if found else None


def copied_name(query: str, question: str) -> bool:
    """Whether ``query`` is the question's person: the name alone, or (``fact`` layout) followed by the fact's
    word.

    >>> question = "Where was Kovani Tesu born?"
    >>> copied_name("Kovani Tesu born", question), copied_name("Kovani Tesu", question), copied_name("Kovani", question)
    (True, True, False)
    """
    name = asked_name(question)
    return name is not None and (query == name or (query.startswith(name + " ") and len(query.split()) == 3))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize(episodes: list[Any]) -> dict[str, float]:
    """EM, F1, search and copy rates over scored episodes, overall and per question kind."""
    out: dict[str, float] = {
        "em": _mean([e.metrics["em"] for e in episodes]),
        "f1": _mean([e.metrics["f1"] for e in episodes]),
        "searched": _mean([float(bool(e.queries)) for e in episodes]),
        "searches": _mean([float(len(e.queries)) for e in episodes]),
        "copy_rate": _mean([float(bool(e.queries) and copied_name(e.queries[0], e.example.question))
                            for e in episodes]),
        "answered": _mean([float(e.answer is not None) for e in episodes]),
        "episodes": float(len(episodes)),
    }
    kinds = sorted({e.example.metadata.get("kind", "?") for e in episodes})
    for kind in kinds:
        same = [e for e in episodes if e.example.metadata.get("kind", "?") == kind]
        out[f"em/{kind}"] = _mean([e.metrics["em"] for e in same])
    return out


def evaluate_toy_policy(
    policy: Any,
    engine: Any,
    examples: list[QAExample],
    rollout: Any,
    *,
    temperature: float,
    n_samples: int = 1,
    seed: int = 0,
) -> dict[str, float]:
    """Run ``n_samples`` episodes per question at ``temperature`` (0 = greedy) and summarise them."""
    from zerosearch.rollout import run_rollout, score_episodes

    config = rollout.model_copy(update={"temperature": temperature, "n_samples": n_samples})
    episodes = run_rollout(policy, engine, examples, config, seed=seed)
    score_episodes(episodes, RewardConfig())
    return summarize(episodes)
