"""A real corpus aligned with its questions, from a HotpotQA distractor-setting file.

HotpotQA (distractor) ships each question with its 2 gold paragraphs and 8 retrieved distractors; pooled
and deduplicated by title they make a small Wikipedia corpus in which BM25 finds the answer for most
questions, so a simulator can be judged against a real engine that is right often enough to matter
(``../shared/data/aligned/hotpotqa_distractor_dev_100.json``; used by the simulator tests and benchmark).

    questions = hotpotqa_aligned("hotpot_dev_distractor.json", corpus_out="corpus.jsonl", max_words=60)
"""

from __future__ import annotations

import json
from pathlib import Path

from zerosearch.data.types import QAExample


def _cut(text: str, max_words: int | None) -> str:
    words = text.split()
    return text if max_words is None or len(words) <= max_words else " ".join(words[:max_words])


def hotpotqa_aligned(
    path: str | Path, *, corpus_out: str | Path, max_words: int | None = None, skip_yes_no: bool = True
) -> list[QAExample]:
    """Write the pooled paragraphs of a HotpotQA distractor file as a wiki-18 JSONL corpus (``id``,
    ``contents = '"Title"\\ntext'``, first ``max_words`` words kept) and return its questions.

    ``skip_yes_no`` leaves out comparison questions answered yes/no (no passage can hold that answer).
    """
    path = Path(path)
    rows = json.loads(path.read_text("utf-8"))
    if not isinstance(rows, list) or not rows or "context" not in rows[0]:
        raise ValueError(f"{path} is not a HotpotQA distractor file (a JSON list of objects with 'context')")
    paragraphs: dict[str, str] = {}
    questions = []
    for i, row in enumerate(rows):
        context = row["context"]
        titles, sentences = (context["title"], context["sentences"]) if isinstance(context, dict) else (
            [c[0] for c in context], [c[1] for c in context])
        for title, sents in zip(titles, sentences, strict=True):
            paragraphs.setdefault(title, _cut("".join(sents).strip(), max_words))
        answer = str(row["answer"]).strip()
        if skip_yes_no and answer.lower() in {"yes", "no"}:
            continue
        qid = str(row.get("_id") or row.get("id") or f"hotpot-{i}")
        questions.append(QAExample(qid, row["question"], (answer,), dataset="hotpotqa",
                                   metadata={"type": row.get("type"), "level": row.get("level")}))
    corpus_out = Path(corpus_out)
    corpus_out.parent.mkdir(parents=True, exist_ok=True)
    with corpus_out.open("w", encoding="utf-8") as fh:
        for n, (title, text) in enumerate(sorted(paragraphs.items())):
            fh.write(json.dumps({"id": str(n), "contents": f'"{title}"\n{text}'}) + "\n")
    return questions
