"""Imperfect demonstrations for the toy policy's warm-start, built exactly as a rollout would see them.

A demonstration is a list of segments, each text with a flag saying whether the policy wrote it (1) or
it was injected (0: the prompt and the ``<information>`` blocks from the real engine). Segments are
tokenized separately, the way the rollout builds episodes, so the warm-start trains on the same id
sequences RL will produce. The mix is deliberately imperfect, so RL has room to improve:

- ``correct``: search the person (then the city, or the company and its city, for multi-hop questions)
  and answer from the passages;
- ``no_search``: answer at once with a guess of the right type;
- ``wrong_doc``: search, then answer with the fact of another person in the results;
- ``skip_hop``: (multi-hop only) search the person, then guess a country without the further searches;
- ``copy_practice``: a question about any first/last-name combination, followed by the search for it
  and nothing else. A tiny model shown only the warm-start people learns their names by heart instead
  of copying the name from the question; this practice makes it copy (the miniature's pitfall 1);
- ``read_practice``: a full correct episode about a random name whose passages state *random* facts
  (same format as the corpus; with ``top_k`` > 1 each search also lists distractor passages that share
  the searched name, as BM25 does). The warm-start people's facts can be memorised, which gives a policy
  that never reads; facts drawn afresh per episode can only be read out of the ``<information>``.

``no_search`` applies to the practice episodes too (they become a guess about the same question), so
a policy trained on the mix searches only about ``1 - no_search`` of the time whatever the amount of
practice: with the default 0.6 its greedy choice is to guess, and RL has to discover that searching
pays, which is the behaviour ZeroSearch trains. The warm-start (``build.py``) first teaches the skills
on the mix without its imperfect behaviours, then the habits on the mix itself.

    demos = build_demonstrations(world, world.questions("warmstart"), engine, template, DemoMix(), seed=0)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch import protocol
from zerosearch.data.types import QAExample
from zerosearch.search.base import Document, SearchEngine, SearchRequest
from zerosearch.toyworld.world import (
    CITY_TEXT,
    COMPANY_TEXT,
    FACT_WORD,
    HOPS,
    QUESTION_TEMPLATES,
    Person,
    QuestionKind,
    World,
    question_kind,
)


class DemoMix(BaseModel):
    """Probabilities of each imperfect behaviour (the rest are correct demonstrations)."""

    model_config = ConfigDict(extra="forbid")

    no_search: float = Field(0.6, ge=0.0, le=1.0, description="answer with a guess, no search (practice included)")
    wrong_doc: float = Field(0.1, ge=0.0, le=1.0, description="answer with another result's fact")
    skip_hop: float = Field(0.3, ge=0.0, le=1.0, description="2-hop questions: guess after one search")
    top_k: int = Field(1, ge=1, description="documents per search (match the rollout's top_k_documents)")
    copy_practice: int = Field(1500, ge=0, description="extra question -> search-the-name practice episodes")
    read_practice: int = Field(4000, ge=0, description="extra correct episodes over passages with random facts")

    @model_validator(mode="after")
    def _check_total(self) -> DemoMix:
        if self.no_search + self.wrong_doc > 1.0:
            raise ValueError(f"no_search + wrong_doc = {self.no_search + self.wrong_doc} must be <= 1")
        return self


@dataclass(frozen=True)
class Segment:
    """A stretch of an episode: ``policy`` is True for text the policy generates (trained on)."""

    text: str
    policy: bool


@dataclass(frozen=True)
class Demonstration:
    """One demonstrated episode and the behaviour it shows."""

    example: QAExample
    behaviour: str
    segments: tuple[Segment, ...]
    answer: str


def search_turn(query: str) -> str:
    """The policy text of a search turn."""
    return f"{protocol.SEARCH_OPEN} {query} {protocol.SEARCH_CLOSE}"


def answer_turn(answer: str) -> str:
    """The policy text of a final answer turn."""
    return f"{protocol.ANSWER_OPEN} {answer} {protocol.ANSWER_CLOSE}"


def information_block(documents: list[Document]) -> str:
    """What the rollout injects after a search (``Doc i: (Title: …) text`` lines)."""
    return protocol.format_information([d.as_passage() for d in documents])


class _Builder:
    """Builds demonstrations for one world, engine and prompt template."""

    def __init__(self, world: World, engine: SearchEngine, template: str, mix: DemoMix, rng: random.Random):
        self.world, self.engine, self.template, self.mix, self.rng = world, engine, template, mix, rng
        self.by_name = {p.name: p for p in world.people}
        self.by_id = {p.id: p for p in world.people}

    def search(self, query: str) -> list[Document]:
        return self.engine.search([SearchRequest(query=query, top_k=self.mix.top_k)])[0].documents

    def guess(self, kind: QuestionKind) -> str:
        return self.rng.choice(self.world.candidates(kind))

    def wrong_fact(self, person: Person, kind: QuestionKind, documents: list[Document]) -> str:
        """The ``kind`` fact of another person among ``documents`` (a guess if there is none)."""
        others = [self.by_name[d.title] for d in documents if d.title in self.by_name and d.title != person.name]
        return self.world.answer(others[0], kind) if others else self.guess(kind)

    def behaviour(self, kind: QuestionKind) -> str:
        draw = self.rng.random()
        if draw < self.mix.no_search:
            return "no_search"
        if draw < self.mix.no_search + self.mix.wrong_doc:
            return "wrong_doc"
        if HOPS[kind] > 1 and self.rng.random() < self.mix.skip_hop:
            return "skip_hop"
        return "correct"

    def build(self, example: QAExample) -> Demonstration:
        kind = question_kind(example)
        person = self.by_id[example.metadata["person"]]
        behaviour = self.behaviour(kind)
        segments = [Segment(protocol.render_prompt(example.question, None, self.template, False), False)]
        if behaviour == "no_search":
            return self._finish(example, behaviour, segments, self.guess(kind))
        first, *further = self.world.hop_queries(person, kind)
        documents = self.search(first)
        segments += [Segment(search_turn(first), True), Segment(information_block(documents), False)]
        if behaviour == "wrong_doc":
            return self._finish(example, behaviour, segments, self.wrong_fact(person, kind, documents))
        if behaviour == "skip_hop":
            return self._finish(example, behaviour, segments, self.guess(kind))
        for query in further:
            segments += [Segment(search_turn(query), True), Segment(information_block(self.search(query)), False)]
        return self._finish(example, behaviour, segments, self.world.answer(person, kind))

    @staticmethod
    def _finish(example: QAExample, behaviour: str, segments: list[Segment], answer: str) -> Demonstration:
        segments.append(Segment(answer_turn(answer), True))
        return Demonstration(example, behaviour, tuple(segments), answer)


def build_demonstrations(
    world: World,
    examples: list[QAExample],
    engine: SearchEngine,
    template: str,
    mix: DemoMix | None = None,
    seed: int = 0,
) -> list[Demonstration]:
    """One demonstration per example, behaviours drawn from ``mix`` (seeded), then the copy practice."""
    mix = mix or DemoMix()
    builder = _Builder(world, engine, template, mix, random.Random(seed))
    demos = [builder.build(ex) for ex in examples]
    demos += build_copy_practice(world, mix.copy_practice, template, seed, mix.no_search)
    return demos + build_read_practice(world, mix.read_practice, template, seed, mix.no_search, mix.top_k)


def guess_demonstration(world: World, example: QAExample, template: str, rng: random.Random) -> Demonstration:
    """The ``no_search`` behaviour: answer ``example`` at once with a random entity of the right type."""
    guess = rng.choice(world.candidates(question_kind(example)))
    segments = (Segment(protocol.render_prompt(example.question, None, template, False), False),
                Segment(answer_turn(guess), True))
    return Demonstration(example, "no_search", segments, guess)


def build_copy_practice(
    world: World, count: int, template: str, seed: int = 0, no_search: float = 0.0
) -> list[Demonstration]:
    """``count`` prompt -> ``<search> name </search>`` episodes over random name combinations
    (a ``no_search`` share of them are guesses instead)."""
    rng = random.Random(seed)
    demos = []
    for i in range(count):
        name = f"{rng.choice(world.first_names)} {rng.choice(world.last_names)}"
        kind = rng.choice(world.config.kinds)
        question = QUESTION_TEMPLATES[kind].format(name=name)
        example = QAExample(f"practice{i:05d}-{kind}", question, ("unknown",), metadata={"kind": kind})
        if rng.random() < no_search:
            demos.append(guess_demonstration(world, example, template, rng))
            continue
        segments = (Segment(protocol.render_prompt(question, None, template, False), False),
                    Segment(search_turn(world.person_query(name, kind)), True))
        demos.append(Demonstration(example, "copy_practice", segments, ""))
    return demos


def build_read_practice(
    world: World, count: int, template: str, seed: int = 0, no_search: float = 0.0, top_k: int = 1
) -> list[Demonstration]:
    """``count`` correct episodes whose passages (made here, corpus format) state random facts, each
    search listing ``top_k - 1`` distractors after the right passage (a ``no_search`` share are guesses)."""
    rng = random.Random(seed + 7919)
    demos = []
    for i in range(count):
        person = Person(f"practice{i:05d}", rng.choice(world.first_names), rng.choice(world.last_names),
                        rng.choice(world.cities), rng.choice(world.companies), "warmstart")
        kind = rng.choice(world.config.kinds)
        question = QUESTION_TEMPLATES[kind].format(name=person.name)
        hops, answer = _random_chain(world, person, kind, rng)
        segments = [Segment(protocol.render_prompt(question, None, template, False), False)]
        for query, title, text in hops:
            documents = [Document(title, text), *_distractors(world, query, top_k - 1, rng)]
            segments += [Segment(search_turn(query), True), Segment(information_block(documents), False)]
        segments.append(Segment(answer_turn(answer), True))
        example = QAExample(f"{person.id}-{kind}", question, (answer,), metadata={"kind": kind})
        if rng.random() < no_search:
            demos.append(guess_demonstration(world, example, template, rng))
            continue
        demos.append(Demonstration(example, "read_practice", tuple(segments), answer))
    return demos


def _random_chain(
    world: World, person: Person, kind: QuestionKind, rng: random.Random
) -> tuple[list[tuple[str, str, str]], str]:
    """(query, passage title, passage text) per hop of a ``kind`` question about ``person`` with fresh
    random facts for every entity on the way, and the answer those passages give."""
    hops = [(world.person_query(person.name, kind), person.name, _fact_text(world, person, FACT_WORD[kind]))]
    if kind == "born_in":
        return hops, person.birth_city
    if kind == "works_for":
        return hops, person.employer
    city = person.birth_city
    if kind == "employer_country":
        city = rng.choice(world.cities)
        hops.append((person.employer, person.employer, COMPANY_TEXT.format(company=person.employer, city=city)))
    country = rng.choice(world.countries)
    hops.append((city, city, CITY_TEXT.format(city=city, country=country)))
    return hops, country


def _fact_text(world: World, person: Person, fact: str) -> str:
    """The passage of ``person`` that states ``fact`` (``born`` / ``works``): their only one in the ``person``
    layout."""
    passages = dict(world.person_passages(person))
    return passages[""] if "" in passages else passages[f"-{fact}"]


def _distractors(world: World, query: str, count: int, rng: random.Random) -> list[Document]:
    """``count`` passages with random facts that mention ``query``'s words, as BM25's lower ranks do: other
    people sharing a name word (in the ``fact`` layout: and the fact word, or the same person's other fact),
    or people born in / working for the searched city or company."""
    words = query.split()
    out = []
    for _ in range(count):
        first, last = rng.choice(world.first_names), rng.choice(world.last_names)
        city, company = rng.choice(world.cities), rng.choice(world.companies)
        fact = words[2] if len(words) == 3 else None
        if len(words) >= 2:  # a person: share the first or the last name
            first, last = (words[0], last) if rng.random() < 0.5 else (first, words[1])
            if fact is not None and rng.random() < 0.3:  # the searched person's other fact
                first, last, fact = words[0], words[1], "works" if fact == "born" else "born"
        elif query in world.city_country:
            city, fact = query, "born"
        else:
            company, fact = query, "works"
        name = f"{first} {last}"
        person = Person("distractor", first, last, city, company, "warmstart")
        out.append(Document(name, _fact_text(world, person, fact or "born")))
    return out


def tokenize_demonstration(demo: Demonstration, tokenizer: object) -> tuple[list[int], list[int]]:
    """Token ids of the episode and its policy mask (1 = policy token), one segment at a time."""
    ids: list[int] = []
    mask: list[int] = []
    for seg in demo.segments:
        seg_ids = tokenizer(seg.text, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        ids += seg_ids
        mask += [int(seg.policy)] * len(seg_ids)
    return ids, mask


def demonstration_rows(demos: list[Demonstration], tokenizer: object) -> list[dict[str, list[int]]]:
    """Demonstrations as SFT rows (``input_ids`` + ``completion_mask``), the form ``zerosearch.sft`` and the
    staged warm-start (``zerosearch.warmstart.stages``) train on."""
    return [dict(zip(("input_ids", "completion_mask"), tokenize_demonstration(d, tokenizer), strict=True))
            for d in demos]
