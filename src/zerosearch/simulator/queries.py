"""Query forms of a question: how a policy is likely to search for it, without running the policy.

A simulator is asked, during RL, about the *training* questions in whatever words the policy chooses.
Its SFT data should therefore cover the ways a policy phrases a search, not only the question verbatim.
Three scripted forms (beside the policy's own queries, which ``collect``'s ``llm`` policy records):

* ``question``: the question itself (what a warm-started policy writes most often);
* ``titles``: each supporting page title of a multi-hop question (``metadata["supporting_titles"]``,
  kept by :mod:`zerosearch.warmstart.aligned`): the entity of one hop, as a policy searches a missing hop;
* ``keywords``: the question's content words (stop words and punctuation dropped), a keyword query.

:func:`forms_policy` turns them into a ``collect`` policy, so forms and perturbations go through the same
stage (and its resume logic) as every other query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from zerosearch.data.types import QAExample
from zerosearch.simulator.collect import Policy
from zerosearch.simulator.perturb import STOP_WORDS

QueryForm = Literal["question", "titles", "keywords"]
FORMS: tuple[QueryForm, ...] = ("question", "titles", "keywords")
_TOKEN = re.compile(r"[\w'\-]+")


def keywords(question: str) -> str:
    """The question's content words in order, stop words and punctuation dropped.

    >>> keywords("Which magazine was started first, Arthur's Magazine or First for Women?")
    "magazine started first Arthur's Magazine First Women"
    """
    return " ".join(w for w in _TOKEN.findall(question) if w.lower() not in STOP_WORDS)


def query_forms(example: QAExample, forms: Sequence[QueryForm] = FORMS) -> list[str]:
    """The distinct queries of ``forms`` for one question, in the order of ``forms``.

    >>> titles = {"supporting_titles": ["Ed Wood (film)"]}
    >>> query_forms(QAExample("1", "Who directed Ed Wood?", ("Tim Burton",), metadata=titles))
    ['Who directed Ed Wood?', 'Ed Wood (film)', 'directed Ed Wood']
    """
    unknown = [f for f in forms if f not in FORMS]
    if unknown:
        raise ValueError(f"unknown query form(s) {unknown}; choose from {', '.join(FORMS)}")
    out: list[str] = []
    for form in forms:
        if form == "question":
            out.append(example.question)
        elif form == "titles":
            out += [str(t) for t in (example.metadata or {}).get("supporting_titles", [])]
        else:
            out.append(keywords(example.question))
    return [q for q in dict.fromkeys(q.strip() for q in out) if q]


def forms_policy(forms: Sequence[QueryForm] = FORMS) -> Policy:
    """A ``collect`` policy whose queries are :func:`query_forms` (no outcome: nothing answers)."""
    query_forms(QAExample("check", "check", ("x",)), forms)  # unknown forms fail here, not mid-collection
    return lambda batch: [[(q, None) for q in query_forms(example, forms)] for example in batch]
