"""A seeded, made-up world small enough for RL to learn search on 2 CPU cores in minutes.

Nothing in it exists outside the seed: people (first + last name), the city each was born in, the
company each works for, cities grouped into countries, companies based in cities. No model can know
these facts, so answering needs the search engine, which is what makes the toy world a test of the
ZeroSearch loop rather than of memorisation. Names are single made-up words, so a held-out person is
a new *combination* of words the tokenizer and the warm-start already know (the policy must copy them
into its query, not recall them).

Questions come in four kinds: born-in and works-for (1 hop: search the person), country of birth
(2 hops: search the person, then the city) and country of the employer (3 hops: the person, their
company, the company's city). The multi-hop answers stand in no single passage. ``WorldConfig.kinds``
picks the kinds a world asks (default: the first three; the demo's harder world asks all four). People
are split into warm-start, RL-train and test sets, so RL and evaluation questions are about people the
warm-start never saw.

    world = generate_world(WorldConfig(seed=0))
    passages = world.passages()                 # wiki-18 rows {"id", "contents": '"Title"\\ntext'}
    train = world.questions("train")            # list[QAExample]
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch.data.types import QAExample

Split = Literal["warmstart", "train", "test"]
SPLITS: tuple[Split, ...] = ("warmstart", "train", "test")
QuestionKind = Literal["born_in", "works_for", "birth_country", "employer_country"]
QUESTION_KINDS: tuple[QuestionKind, ...] = ("born_in", "works_for", "birth_country", "employer_country")
#: Question templates; ``{name}`` is the person's full name.
QUESTION_TEMPLATES: dict[str, str] = {
    "born_in": "Where was {name} born?",
    "works_for": "Which company does {name} work for?",
    "birth_country": "In which country was {name} born?",
    "employer_country": "In which country is the company that {name} works for based?",
}
#: Searches a correct policy makes per kind (the person, then each entity the chain passes through).
HOPS: dict[str, int] = {"born_in": 1, "works_for": 1, "birth_country": 2, "employer_country": 3}
PERSON_TEXT = "{name} was born in {city} and works for {company}."
# "of", not "in": the person passage already says "born in <city>", and with two passages in context a
# tiny policy reading "the word after *in*" took the city (seed 0: country read 0.2-0.5 after 3,000 steps
# with "in", 1.0 after 1,250 with "of").
CITY_TEXT = "{city} is a city of {country}."
COMPANY_TEXT = "{company} is a company based in {city}."
#: The ``fact`` layout's person passages: one fact each, the answer-bearing entity last (as in every passage).
BORN_TEXT = "{name} was born in {city}."
WORKS_TEXT = "{name} works for {company}."
#: The ``fact`` layout's word naming the fact in the first query (``Kunor Simifu born``): it ranks that fact's
#: passage first.
FACT_WORD: dict[str, str] = {"born_in": "born", "birth_country": "born", "works_for": "works",
                             "employer_country": "works"}
PassageLayout = Literal["person", "fact"]

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
DATASET_NAME = "toyworld"


class WorldConfig(BaseModel):
    """Sizes of the made-up world; the seed fixes every name and fact."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="fixes every name, fact and split")
    first_names: int = Field(30, ge=2, description="distinct first-name words")
    last_names: int = Field(30, ge=2, description="distinct last-name words")
    countries: int = Field(6, ge=2)
    cities_per_country: int = Field(4, ge=1)
    companies: int = Field(12, ge=2)
    warmstart_people: int = Field(
        150, ge=1, description="people whose questions the warm-start sees (few: their facts can be memorised)")
    train_people: int = Field(200, ge=1, description="people whose questions RL trains on")
    test_people: int = Field(200, ge=1, description="held-out people for evaluation")
    kinds: tuple[QuestionKind, ...] = Field(
        ("born_in", "works_for", "birth_country"), min_length=1,
        description="question kinds asked about every person (employer_country: 3 hops)")
    layout: PassageLayout = Field(
        "person", description="person: one passage per person with both facts, searched by name; fact: one "
        "passage per fact, searched by name + the fact's word (Kunor Simifu born), so every answer and every "
        "next hop is the last word of the first result: one reading rule for every kind, which a tiny policy "
        "learns in a fraction of the steps (docs/demo.md)")

    @model_validator(mode="after")
    def _check_names(self) -> WorldConfig:
        people = self.warmstart_people + self.train_people + self.test_people
        if people > self.first_names * self.last_names:
            raise ValueError(
                f"{people} people need at least that many distinct (first, last) pairs, but "
                f"first_names x last_names = {self.first_names * self.last_names}; raise first_names/last_names"
            )
        return self

    @property
    def people(self) -> int:
        """Total number of people."""
        return self.warmstart_people + self.train_people + self.test_people


