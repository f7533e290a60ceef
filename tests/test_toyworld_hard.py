"""The demo's harder world: a 3-hop kind answered by no single passage, top-3 results with distractors that
share names, and the hinted simulator recipe built on it. Real BM25 over a small seeded world; no training."""

from __future__ import annotations

from pathlib import Path

import pytest

from zerosearch.search import simulator_prompts as prompts
from zerosearch.search.base import SearchRequest
from zerosearch.search.bm25 import BM25SearchEngine
from zerosearch.toyworld import simulator as sim
from zerosearch.toyworld.build import ToyWorldPaths, read_template, write_world_files
from zerosearch.toyworld.demos import DemoMix, build_demonstrations
from zerosearch.toyworld.world import HOPS, QUESTION_KINDS, WorldConfig, generate_world

HARD = WorldConfig(first_names=10, last_names=10, countries=3, cities_per_country=3, companies=5,
                   warmstart_people=30, train_people=20, test_people=20, kinds=QUESTION_KINDS)


@pytest.fixture(scope="module")
def world():
    return generate_world(HARD)


def _bm25_over(world, root) -> BM25SearchEngine:
    """BM25 over ``world``'s passages, written as the toy world's files under ``root``."""
    paths = ToyWorldPaths(root / "world")
    write_world_files(world, paths)
    return BM25SearchEngine(paths.corpus, progress=False)


@pytest.fixture(scope="module")
def engine(world, tmp_path_factory) -> BM25SearchEngine:
    return _bm25_over(world, tmp_path_factory.mktemp("hard"))


def test_three_hop_answer_is_in_no_single_passage_but_follows_the_chain(world, engine):
    """Search the person, their company, its city: the last passage names the country; the person's own
    passage never does."""
    for q in world.questions("test", ("employer_country",)):
        person = next(p for p in world.people if p.id == q.metadata["person"])
        queries = world.hop_queries(person, "employer_country")
        assert queries == [person.name, person.employer, world.company_city[person.employer]]
        assert q.metadata["hops"] == HOPS["employer_country"] == 3
        docs = [engine.search([SearchRequest(query, top_k=3)])[0].documents for query in queries]
        assert docs[0][0].title == person.name and q.golden_answers[0] not in docs[0][0].text
        assert docs[1][0].title == person.employer and docs[2][0].title == queries[2]
        assert f"city of {q.golden_answers[0]}." in docs[2][0].text


def test_top3_lists_distractors_that_share_the_name(world, engine):
    person = next(p for p in world.people if p.split == "test")
    docs = engine.search([SearchRequest(person.name, top_k=3)])[0].documents
    assert docs[0].title == person.name
    assert all(d.title != person.name and set(d.title.split()) & set(person.name.split()) for d in docs[1:])


def test_demonstrations_search_every_hop_and_show_k_documents(world, engine):
    mix = DemoMix(no_search=0.0, wrong_doc=0.0, skip_hop=0.0, top_k=3, copy_practice=0, read_practice=40)
    demos = build_demonstrations(world, world.questions("warmstart"), engine, read_template(), mix, seed=0)
    for demo in demos:
        kind = demo.example.metadata["kind"]
        searches = [s.text for s in demo.segments if s.policy and s.text.startswith("<search>")]
        assert len(searches) == HOPS[kind], demo.example.id
        for block in (s.text for s in demo.segments if "<information>" in s.text):
            assert block.count("Doc ") == 3  # the right passage and two distractors, as BM25 lists them
        final = demo.segments[-1].text
        assert final == f"<answer> {demo.answer} </answer>" and demo.answer == demo.example.golden_answers[0]
    practice = [d for d in demos if d.behaviour == "read_practice"]
    assert {d.example.metadata["kind"] for d in practice} == set(QUESTION_KINDS)


def test_simulator_queries_follow_the_hops(world):
    questions = world.questions("train")[:8]
    rows = sim.policy_queries(world, questions)
    assert len(rows) == sum(q.metadata["hops"] for q in questions)
    last = sim.policy_queries(world, questions, answer_only=True)
    assert len(last) == len(questions)


