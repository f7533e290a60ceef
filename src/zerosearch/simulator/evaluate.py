"""Stage 5, ``evaluate``: how well does a simulator simulate? Measured on held-out questions.

Input: a ``collect`` output over held-out questions (the real engine's results for each exact and
perturbed query: the reference) and any number of engines (prompt-based, fine-tuned hinted/imitate).
Each engine is asked, per question, for useful results on every query and for noisy results on the exact
queries (requests carry the question and gold answers; an engine configured without the hint ignores
them). Figures per engine (:data:`METRICS`), the real engine as the reference row:

* ``useful_hit``: useful results for an exact query that hold a gold answer;
* ``noisy_leak``: noisy results for an exact query that still hold one (lower is better);
* ``format_valid``: results with exactly k parseable, numbered documents (top-k honoured);
* ``mean_words``: mean length of a document, in words;
* ``leniency``: useful-mode hit on perturbed queries, beside ``reference_leniency`` (the real engine on
  the same queries): a simulator should be no more lenient than the engine it imitates;
* ``hit_when_reference_misses``: useful-mode hits on queries (exact or perturbed) where the real engine
  missed — the early warning of ``MINIATURE-FINDINGS.md``;
* ``agreement``: queries where the simulator's hit equals the real engine's hit.

"Holds a gold answer" is ``label.contains_answer`` (normalised, whole words) throughout.

    zerosearch simulator evaluate --records runs/sim/heldout --simulator imitate=runs/sim/imitate --out report/
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from zerosearch.search.base import SearchEngine, SearchRequest, SearchResult
from zerosearch.simulator.collect import SearchRecord
from zerosearch.simulator.label import contains_answer

REFERENCE = "reference"
#: The two splits a simulator is judged on, and what each figure means.
SPLITS = {
    "heldout_queries": "held-out queries of the RL training questions: query forms (the policy's own among them) "
                       "that the SFT data never held. During RL the simulator is only asked about the training "
                       "questions, so this split decides whether simulated training works",
    "heldout_questions": "held-out questions: questions the simulator never saw. A small model cannot know their "
                         "facts; generalisation, for information",
}
METRICS = ("useful_hit", "noisy_leak", "useful_minus_leak", "format_valid", "mean_words", "leniency",
           "reference_leniency", "hit_when_reference_misses", "agreement", "seconds_per_query")


def _rate(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def _words(documents: Sequence[str]) -> list[int]:
    return [len(d.split()) for d in documents]


def _valid(result: SearchResult, k: int) -> bool:
    numbered = result.extra.get("numbered", True)
    recovered = result.recovered if result.recovered is not None else len(result.documents)
    return bool(numbered) and recovered >= k and len(result.documents) == k


def _request(record: SearchRecord, k: int, mode: str) -> SearchRequest:
    return SearchRequest(query=record.query, top_k=k, question=record.question,
                         golden_answers=tuple(record.golden_answers), mode=mode)  # type: ignore[arg-type]


def _search(engine: SearchEngine, requests: list[SearchRequest], batch_size: int) -> list[SearchResult]:
    out: list[SearchResult] = []
    for start in range(0, len(requests), batch_size):
        out += engine.search(requests[start : start + batch_size])
    return out


def measure_engine(
    engine: SearchEngine, records: Sequence[SearchRecord], top_k: int, *, batch_size: int = 32,
    leniency_kinds: Sequence[str] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(summary, per-query rows) of one simulated engine against the records' real results."""
    exact = [r for r in records if r.kind == "exact"]
    if not exact:
        raise ValueError("no exact-query records to evaluate on: collect held-out questions first")
    start = time.perf_counter()
    useful = _search(engine, [_request(r, top_k, "useful") for r in records], batch_size)
    noisy = _search(engine, [_request(r, top_k, "noisy") for r in exact], batch_size)
    seconds = time.perf_counter() - start
    noisy_by_query = {(r.question_id, r.query): res for r, res in zip(exact, noisy, strict=True)}
    rows = []
    for record, result in zip(records, useful, strict=True):
        docs = [d.as_passage() for d in result.documents]
        noisy_docs = noisy_by_query.get((record.question_id, record.query))
        rows.append({
            "question_id": record.question_id, "query": record.query, "kind": record.kind,
            "hit": contains_answer(docs, record.golden_answers),
            "reference_hit": contains_answer(record.documents, record.golden_answers),
            "noisy_leak": None if noisy_docs is None else contains_answer(
                [d.as_passage() for d in noisy_docs.documents], record.golden_answers),
            "valid": _valid(result, top_k) and (noisy_docs is None or _valid(noisy_docs, top_k)),
            "words": _words(docs), "documents": docs,
        })
    summary = summarise(rows, leniency_kinds)
    summary["seconds_per_query"] = seconds / (len(useful) + len(noisy))
    return summary, rows


