"""Load QA datasets from any local file (or a known benchmark name) into :class:`QAExample` lists.

Field names are configuration (:class:`FieldMap`), not special cases, so one loader reads the formats the
QA literature ships:

- FlashRAG JSON Lines: ``{"id", "question", "golden_answers": [...]}`` (NQ, TriviaQA, PopQA, ...);
- plain JSON lists: ``[{"question", "answer": "..." or [...]}, ...]`` (e.g. HotpotQA dumps);
- CSV (a list-valued answer cell may be written as JSON or a Python list literal);
- Search-R1 / verl parquet (``reward_model.ground_truth.target``; nested columns may be real structs or
  Python-repr strings, which are read with :func:`ast.literal_eval`).

The format follows the file extension unless given. A dataset *spec* is ``path/to/file.jsonl``,
``name=path/to/file`` (name the dataset), or a benchmark name such as ``nq`` / ``hotpotqa:dev``
(:mod:`zerosearch.data.benchmarks`, loaded from the hub). Every error names the file, the line or row
and the field.

    examples = load_dataset("../shared/data/qa/nq_test_1000.jsonl", limit=20, seed=0)
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerosearch.data import benchmarks
from zerosearch.data.rows import DataError, FieldMap, row_to_example
from zerosearch.data.types import QAExample

FORMATS = ("jsonl", "json", "csv", "parquet")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
#: Formats whose cells may hold lists/dicts serialised as text (so we parse list-looking strings).
_TEXT_CELL_FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed ``--datasets`` entry: an optional display name and a file path or benchmark name."""

    name: str | None
    source: str


def parse_spec(spec: str) -> DatasetSpec:
    """Split ``name=source`` (or a bare source).

    >>> parse_spec("nq=data/nq.jsonl")
    DatasetSpec(name='nq', source='data/nq.jsonl')
    >>> parse_spec("data/nq.jsonl").name is None
    True
    """
    spec = spec.strip()
    if not spec:
        raise DataError("empty dataset spec: pass a file path, name=path, or a benchmark name")
    name, sep, source = spec.partition("=")
    if sep and name.strip() and "/" not in name and not Path(spec).exists():
        return DatasetSpec(name.strip(), source.strip())
    return DatasetSpec(None, spec)


def detect_format(path: Path, format: str | None = None) -> str:
    """The file format: ``format`` when given, else from the extension."""
    if format is not None:
        if format not in FORMATS:
            raise DataError(f"unknown format {format!r} for {path}; choose one of {', '.join(FORMATS)}")
        return format
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise DataError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; "
            f"rename it or pass format= one of {', '.join(FORMATS)}"
        )
    return found


# --- reading rows: each reader yields (where, row) with a 1-based location for error messages ---------
def _iter_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{where}: not valid JSON ({err.msg}); each line must be one JSON object") from err


def _iter_json(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}: not valid JSON at line {err.lineno} ({err.msg}); a .json file must hold one list of "
            "records (for one record per line, use the .jsonl extension or format='jsonl')"
        ) from err
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of records (or {{'data': [...]}}), got {type(data).__name__}")
    for i, row in enumerate(data, start=1):
        yield f"{path} item {i}", row