def test_hinted_recipe_is_served_with_the_answer_and_its_prompt_is_in_the_vocabulary(world):
    """The paper-style simulator reads the question and gold answer; its tokenizer must spell that prompt."""
    config = sim.SimulatorConfig(recipe="hinted", top_k=3, max_new_tokens=84)
    engine = sim.simulator_engine_config(Path("unused"), config, device="cpu")
    assert engine.include_question_and_answer is True and engine.mode == "finetuned"
    assert sim.simulator_engine_config(Path("unused"), sim.SimulatorConfig(), device="cpu"
                                       ).include_question_and_answer is False
    tokenizer = sim.simulator_tokenizer(world, top_k=3)
    q = world.questions("train")[0]
    prompt = prompts.render(prompts.finetuned(world.people[0].name, 3, "useful", question=q.question,
                                              answers=q.golden_answers), None, False)
    assert tokenizer.unk_token_id not in tokenizer(prompt)["input_ids"]


def test_simulator_budget_must_hold_k_passages():
    """32 new tokens cut a top-3 output after ~1.5 passages: the policy then read half-passages and RL against
    the simulator stopped answering (measured). Such a config is refused, naming the fix."""
    with pytest.raises(ValueError, match="max_new_tokens 32 cannot hold top_k 3"):
        sim.SimulatorConfig(top_k=3)
    assert sim.SimulatorConfig(top_k=3, max_new_tokens=3 * sim.TOKENS_PER_PASSAGE).top_k == 3


# ---- the fact layout: one passage per fact, every answer the last word of the first result ------------------
FACT = HARD.model_copy(update={"layout": "fact"})


@pytest.fixture(scope="module")
def fact_world():
    return generate_world(FACT)


@pytest.fixture(scope="module")
def fact_engine(fact_world, tmp_path_factory) -> BM25SearchEngine:
    return _bm25_over(fact_world, tmp_path_factory.mktemp("fact"))


def _last_word(text: str) -> str:
    return text.rstrip(".").split()[-1]


def test_fact_layout_puts_every_next_hop_and_answer_last_in_the_first_result(fact_world, fact_engine):
    """Two passages per person; the first search names the fact (``A B born``); BM25 ranks that fact's passage
    first, and every hop's next query, and the answer, is the last word of the first result."""
    assert len(fact_world.passages()) == 2 * len(fact_world.people) + len(fact_world.cities) + len(
        fact_world.companies)
    people = {p.id: p for p in fact_world.people}
    for q in fact_world.questions("test"):
        person, kind = people[q.metadata["person"]], q.metadata["kind"]
        queries = fact_world.hop_queries(person, kind)
        assert queries[0] == f"{person.name} {'born' if kind in ('born_in', 'birth_country') else 'works'}"
        for query, following in zip(queries, [*queries[1:], q.golden_answers[0]], strict=True):
            docs = fact_engine.search([SearchRequest(query, top_k=3)])[0].documents
            assert _last_word(docs[0].text) == following, (query, [d.text for d in docs])


def test_fact_layout_demonstrations_and_practice_follow_the_same_rule(fact_world, fact_engine):
    mix = DemoMix(no_search=0.0, wrong_doc=0.0, skip_hop=0.0, top_k=3, copy_practice=20, read_practice=40)
    demos = build_demonstrations(fact_world, fact_world.questions("warmstart"), fact_engine, read_template(), mix)
    assert {d.behaviour for d in demos} == {"correct", "copy_practice", "read_practice"}
    for demo in demos:
        searches = [s.text.split()[1:-1] for s in demo.segments if s.policy and s.text.startswith("<search>")]
        blocks = [s.text for s in demo.segments if "<information>" in s.text]
        following = [*(" ".join(q) for q in searches[1:]), demo.answer] if blocks else []  # copy practice: none
        for block, nxt in zip(blocks, following, strict=True):  # the last word of Doc 1, BM25's or made up
            first = block.split("Doc 1: ")[1].split("\n")[0].removesuffix("</information>")
            assert _last_word(first) == nxt, (demo.behaviour, block)
            assert block.count("Doc ") == 3
        if searches:  # the first search is the name asked about and the fact's word
            assert len(searches[0]) == 3 and " ".join(searches[0][:2]) in demo.example.question