def reference_rows(records: Sequence[SearchRecord], top_k: int) -> list[dict[str, Any]]:
    """The real engine's own rows (its recorded results), for the reference line of the table."""
    rows = []
    for r in records:
        hit = contains_answer(r.documents, r.golden_answers)
        rows.append({"question_id": r.question_id, "query": r.query, "kind": r.kind, "hit": hit,
                     "reference_hit": hit, "noisy_leak": None, "valid": len(r.documents) == top_k,
                     "words": _words(r.documents), "documents": r.documents})
    return rows


def summarise(rows: Sequence[Mapping[str, Any]], leniency_kinds: Sequence[str] | None = None) -> dict[str, float]:
    """The :data:`METRICS` of per-query rows (nan where a figure has no data)."""
    exact = [r for r in rows if r["kind"] == "exact"]
    perturbed = [r for r in rows if r["kind"] != "exact" and (leniency_kinds is None or r["kind"] in leniency_kinds)]
    misses = [r for r in rows if not r["reference_hit"]]
    leaks = [r["noisy_leak"] for r in exact if r["noisy_leak"] is not None]
    words = [w for r in rows for w in r["words"]]
    useful_hit, leak = _rate([r["hit"] for r in exact]), _rate(leaks)
    return {
        "queries": len(rows), "exact_queries": len(exact), "perturbed_queries": len(perturbed),
        "useful_hit": useful_hit, "noisy_leak": leak,
        "useful_minus_leak": useful_hit - leak if not math.isnan(leak) else float("nan"),
        "format_valid": _rate([r["valid"] for r in rows]),
        "mean_words": sum(words) / len(words) if words else float("nan"),
        "leniency": _rate([r["hit"] for r in perturbed]),
        "reference_leniency": _rate([r["reference_hit"] for r in perturbed]),
        "hit_when_reference_misses": _rate([r["hit"] for r in misses]),
        "agreement": _rate([r["hit"] == r["reference_hit"] for r in rows]),
    }


def evaluate_simulators(
    records: Sequence[SearchRecord], engines: Mapping[str, SearchEngine], top_k: int, *, batch_size: int = 32,
    leniency_kinds: Sequence[str] | None = None, log: Any = print,
) -> dict[str, Any]:
    """One table: the reference row plus one row per engine; per-query rows kept for inspection."""
    if REFERENCE in engines:
        raise ValueError(f"{REFERENCE!r} names the real engine's row; give the simulator another name")
    ref = reference_rows(records, top_k)
    table = {REFERENCE: summarise(ref, leniency_kinds)}
    per_query = {REFERENCE: ref}
    for name, engine in engines.items():
        table[name], per_query[name] = measure_engine(engine, records, top_k, batch_size=batch_size,
                                                      leniency_kinds=leniency_kinds)
        log(f"{name}: " + ", ".join(f"{k} {table[name][k]:.3f}" for k in ("useful_hit", "noisy_leak", "leniency")))
    return {"top_k": top_k, "leniency_kinds": list(leniency_kinds) if leniency_kinds else "all",
            "table": table, "per_query": per_query}


def evaluate_splits(
    splits: Mapping[str, Sequence[SearchRecord]], engines: Mapping[str, SearchEngine], top_k: int, **kwargs: Any
) -> dict[str, Any]:
    """:func:`evaluate_simulators` on each named split (:data:`SPLITS` names the standard two), each result
    carrying a ``description`` that says what its figures mean."""
    if not splits:
        raise ValueError("no split to evaluate on: pass held-out queries and/or held-out questions")
    out = {}
    for name, records in splits.items():
        out[name] = {"description": SPLITS.get(name, name),
                     **evaluate_simulators(records, engines, top_k, **kwargs)}
    return {"top_k": top_k, "splits": out}
