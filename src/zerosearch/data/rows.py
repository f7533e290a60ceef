"""One source row -> :class:`QAExample`: the field mapping shared by local files and hub benchmarks.

Lower layer of ``zerosearch.data``: :mod:`zerosearch.data.loaders` (files and dataset specs) and
:mod:`zerosearch.data.benchmarks` (hub benchmarks) both map rows with it, so neither imports the other's
internals (this removes the old loaders <-> benchmarks import circle).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

from zerosearch.data.types import QAExample


class DataError(ValueError):
    """A dataset file or spec is unusable; the message names the file, line/row and field, and the fix."""


@dataclass(frozen=True)
class FieldMap:
    """Which source fields hold the question, the gold answers, the id and the dataset name.

    ``answers`` lists candidate fields in priority order; the first one present in a row is used, and
    dotted names walk nested records (``reward_model.ground_truth.target``). ``id``: a missing id field
    falls back to the row's 0-based position (stable under sampling, so runs stay resumable).
    ``dataset``: a per-row dataset name (Search-R1's ``data_source``), used when the spec names none.
    """

    question: str = "question"
    answers: tuple[str, ...] = ("golden_answers", "answer", "answers", "reward_model.ground_truth.target")
    id: str = "id"
    dataset: str | None = "data_source"

    def __post_init__(self) -> None:
        answers = (self.answers,) if isinstance(self.answers, str) else tuple(self.answers)
        if not self.question or not answers or not all(answers):
            raise ValueError("FieldMap needs a question field and at least one answer field name")
        object.__setattr__(self, "answers", answers)



# --- mapping one row to a QAExample -------------------------------------------------------------------
def _maybe_literal(value: Any) -> Any:
    """Parse a list/dict serialised as text (JSON or Python repr); leave every other value alone."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] not in "[{" or text[-1] not in "]}":
        return value
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return value


def _lookup(row: dict[str, Any], dotted: str, parse_text: bool) -> tuple[bool, Any]:
    """Walk ``a.b.c`` through nested dicts; returns (found, value)."""
    value: Any = row
    for part in dotted.split("."):
        if parse_text:
            value = _maybe_literal(value)
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _as_answers(value: Any, where: str, field: str, parse_text: bool) -> tuple[str, ...]:
    if parse_text:
        value = _maybe_literal(value)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        answers: list[Any] = [value]
    elif isinstance(value, (list, tuple)):
        answers = list(value)
    else:
        answers = []
    cleaned = tuple(str(a).strip() for a in answers if isinstance(a, (str, int, float)) and str(a).strip())
    if not cleaned:
        raise DataError(
            f"{where}: field {field!r} holds no usable answer ({value!r}); "
            "expected a non-empty string or a list of strings"
        )
    return cleaned


def row_to_example(
    row: Any, where: str, index: int, fields: FieldMap, dataset: str, *, parse_text: bool = False
) -> QAExample:
    """Map one source row to a :class:`QAExample`; errors name ``where`` and the field."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a record (object), got {type(row).__name__}")
    question = row.get(fields.question)
    if not isinstance(question, str) or not question.strip():
        raise DataError(
            f"{where}: missing or empty question field {fields.question!r} "
            f"(fields present: {', '.join(map(str, row)) or 'none'}); set the question field name"
        )
    for name in fields.answers:
        found, value = _lookup(row, name, parse_text)
        if found:
            golds = _as_answers(value, where, name, parse_text)
            break
    else:
        raise DataError(
            f"{where}: none of the answer fields {list(fields.answers)} is present "
            f"(fields present: {', '.join(map(str, row))}); set the answer field name"
        )
    raw_id = row.get(fields.id)
    example_id = str(index) if raw_id is None or str(raw_id).strip() == "" else str(raw_id)
    used = {fields.question, fields.id, name.split(".")[0]}
    metadata = {k: v for k, v in row.items() if k not in used}
    return QAExample(id=example_id, question=question.strip(), golden_answers=golds, dataset=dataset, metadata=metadata)