@dataclass(frozen=True)
class Person:
    """One made-up person and the facts the corpus states about them."""

    id: str
    first: str
    last: str
    birth_city: str
    employer: str
    split: Split

    @property
    def name(self) -> str:
        """Full name as written in questions, queries and passages."""
        return f"{self.first} {self.last}"


@dataclass(frozen=True)
class World:
    """Every entity and fact of one seeded world; ``passages`` and ``questions`` derive from it."""

    config: WorldConfig
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    countries: tuple[str, ...]
    city_country: dict[str, str]
    company_city: dict[str, str]
    people: tuple[Person, ...]

    @property
    def cities(self) -> tuple[str, ...]:
        """City names in a fixed order."""
        return tuple(self.city_country)

    @property
    def companies(self) -> tuple[str, ...]:
        """Company names in a fixed order."""
        return tuple(self.company_city)

    def answer(self, person: Person, kind: QuestionKind) -> str:
        """The gold answer of a ``kind`` question about ``person``."""
        if kind == "born_in":
            return person.birth_city
        if kind == "works_for":
            return person.employer
        if kind == "employer_country":
            return self.city_country[self.company_city[person.employer]]
        return self.city_country[person.birth_city]

    def person_query(self, name: str, kind: QuestionKind) -> str:
        """The first search of a ``kind`` question about ``name``: the name (``person`` layout), or the
        name and the fact's word (``fact`` layout)."""
        return name if self.config.layout == "person" else f"{name} {FACT_WORD[kind]}"

    def hop_queries(self, person: Person, kind: QuestionKind) -> list[str]:
        """The searches a correct policy makes for a ``kind`` question, in order; the last one's results
        hold the answer (the person; their city; or their company, then its city)."""
        first = self.person_query(person.name, kind)
        if kind == "birth_country":
            return [first, person.birth_city]
        if kind == "employer_country":
            return [first, person.employer, self.company_city[person.employer]]
        return [first]

    def person_passages(self, person: Person) -> list[tuple[str, str]]:
        """``(id suffix, text)`` of the passages stating ``person``'s facts, in the world's layout."""
        if self.config.layout == "person":
            return [("", PERSON_TEXT.format(name=person.name, city=person.birth_city, company=person.employer))]
        return [("-born", BORN_TEXT.format(name=person.name, city=person.birth_city)),
                ("-works", WORKS_TEXT.format(name=person.name, company=person.employer))]

    def candidates(self, kind: QuestionKind) -> tuple[str, ...]:
        """Every entity that could answer a ``kind`` question (the guessing pool)."""
        return {"born_in": self.cities, "works_for": self.companies, "birth_country": self.countries,
                "employer_country": self.countries}[kind]

    def passages(self) -> list[dict[str, str]]:
        """The corpus in wiki-18 JSONL form: the people's passages (one or two each), one per city and company."""
        rows = [_passage(p.id + suffix, p.name, text) for p in self.people for suffix, text in self.person_passages(p)]
        rows += [
            _passage(f"city{i:03d}", city, CITY_TEXT.format(city=city, country=country))
            for i, (city, country) in enumerate(self.city_country.items())
        ]
        rows += [
            _passage(f"company{i:03d}", company, COMPANY_TEXT.format(company=company, city=city))
            for i, (company, city) in enumerate(self.company_city.items())
        ]
        return rows

    def questions(self, split: Split, kinds: tuple[QuestionKind, ...] | None = None) -> list[QAExample]:
        """Every question of ``kinds`` (default: the config's) about the people of ``split`` (person-major)."""
        kinds = kinds or self.config.kinds
        return [
            QAExample(
                id=f"{p.id}-{kind}",
                question=QUESTION_TEMPLATES[kind].format(name=p.name),
                golden_answers=(self.answer(p, kind),),
                dataset=DATASET_NAME,
                metadata={"kind": kind, "person": p.id, "split": split, "hops": HOPS[kind]},
            )
            for p in self.people
            if p.split == split
            for kind in kinds
        ]

    @classmethod
    def from_record(cls, record: dict) -> World:
        """The world :meth:`to_record` described (``world.json`` of a build)."""
        return cls(WorldConfig(**record["config"]), tuple(record["first_names"]), tuple(record["last_names"]),
                   tuple(record["countries"]), dict(record["city_country"]), dict(record["company_city"]),
                   tuple(Person(**p) for p in record["people"]))

    def to_record(self) -> dict:
        """JSON-able description of the whole world (written as ``world.json``)."""
        return {
            "config": self.config.model_dump(),
            "first_names": list(self.first_names),
            "last_names": list(self.last_names),
            "countries": list(self.countries),
            "city_country": self.city_country,
            "company_city": self.company_city,
            "people": [asdict(p) for p in self.people],
        }


