"""Stage 2, ``label``: is each (query, documents) pair useful or noisy? Decided by named rules.

* ``outcome`` — the paper's v1: documents from a trajectory that reached a correct answer are useful,
  the others noisy (needs an answering policy: ``collect --policy llm``; perturbed queries stay unlabelled);
* ``judge`` — the paper's v2: an LLM (any backend) is asked whether the documents hold enough to answer
  the question; a reply that starts with neither yes nor no leaves the pair unlabelled (counted);
* ``contains-answer`` — a normalised gold answer occurs, as whole words, in the documents.

Rules are functions in :data:`RULES` with one signature (records in, one label or None per record out).
:func:`label_report` gives each rule's class balance and the agreement (share and Cohen's kappa) of every
pair of rules on the records both decided.

    zerosearch simulator label --records runs/sim/collect --rule contains-answer --rule judge --out runs/sim/label
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

from zerosearch.rewards import contains_answer, normalize_answer
from zerosearch.simulator.collect import SearchRecord, write_records

Label = Literal["useful", "noisy"]
Rule = Callable[[Sequence[SearchRecord]], list[Label | None]]
REPORT_NAME = "label_report.json"
JUDGE_PROMPT = (
    "Question: {question}\n\nSearch results:\n{documents}\n\nDo these search results contain enough information "
    "to answer the question? Reply with yes or no.\nReply:"
)


def _as_label(flag: bool) -> Label:
    return "useful" if flag else "noisy"


def rule_contains_answer(records: Sequence[SearchRecord]) -> list[Label | None]:
    """``contains-answer``: useful when a gold answer is in the documents."""
    return [_as_label(contains_answer(r.documents, r.golden_answers)) for r in records]


def rule_outcome(records: Sequence[SearchRecord]) -> list[Label | None]:
    """``outcome``: useful when the trajectory that sent the query was answered correctly."""
    exact = [r for r in records if r.kind == "exact"]
    if exact and all(r.outcome is None for r in exact):
        raise ValueError("rule 'outcome' needs trajectories with an answer (collect with --policy llm); these "
                         "records come from a scripted policy: use contains-answer or judge")
    return [None if r.outcome is None else _as_label(r.outcome) for r in records]


def parse_judgement(text: str) -> Label | None:
    """``yes...`` -> useful, ``no...`` -> noisy, anything else None.

    >>> parse_judgement(" Yes, the second one."), parse_judgement("No."), parse_judgement("maybe")
    ('useful', 'noisy', None)
    """
    word = normalize_answer(text).split()[:1]
    return {"yes": "useful", "no": "noisy"}.get(word[0] if word else "")


def judge_rule(generator: Any, max_new_tokens: int = 4) -> Rule:
    """``judge``: ask ``generator`` (a ``TextGenerator``) about each record, greedily, in one batch."""
    from zerosearch.llm.base import SamplingParams

    def rule(records: Sequence[SearchRecord]) -> list[Label | None]:
        prompts = [_judge_prompt(r, generator) for r in records]
        replies = generator.generate(prompts, SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0))
        return [parse_judgement(c.text) for c in replies]

    return rule


def _judge_prompt(record: SearchRecord, generator: Any) -> str:
    docs = "\n".join(f"Doc {i}: {d}" for i, d in enumerate(record.documents, start=1)) or "(no results)"
    text = JUDGE_PROMPT.format(question=record.question, documents=docs)
    tokenizer = getattr(generator, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)
    return text


RULES: dict[str, Rule] = {"contains-answer": rule_contains_answer, "outcome": rule_outcome}
RULE_NAMES = ("outcome", "judge", "contains-answer")


def label_records(
    records: Sequence[SearchRecord], rules: Sequence[str], *, judge: Any = None
) -> list[SearchRecord]:
    """Copies of ``records`` with ``labels[rule]`` set for each named rule (``judge`` needs a generator)."""
    unknown = [r for r in rules if r not in RULE_NAMES]
    if unknown:
        raise ValueError(f"unknown label rule(s) {unknown}; choose from {', '.join(RULE_NAMES)}")
    if not records:
        raise ValueError("no records to label: the collection is empty")
    if "judge" in rules and judge is None:
        raise ValueError("rule 'judge' needs a judge model (--judge-model NAME)")
    out = [r.model_copy(deep=True) for r in records]
    for name in rules:
        rule = judge_rule(judge) if name == "judge" else RULES[name]
        for record, label in zip(out, rule(out), strict=True):
            record.labels[name] = label
    return out


def _kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two label lists (nan when chance agreement is 1)."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    expected = sum((a.count(c) / n) * (b.count(c) / n) for c in ("useful", "noisy"))
    return float("nan") if expected == 1 else (observed - expected) / (1 - expected)


def label_report(records: Sequence[SearchRecord]) -> dict[str, Any]:
    """Class balance per rule and pairwise agreement (share, Cohen's kappa, records both decided)."""
    rules = sorted({name for r in records for name in r.labels})
    balance = {}
    for name in rules:
        labels = [r.labels.get(name) for r in records]
        balance[name] = {"useful": labels.count("useful"), "noisy": labels.count("noisy"),
                         "undecided": sum(x is None for x in labels)}
    agreement = {}
    for a, b in combinations(rules, 2):
        both = [(r.labels[a], r.labels[b]) for r in records if r.labels.get(a) and r.labels.get(b)]
        if both:
            xs, ys = [x for x, _ in both], [y for _, y in both]
            share = sum(x == y for x, y in both) / len(both)
            agreement[f"{a} vs {b}"] = {"records": len(both), "share": share, "kappa": _kappa(xs, ys)}
    return {"records": len(records), "balance": balance, "agreement": agreement}


def label_collection(
    records: Sequence[SearchRecord], rules: Sequence[str], out_dir: str | Path, *, judge: Any = None
) -> dict[str, Any]:
    """Label, write ``out_dir/records.jsonl`` and ``label_report.json``; returns the report."""
    labelled = label_records(records, rules, judge=judge)
    out = Path(out_dir)
    write_records(labelled, out / "records.jsonl")
    report = label_report(labelled)
    (out / REPORT_NAME).write_text(json.dumps(report, indent=1), "utf-8")
    return report
