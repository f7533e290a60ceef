"""Held-out *queries* of the training questions: the split that decides whether simulated RL works.

During RL a simulator is only asked about the training questions, but in the policy's words, which
change as the policy learns. Judging it on held-out *questions* asks a 135M model for facts it never
saw; judging it on the queries it was trained on asks it to recite. The split in between: the training
questions' query forms that the SFT data never contained. A query and its perturbed variants
(``base_query``) go to the same side, so no perturbation of a held-out query leaks into training.

    train, heldout = split_queries(records, heldout_share=0.25, seed=0)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from zerosearch.simulator.collect import SearchRecord


def _draw(seed: int, question_id: str, base_query: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, question, base query): independent of record order."""
    digest = hashlib.sha256(f"{seed}\x00{question_id}\x00{base_query}".encode()).hexdigest()
    return int(digest[:15], 16) / 16**15


def dedupe(records: Sequence[SearchRecord]) -> list[SearchRecord]:
    """One record per (question, query), the first kept: two policies often send the same query."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in records:
        if (r.question_id, r.query) not in seen:
            seen.add((r.question_id, r.query))
            out.append(r)
    return out


def split_queries(
    records: Sequence[SearchRecord], heldout_share: float, seed: int
) -> tuple[list[SearchRecord], list[SearchRecord]]:
    """(train, held-out) records: each (question, base query) group falls on one side with probability
    ``heldout_share`` of being held out; every question keeps at least one group for training."""
    if not 0.0 < heldout_share < 1.0:
        raise ValueError(f"heldout_share must be in (0, 1), got {heldout_share}")
    records = dedupe(records)
    groups: dict[str, list[str]] = {}
    for r in records:
        bases = groups.setdefault(r.question_id, [])
        if r.base_query not in bases:
            bases.append(r.base_query)
    held: set[tuple[str, str]] = set()
    for qid, bases in groups.items():
        ranked = sorted(bases, key=lambda b: _draw(seed, qid, b))
        chosen = [b for b in ranked if _draw(seed, qid, b) < heldout_share]
        held.update((qid, b) for b in chosen[: len(bases) - 1])  # keep one group of each question in training
    train = [r for r in records if (r.question_id, r.base_query) not in held]
    heldout = [r for r in records if (r.question_id, r.base_query) in held]
    if not heldout:
        raise ValueError(f"no query was held out (share {heldout_share}, {len(records)} records): collect more "
                         "query forms per question or raise heldout_share")
    return train, heldout
