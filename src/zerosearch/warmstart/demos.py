"""Protocol demonstrations from real questions and a real engine: think, search, information, answer.

A base instruction model does not know the search protocol (SmolLM2-135M-Instruct never writes
``<answer>``), so RL on it has no signal. The warm-start shows it complete episodes whose every search
result is what the engine *really* returns for the query:

1. ``<think> … </think>`` then ``<search> question </search>``; the engine's top-k come back;
2. (multi-hop) when a supporting page named by the dataset is not among the results yet, a second
   ``<search> that page's title </search>`` (a sub-question), up to ``max_searches``;
3. ``<think> … </think>`` then ``<answer> gold </answer>``. When a returned passage holds the answer
   (``grounded``), the think quotes that passage's sentence (``answer_think: quote``) before naming the
   answer, so the demonstrations teach reading: copying the sentence is easy for a small model, and the
   answer is then a span of a short quote. Naming only the document (``answer_think: doc``) taught
   SmolLM2-135M to answer with the title it had just searched (held-out EM 0.0, docs/real-model.md).

The last allowed search says it is the last (``announce_last_search``): without that cue the warm-started
SmolLM2 wrote a third search where the rollout wanted an answer in 4 of 30 held-out episodes.

The searches of all demonstrations go to the engine round by round, one batched call per round, with the
same request fields the rollout sends (question and gold answers, which only a simulated engine reads).

    demos = build_demonstrations(split.train, engine, DemoConfig(top_k_documents=3, max_searches=2))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from zerosearch import protocol
from zerosearch.data.types import QAExample
from zerosearch.rewards import contains_answer
from zerosearch.search.base import Document, SearchEngine, SearchError, SearchRequest

FIRST_THINK = "I need to look this up before answering, so I will search for the question."
HOP_THINK = "The results do not cover {title} yet, so I will search for it."
LAST_SEARCH = " This is my last search; then I answer."
GROUNDED_THINK = "Doc {doc} of the last results says the answer: {answer}."
QUOTE_THINK = 'The document "{title}" says: "{sentence}" So the answer is {answer}.'
COMBINED_THINK = "Putting the documents together, the answer is {answer}."
QUOTE_MAX_CHARS = 240  # a longer sentence is cut to a window around the answer (a turn has 128 new tokens)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_TITLE = re.compile(r"^\(Title: (?P<title>.*?)\) ")


class DemoConfig(BaseModel):
    """How demonstrations search (match the rollout's ``top_k_documents`` and ``max_turns``)."""

    model_config = ConfigDict(extra="forbid")

    top_k_documents: int = Field(3, ge=1, description="documents per search (the rollout's top_k_documents)")
    max_searches: int = Field(
        2, ge=1, description="searches per demonstration: the question, then missing supporting pages "
        "(keep <= the rollout's max_turns so the agent may repeat what it was shown)")
    answer_think: Literal["quote", "doc"] = Field(
        "quote", description="the final think: quote the sentence holding the answer (teaches reading), or only "
        "name the document (SmolLM2-135M then answered with the title it had searched)")
    announce_last_search: bool = Field(
        True, description="the last allowed search's think says it is the last, so the next turn answers")


@dataclass
class Demonstration:
    """One demonstrated episode.

    ``turns``: the policy's texts, one per turn (each search turn ends in ``</search>``, the last in
    ``</answer>``). ``documents[i]``: the passages (``Document.as_passage``) search ``i`` returned; the
    rollout injects them as ``protocol.format_information(documents[i])`` after turn ``i``.
    ``grounded``: the gold answer appears in some search's passages.
    """

    example: QAExample
    queries: list[str] = field(default_factory=list)
    documents: list[list[str]] = field(default_factory=list)
    turns: list[str] = field(default_factory=list)
    grounded: bool = False

    def to_dict(self) -> dict:
        """JSON-able form for ``demos.jsonl`` (inspection)."""
        return {"id": self.example.id, "dataset": self.example.dataset, "question": self.example.question,
                "golden_answers": list(self.example.golden_answers), "queries": self.queries,
                "documents": self.documents, "turns": self.turns, "grounded": self.grounded}


def search_turn(think: str, query: str) -> str:
    """Policy text of a search turn."""
    return (f"{protocol.THINK_OPEN} {think} {protocol.THINK_CLOSE}\n"
            f"{protocol.SEARCH_OPEN} {query} {protocol.SEARCH_CLOSE}")


def answer_turn(think: str, answer: str) -> str:
    """Policy text of the final turn."""
    return (f"{protocol.THINK_OPEN} {think} {protocol.THINK_CLOSE}\n"
            f"{protocol.ANSWER_OPEN} {answer} {protocol.ANSWER_CLOSE}")


def answer_doc(passages: Sequence[str], answer: str) -> int | None:
    """1-based index of the first passage containing ``answer`` (normalised), else None.

    >>> answer_doc(["(Title: A) x", "(Title: B) Paris is big"], "paris")
    2
    """
    for i, passage in enumerate(passages, start=1):
        if contains_answer([passage], [answer]):
            return i
    return None


def answer_sentence(passage: str, answer: str) -> tuple[str, str] | None:
    """(title, sentence) of the first sentence of ``passage`` holding ``answer`` (normalised), else None;
    a passage whose title holds the answer gives its first sentence. A sentence over ``QUOTE_MAX_CHARS``
    is cut to a window around the answer.

    >>> answer_sentence("(Title: Paris) Paris is a city. It is the capital of France.", "france")
    ('Paris', 'It is the capital of France.')
    """
    match = _TITLE.match(passage)
    title, text = (match["title"], passage[match.end():]) if match else ("", passage)
    sentences = _SENTENCE_END.split(text)
    for sentence in sentences:
        if contains_answer([sentence], [answer]):
            return title, _window(sentence.strip(), answer)
    if contains_answer([title], [answer]):  # the page *is* the answer: quote how it begins
        return title, _window(sentences[0].strip(), answer)
    return None


def _window(sentence: str, answer: str) -> str:
    """``sentence``, or about ``QUOTE_MAX_CHARS`` of it around ``answer`` with ``…`` where cut."""
    if len(sentence) <= QUOTE_MAX_CHARS:
        return sentence
    at = max(sentence.lower().find(answer.lower()), 0)
    start = max(0, min(at - QUOTE_MAX_CHARS // 2, len(sentence) - QUOTE_MAX_CHARS))
    start = sentence.rfind(" ", 0, start) + 1 if start else 0
    end = sentence.find(" ", start + QUOTE_MAX_CHARS)
    end = len(sentence) if end < 0 else end
    return ("… " if start else "") + sentence[start:end] + (" …" if end < len(sentence) else "")


def final_think(demo: Demonstration, answer: str, style: Literal["quote", "doc"]) -> str:
    """The think before the answer: quote (or name) the passage holding it, the last search's first."""
    if style == "doc":
        doc = answer_doc(demo.documents[-1], answer)
        return GROUNDED_THINK.format(doc=doc, answer=answer) if doc else COMBINED_THINK.format(answer=answer)
    for docs in reversed(demo.documents):
        for passage in docs:
            found = answer_sentence(passage, answer)
            if found:
                return QUOTE_THINK.format(title=found[0], sentence=found[1], answer=answer)
    return COMBINED_THINK.format(answer=answer)


def next_query(demo: Demonstration, max_searches: int) -> str | None:
    """The next sub-question: a supporting title not yet among any results, or None to answer now."""
    if not demo.queries:
        return demo.example.question
    if len(demo.queries) >= max_searches:
        return None
    seen = " ".join(p for docs in demo.documents for p in docs)
    for title in demo.example.metadata.get("supporting_titles", []) or []:
        if f"(Title: {title})" not in seen and title not in demo.queries:
            return title
    return None


def _search_round(engine: SearchEngine, pending: list[tuple[Demonstration, str]], top_k: int) -> list[list[Document]]:
    requests = [SearchRequest(query=q, top_k=top_k, question=d.example.question,
                              golden_answers=d.example.golden_answers) for d, q in pending]
    results = engine.search(requests)
    if len(results) != len(requests):
        raise SearchError(f"engine {getattr(engine, 'name', engine)!r} returned {len(results)} results for "
                          f"{len(requests)} requests; an engine must answer every request in order")
    return [r.documents[:top_k] for r in results]


def build_demonstrations(
    examples: Sequence[QAExample], engine: SearchEngine, config: DemoConfig | None = None
) -> list[Demonstration]:
    """One demonstration per example, searching ``engine`` for real (one batched call per round)."""
    config = config or DemoConfig()
    if not examples:
        raise ValueError("no training questions to build demonstrations from; check the split")
    demos = [Demonstration(example=ex) for ex in examples]
    while True:
        pending = [(d, q) for d in demos if (q := next_query(d, config.max_searches)) is not None]
        if not pending:
            break
        for (demo, query), docs in zip(pending, _search_round(engine, pending, config.top_k_documents), strict=True):
            think = FIRST_THINK if not demo.queries else HOP_THINK.format(title=query)
            if config.announce_last_search and len(demo.queries) + 1 == config.max_searches:
                think += LAST_SEARCH
            demo.turns.append(search_turn(think, query))
            demo.queries.append(query)
            demo.documents.append([d.as_passage() for d in docs])
    for demo in demos:
        gold = demo.example.golden_answers[0]
        demo.grounded = any(answer_doc(docs, gold) is not None for docs in demo.documents)
        demo.turns.append(answer_turn(final_think(demo, gold, config.answer_think), gold))
    return demos
