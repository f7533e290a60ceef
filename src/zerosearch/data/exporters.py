"""Write QA examples as training data: our trainer's JSON Lines, and verl / Search-R1 parquet.

- :func:`write_train_jsonl`: one ``{"id", "question", "golden_answers", "data_source"}`` object per line;
  :func:`zerosearch.data.loaders.load_dataset` reads it back unchanged (the round trip is tested).
- :func:`write_verl_parquet`: the row shape verl's RL dataset and Search-R1's reward manager read —
  ``data_source``, ``prompt`` (a chat list with one user message holding the rendered instruction,
  left for verl to wrap in the chat template), ``ability``, ``reward_model`` ``{"style": "rule",
  "ground_truth": {"target": [...]}}`` and ``extra_info`` ``{"split", "index"}`` — plus ``id``,
  ``question`` and ``golden_answers`` for inspection. Nested columns are real parquet structs.

    zerosearch data export-verl ../shared/data/qa/nq_test_1000.jsonl out/nq_train.parquet --split train
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from zerosearch.data.types import QAExample
from zerosearch.protocol import load_template

DEFAULT_ABILITY = "fact-reasoning"


def write_train_jsonl(examples: Sequence[QAExample], path: str | Path) -> Path:
    """Write examples for ``zerosearch train`` (FlashRAG-style JSONL plus ``data_source``).

    The file is written beside its target and then renamed over it, so a process reading it meanwhile (the
    RL benchmark's simulator stage reads the split while the warm-start rewrites it) sees the old or the new
    file, never half of one.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for ex in examples:
            row = {"id": ex.id, "question": ex.question, "golden_answers": list(ex.golden_answers)}
            row["data_source"] = ex.dataset
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return out


def verl_question(question: str, add_question_mark: bool) -> str:
    """The question as placed in the prompt: stripped, optionally ending in "?" (Search-R1's data prep does)."""
    question = question.strip()
    if add_question_mark and not question.endswith("?"):
        question += "?"
    return question


def verl_rows(
    examples: Sequence[QAExample],
    *,
    split: str,
    template: str | None = None,
    ability: str = DEFAULT_ABILITY,
    add_question_mark: bool = False,
) -> list[dict]:
    """Build one verl row per example (see the module docstring for the shape)."""
    template = template if template is not None else load_template()
    rows = []
    for index, ex in enumerate(examples):
        question = verl_question(ex.question, add_question_mark)
        rows.append(
            {
                "id": ex.id,
                "question": question,
                "golden_answers": list(ex.golden_answers),
                "data_source": ex.dataset,
                # verl applies the chat template itself, so the message holds the raw instruction.
                "prompt": [{"content": template.replace("{question}", question) + "\n", "role": "user"}],
                "ability": ability,
                # Key order matches Search-R1's files, so the parquet schemas are identical.
                "reward_model": {"ground_truth": {"target": list(ex.golden_answers)}, "style": "rule"},
                "extra_info": {"index": index, "split": split},
            }
        )
    return rows


def write_verl_parquet(
    examples: Sequence[QAExample],
    path: str | Path,
    *,
    split: str = "train",
    template: str | None = None,
    ability: str = DEFAULT_ABILITY,
    add_question_mark: bool = False,
) -> Path:
    """Write a verl/Search-R1 parquet file; returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not examples:
        raise ValueError("no examples to export; check the dataset spec and --limit")
    rows = verl_rows(examples, split=split, template=template, ability=ability, add_question_mark=add_question_mark)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out
