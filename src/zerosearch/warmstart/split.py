"""A seeded train/test split *by question*, so no held-out question (or a repeat of it) is trained on.

Questions are grouped by their normalised text before shuffling: a question that appears twice (two ids,
or two files) lands wholly on one side. The same function serves the warm-start, RL and evaluation, so
"held-out" means the same questions everywhere for a given seed.

    split = split_by_question(examples, test_fraction=0.3, seed=0)
    split.write("runs/sft/split")      # train.jsonl, test.jsonl: readable by `zerosearch eval --datasets`
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zerosearch.data.exporters import write_train_jsonl
from zerosearch.data.loaders import DataError
from zerosearch.data.types import QAExample
from zerosearch.rewards import normalize_answer


@dataclass(frozen=True)
class QuestionSplit:
    """The two sides of a split, each in the source order."""

    train: list[QAExample]
    test: list[QAExample]

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``train.jsonl`` and ``test.jsonl`` (FlashRAG JSONL) into ``directory``."""
        out = Path(directory)
        return {"train": write_train_jsonl(self.train, out / "train.jsonl"),
                "test": write_train_jsonl(self.test, out / "test.jsonl")}


def split_by_question(examples: Sequence[QAExample], test_fraction: float = 0.3, seed: int = 0) -> QuestionSplit:
    """Shuffle distinct questions with ``seed`` and hold out ``round(test_fraction * n)`` of them.

    Both sides must be non-empty: an empty side is an error naming the counts and what to change.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    groups: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(normalize_answer(ex.question), []).append(i)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    n_test = round(test_fraction * len(keys))
    if n_test == 0 or n_test == len(keys):
        raise DataError(
            f"splitting {len(keys)} distinct question(s) with test_fraction={test_fraction} leaves an empty "
            f"{'test' if n_test == 0 else 'train'} side; use more questions or another test_fraction"
        )
    test_rows = {i for key in keys[:n_test] for i in groups[key]}
    return QuestionSplit(train=[ex for i, ex in enumerate(examples) if i not in test_rows],
                         test=[ex for i, ex in enumerate(examples) if i in test_rows])
