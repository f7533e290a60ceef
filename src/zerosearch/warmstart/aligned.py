"""Questions that come with their own paragraphs (HotpotQA's layout), pooled into a searchable corpus.

HotpotQA ships each question with the paragraphs it was built from (two gold, eight distractors that
its authors retrieved with the question). Pooling every question's paragraphs, deduplicated by title,
gives a small wiki-18 style corpus that *holds the answers*, so a real engine (BM25) over it can find
the evidence, unlike a random sample of Wikipedia. The supporting titles are kept on each example
(``metadata["supporting_titles"]``) so demonstrations can search for a missing hop.

    aligned = load_aligned("../shared/data/aligned/hotpotqa_distractor_dev_100.json")
    write_corpus(aligned.paragraphs, "runs/sft/corpus.jsonl")       # then BM25SearchEngine(that file)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerosearch.data.loaders import DataError
from zerosearch.data.types import QAExample
from zerosearch.search.base import Document

REQUIRED_FIELDS = ("question", "answer", "context")


@dataclass(frozen=True)
class AlignedSet:
    """The questions (in file order) and the pooled paragraphs, one per distinct title."""

    examples: list[QAExample]
    paragraphs: list[Document]


def _paragraphs(row: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """``(title, text)`` pairs of one row's context, in either the Hugging Face or the original layout."""
    context = row["context"]
    if isinstance(context, dict):  # Hugging Face: {"title": [...], "sentences": [[...], ...]}
        titles, sentences = context.get("title"), context.get("sentences")
        if not isinstance(titles, list) or not isinstance(sentences, list) or len(titles) != len(sentences):
            raise DataError(f"{where}: context needs equal-length 'title' and 'sentences' lists")
        pairs = list(zip(titles, sentences, strict=True))
    elif isinstance(context, list):  # original release: [[title, [sentences]], ...]
        pairs = [(item[0], item[1]) for item in context]
    else:
        raise DataError(f"{where}: context must be a dict (title, sentences) or a list of [title, sentences]")
    return [(str(title).strip(), "".join(sents).strip()) for title, sents in pairs]


def _supporting_titles(row: dict[str, Any]) -> list[str]:
    facts = row.get("supporting_facts") or {}
    titles = facts.get("title", []) if isinstance(facts, dict) else [f[0] for f in facts]
    return list(dict.fromkeys(str(t).strip() for t in titles))  # distinct, in order


def _example(row: Any, index: int, dataset: str, where: str) -> QAExample:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object, got {type(row).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {missing}; expected HotpotQA's layout "
                        f"({', '.join(REQUIRED_FIELDS)})")
    answer = row["answer"]
    if not isinstance(answer, str) or not answer.strip():
        raise DataError(f"{where}: 'answer' must be a non-empty string")
    meta = {"type": row.get("type"), "level": row.get("level"), "supporting_titles": _supporting_titles(row)}
    return QAExample(str(row.get("id", index)), str(row["question"]).strip(), (answer.strip(),), dataset, meta)


def load_aligned(path: str | Path, dataset: str | None = None) -> AlignedSet:
    """Read a HotpotQA-layout JSON list into examples and their pooled, title-deduplicated paragraphs.

    A title seen twice keeps its first text (the distractor setting repeats popular pages verbatim).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"aligned QA file {p} does not exist; pass a HotpotQA-layout JSON list "
                        "(e.g. ../shared/data/aligned/hotpotqa_distractor_dev_100.json)")
    try:
        rows = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{p}: not valid JSON ({err})") from err
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{p}: expected a non-empty JSON list of questions")
    name = dataset or p.stem
    examples, by_title = [], {}
    for index, row in enumerate(rows):
        where = f"{p} item {index}"
        examples.append(_example(row, index, name, where))
        for title, text in _paragraphs(row, where):
            if title and text and title not in by_title:
                by_title[title] = Document(title=title, text=text, id=f"p{len(by_title)}")
    return AlignedSet(examples, list(by_title.values()))


def write_corpus(paragraphs: list[Document], path: str | Path) -> Path:
    """Write paragraphs as a wiki-18 JSONL corpus (``{"id", "contents": "\\"Title\\"\\ntext"}``).

    The file is rewritten only when its content changes, so a saved BM25 index beside it stays fresh.
    """
    if not paragraphs:
        raise DataError("no paragraphs to write into a corpus")
    out = Path(path)
    text = "".join(json.dumps({"id": d.id, "contents": d.contents}, ensure_ascii=False) + "\n" for d in paragraphs)
    if out.is_file() and out.read_text(encoding="utf-8") == text:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
