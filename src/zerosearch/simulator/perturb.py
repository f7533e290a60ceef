"""Perturbed queries: how a simulator should answer a *bad* query is learned and measured on these.

A simulator is only useful for RL if a wrong query gets wrong results (``MINIATURE-FINDINGS.md``: a
lenient simulator rewards bad queries and RL learns them). ``collect`` records what the real engine
returns for three kinds of damage, ``build`` teaches the ``imitate`` recipe to copy it, and ``evaluate``
compares the simulator's hit rate on them with the real engine's (leniency):

* ``misspelt``: one letter of one word (the longest capitalised word, else the longest) replaced by
  another of its class (vowel for vowel, consonant for consonant) — a typo in a name;
* ``other_entity``: one capitalised span (a name) replaced by a span from another question — a query
  about someone else;
* ``dropped_term``: the longest word that is not a stop word removed — a query missing its key term.

Every function is seeded by the ``random.Random`` passed in and returns None when the query offers
nothing to perturb (no letter to change, no name to swap, a single word).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Literal

PerturbationKind = Literal["misspelt", "other_entity", "dropped_term"]
KINDS: tuple[PerturbationKind, ...] = ("misspelt", "other_entity", "dropped_term")
_VOWELS, _CONSONANTS = "aeiou", "bcdfghklmnprstvz"
STOP_WORDS = frozenset(re.findall(r"\w+", (
    "a an the of in on at to for from by with and or is was were are be been what which who whom whose when "
    "where why how did does do that this these those as it its his her their than then into about"
)))
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_NAME = r"[A-Z][\w'\-]*"
_SPAN = re.compile(rf"\b{_NAME}(?:\s+(?:(?:of|the|de|von|van)\s+)*{_NAME})*")


def entity_spans(text: str) -> list[str]:
    """Runs of capitalised words (the names of a query); a leading question word is left out.

    >>> entity_spans("Were Scott Derrickson and Ed Wood of the same nationality?")
    ['Scott Derrickson', 'Ed Wood']
    >>> entity_spans("Kovani Tesu")
    ['Kovani Tesu']
    """
    spans = []
    for match in _SPAN.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower() in STOP_WORDS:
            words = words[1:]
        if words:
            spans.append(" ".join(words))
    return spans


def misspell(query: str, rng: random.Random, known: set[str] | None = None) -> str | None:
    """``query`` with one letter of one word swapped for another of its class.

    The word is the longest word of a name (:func:`entity_spans`), else the longest; with ``known`` (the words of the
    corpus) the new word must be outside it, so the typo really is unknown to the engine.

    >>> misspell("Kovani Tesu", random.Random(0))
    'Kovati Tesu'
    """
    words = query.split()
    named = {w for span in entity_spans(query) for w in span.split()}
    candidates = sorted(range(len(words)), key=lambda i: (words[i] not in named, -len(words[i])))
    for i in candidates[:3]:
        letters = [j for j, c in enumerate(words[i]) if c.lower() in _VOWELS + _CONSONANTS and j > 0]
        for _ in range(20):
            if not letters:
                break
            pos = rng.choice(letters)
            letter = words[i][pos].lower()
            pool = (_VOWELS if letter in _VOWELS else _CONSONANTS).replace(letter, "")
            new = words[i][:pos] + rng.choice(pool) + words[i][pos + 1 :]
            if known is None or new.strip(".,;:?!") not in known:
                return " ".join([*words[:i], new, *words[i + 1 :]])
    return None


def other_entity(query: str, rng: random.Random, pool: Sequence[str]) -> str | None:
    """``query`` with one of its names replaced by a different name from ``pool``.

    >>> other_entity("where was Kovani Tesu born", random.Random(0), ["Bavoru Lim"])
    'where was Bavoru Lim born'
    """
    spans = entity_spans(query)
    if not spans:
        return None
    most = max(len(s.split()) for s in spans)
    span = rng.choice([s for s in spans if len(s.split()) == most])  # a full name rather than a stray word
    choices = [p for p in pool if p != span and p not in query]
    if not choices:
        return None
    return query.replace(span, rng.choice(choices), 1)


def drop_key_term(query: str, rng: random.Random) -> str | None:
    """``query`` without its longest non-stop word (ties broken by ``rng``).

    >>> drop_key_term("which city was Kovani born in", random.Random(0))
    'which city was born in'
    """
    words = query.split()
    content = [i for i, w in enumerate(words) if _WORD.fullmatch(w.strip(".,;:?!\"'")) and w.lower() not in STOP_WORDS]
    if len(words) < 2 or not content:
        return None
    longest = max(len(words[i]) for i in content)
    i = rng.choice([i for i in content if len(words[i]) == longest])
    return " ".join(words[:i] + words[i + 1 :])


def perturb(
    query: str, kind: PerturbationKind, rng: random.Random, *, pool: Sequence[str] = (), known: set[str] | None = None
) -> str | None:
    """One perturbation of ``query`` by name (None when this query cannot be perturbed that way)."""
    makers: dict[str, Callable[[], str | None]] = {
        "misspelt": lambda: misspell(query, rng, known),
        "other_entity": lambda: other_entity(query, rng, pool),
        "dropped_term": lambda: drop_key_term(query, rng),
    }
    if kind not in makers:
        raise ValueError(f"unknown perturbation {kind!r}; choose from {', '.join(KINDS)}")
    out = makers[kind]()
    return out if out and out != query else None