def _passage(doc_id: str, title: str, text: str) -> dict[str, str]:
    return {"id": doc_id, "contents": f'"{title}"\n{text}'}


def _word(rng: random.Random, syllables: int) -> str:
    """A pronounceable made-up word, capitalised (e.g. ``Kovani``)."""
    return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables)).capitalize()


def _unique_words(rng: random.Random, count: int, syllables: int, taken: set[str]) -> list[str]:
    """``count`` new words not in ``taken`` (which is updated); a closing consonant varies length."""
    words: list[str] = []
    while len(words) < count:
        word = _word(rng, syllables) + rng.choice(("", "n", "r", "s"))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def question_kind(example: QAExample) -> QuestionKind:
    """The kind of a toy-world question (from its metadata)."""
    kind = example.metadata.get("kind")
    if kind not in QUESTION_KINDS:
        raise ValueError(f"example {example.id!r} is not a toy-world question (metadata kind={kind!r})")
    return kind


def generate_world(config: WorldConfig | None = None) -> World:
    """Draw a world from ``config.seed``; the same config always gives the same world."""
    config = config or WorldConfig()
    rng = random.Random(config.seed)
    taken: set[str] = set()
    first = _unique_words(rng, config.first_names, 2, taken)
    last = _unique_words(rng, config.last_names, 3, taken)
    countries = _unique_words(rng, config.countries, 2, taken)
    city_country = {
        city: country
        for country in countries
        for city in _unique_words(rng, config.cities_per_country, 3, taken)
    }
    cities = list(city_country)
    company_city = {c: rng.choice(cities) for c in _unique_words(rng, config.companies, 2, taken)}
    companies = list(company_city)
    pairs = rng.sample([(f, la) for f in first for la in last], config.people)
    sizes = (config.warmstart_people, config.train_people, config.test_people)
    splits = [s for s, n in zip(SPLITS, sizes, strict=True) for _ in range(n)]
    people = tuple(
        Person(f"person{i:04d}", f, la, rng.choice(cities), rng.choice(companies), split)
        for i, ((f, la), split) in enumerate(zip(pairs, splits, strict=True))
    )
    return World(config, tuple(first), tuple(last), tuple(countries), city_country, company_city, people)