def _iter_csv(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for i, row in enumerate(reader, start=1):
            # The header is line 1, so data row i sits on line i + 1 (for single-line cells).
            yield f"{path}:{i + 1} (row {i})", row


def _iter_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise DataError(f"{path}: not a readable parquet file ({err})") from err
    for i, row in enumerate(table.to_pylist(), start=1):
        yield f"{path} row {i}", row


_READERS = {"jsonl": _iter_jsonl, "json": _iter_json, "csv": _iter_csv, "parquet": _iter_parquet}


def _row_dataset(row: Any, fields: FieldMap, default: str) -> str:
    if fields.dataset and isinstance(row, dict):
        value = row.get(fields.dataset)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return default


def load_qa_file(
    path: str | Path,
    *,
    format: str | None = None,
    fields: FieldMap | None = None,
    dataset: str | None = None,
) -> list[QAExample]:
    """Read every example of one local file.

    ``dataset`` names the examples; without it, a per-row ``fields.dataset`` value (Search-R1's
    ``data_source``) or else the file stem is used. Duplicate ids within a dataset are an error: the
    harness resumes by (method, dataset, id).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"dataset file {p} does not exist (or is not a file)")
    fmt = detect_format(p, format)
    fields = fields or FieldMap()
    parse_text = fmt in _TEXT_CELL_FORMATS
    examples: list[QAExample] = []
    seen: dict[tuple[str, str], str] = {}
    for index, (where, row) in enumerate(_READERS[fmt](p)):
        name = dataset or _row_dataset(row, fields, p.stem)
        example = row_to_example(row, where, index, fields, name, parse_text=parse_text)
        key = (example.dataset, example.id)
        if key in seen:
            raise DataError(
                f"{where}: id {example.id!r} of dataset {example.dataset!r} repeats {seen[key]}; "
                f"ids must be unique (set the id field to another column)"
            )
        seen[key] = where
        examples.append(example)
    if not examples:
        raise DataError(f"{p}: no examples found (the file is empty)")
    return examples


def sample_examples(examples: Sequence[QAExample], limit: int | None, seed: int | None = 0) -> list[QAExample]:
    """Keep ``limit`` examples: a seeded random subset in file order, or the first ``limit`` if seed is None."""
    if limit is None or limit >= len(examples):
        return list(examples)
    if limit < 1:
        raise DataError(f"limit must be >= 1 (or None for all), got {limit}")
    if seed is None:
        return list(examples[:limit])
    chosen = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in chosen]


def load_dataset(
    spec: str,
    *,
    limit: int | None = None,
    seed: int | None = 0,
    fields: FieldMap | None = None,
    format: str | None = None,
    split: str | None = None,
) -> list[QAExample]:
    """Load a dataset spec: a file path, ``name=path``, or a known benchmark name (``nq``, ``hotpotqa:dev``).

    ``limit`` keeps a seeded random subset (see :func:`sample_examples`). ``split`` applies to benchmarks.
    """
    parsed = parse_spec(spec)
    path = Path(parsed.source).expanduser()
    if path.exists():
        examples = load_qa_file(path, format=format, fields=fields, dataset=parsed.name)
    elif benchmarks.is_benchmark(parsed.source):
        examples = benchmarks.load_benchmark(parsed.source, split=split, fields=fields)
        if parsed.name:
            examples = [_renamed(e, parsed.name) for e in examples]
    else:
        raise DataError(
            f"dataset {parsed.source!r} is neither an existing file nor a known benchmark "
            f"({', '.join(benchmarks.BENCHMARKS)}); check the path"
        )
    return sample_examples(examples, limit, seed)


def _renamed(example: QAExample, name: str) -> QAExample:
    return QAExample(example.id, example.question, example.golden_answers, name, example.metadata)


def load_datasets(
    specs: Sequence[str], *, limit: int | None = None, seed: int | None = 0, fields: FieldMap | None = None
) -> dict[str, list[QAExample]]:
    """Load several specs and group the examples by dataset name (a merged parquet yields several)."""
    grouped: dict[str, list[QAExample]] = {}
    origin: dict[tuple[str, str], str] = {}
    for spec in specs:
        for example in load_dataset(spec, fields=fields):
            key = (example.dataset, example.id)
            if key in origin:
                raise DataError(
                    f"{spec}: id {example.id!r} of dataset {example.dataset!r} was already loaded from "
                    f"{origin[key]}; give the specs different names (name=path)"
                )
            origin[key] = spec
            grouped.setdefault(example.dataset, []).append(example)
    return {name: sample_examples(exs, limit, seed) for name, exs in grouped.items()}
