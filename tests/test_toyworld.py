"""Toy world: seeded determinism, corpus/question formats, tokenizer round-trips, demonstrations.

Everything here is real (BM25 over the generated corpus, the real tokenizer); no model is trained, so
these tests take a few seconds. The warm-start and RL pipeline are in ``test_toyworld_pipeline.py``.
"""

from __future__ import annotations

import json

import pytest

from zerosearch import protocol
from zerosearch.rewards import extract_answer
from zerosearch.search.base import SearchRequest
from zerosearch.toyworld.build import ToyWorldPaths, read_template, tokenizer_texts, write_world_files
from zerosearch.toyworld.demos import DemoMix, build_demonstrations, tokenize_demonstration
from zerosearch.toyworld.evaluate import asked_name
from zerosearch.toyworld.tokenizer import build_tokenizer, unknown_words
from zerosearch.toyworld.world import WorldConfig, generate_world, question_kind

SMALL = WorldConfig(seed=3, first_names=12, last_names=12, warmstart_people=40, train_people=20, test_people=20)


@pytest.fixture(scope="module")
def world():
    return generate_world(SMALL)


@pytest.fixture(scope="module")
def tokenizer(world):
    return build_tokenizer(tokenizer_texts(world, read_template()))


@pytest.fixture(scope="module")
def engine(world, tmp_path_factory):
    from zerosearch.search.bm25 import BM25SearchEngine

    paths = ToyWorldPaths(tmp_path_factory.mktemp("toy"))
    write_world_files(world, paths)
    return BM25SearchEngine(paths.corpus, progress=False)


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths = ToyWorldPaths(tmp_path / name)
        write_world_files(generate_world(SMALL.model_copy(update={"seed": seed})), paths)
        runs.append({p.name: p.read_bytes() for p in sorted(paths.root.iterdir())})
    assert runs[0] == runs[1]
    assert runs[0]["corpus.jsonl"] != runs[2]["corpus.jsonl"]
    expected = {"corpus.jsonl", "world.json", "warmstart.jsonl", "train.jsonl", "test.jsonl", "template.txt"}
    assert set(runs[0]) == expected


def test_splits_are_disjoint_people_made_of_known_words(world):
    people = {s: {p.name for p in world.people if p.split == s} for s in ("warmstart", "train", "test")}
    assert len(people["warmstart"]) == 40 and len(people["test"]) == 20
    assert not people["warmstart"] & people["train"] and not people["train"] & people["test"]
    assert len({p.name for p in world.people}) == len(world.people)
    # every name word a held-out person uses appears in some other person's name too (new combinations)
    seen_words = {w for p in world.people if p.split == "warmstart" for w in (p.first, p.last)}
    held_out_words = {w for p in world.people if p.split != "warmstart" for w in (p.first, p.last)}
    assert len(held_out_words - seen_words) <= 2


def test_corpus_is_wiki18_and_questions_answerable_from_it(world, engine):
    rows = world.passages()
    assert all(set(r) == {"id", "contents"} and r["contents"].startswith('"') for r in rows)
    assert len(rows) == len(world.people) + len(world.cities) + len(world.companies)
    for q in world.questions("test")[:9]:
        person = next(p for p in world.people if p.id == q.metadata["person"])
        top = engine.search([SearchRequest(person.name, top_k=3)])[0].documents
        assert top[0].title == person.name
        kind = question_kind(q)
        if kind == "birth_country":
            city_doc = engine.search([SearchRequest(person.birth_city, top_k=3)])[0].documents[0]
            assert city_doc.title == person.birth_city and q.golden_answers[0] in city_doc.text
        else:
            assert q.golden_answers[0] in top[0].text


def test_question_files_have_flashrag_fields(tmp_path, world):
    paths = ToyWorldPaths(tmp_path)
    write_world_files(world, paths)
    row = json.loads(paths.test.read_text().splitlines()[0])
    assert set(row) == {"id", "question", "golden_answers", "kind"}
    assert isinstance(row["golden_answers"], list)


def test_tokenizer_round_trips_protocol_strings(world, tokenizer, tmp_path):
    name = world.people[0].name
    for text in (
        f"<search> {name} </search>",
        "<answer> " + world.cities[0] + " </answer>",
        "<think> " + name + " </think>",
    ):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
        assert tokenizer.unk_token_id not in ids
    tags = [protocol.SEARCH_OPEN, protocol.SEARCH_CLOSE, protocol.ANSWER_OPEN, protocol.ANSWER_CLOSE,
            protocol.INFORMATION_OPEN, protocol.INFORMATION_CLOSE, protocol.THINK_OPEN, protocol.THINK_CLOSE]
    for tag in tags:
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) == 1
    # injected text and the template are fully covered by the vocabulary
    block = protocol.format_information([f"(Title: {name}) {world.passages()[0]['contents']}"])
    for text in (block, protocol.INVALID_ACTION_MESSAGE, read_template()):
        assert unknown_words(tokenizer, text) == []
    assert unknown_words(tokenizer, "Zzyzx") == ["Zzyzx"]
    # decoded policy text parses as the protocol expects
    ids = tokenizer(f"<search>{name}</search>", add_special_tokens=False)["input_ids"]
    assert protocol.parse_turn(tokenizer.decode(ids, skip_special_tokens=True)).content == name
    # save / reload keeps ids and specials
    tokenizer.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    ids = tokenizer(block, add_special_tokens=False)["input_ids"]
    assert again(block, add_special_tokens=False)["input_ids"] == ids
    assert (again.pad_token, again.eos_token) == ("<pad>", "<eos>")


def test_tokenizer_is_deterministic(world):
    texts = tokenizer_texts(world, read_template())
    assert build_tokenizer(texts).get_vocab() == build_tokenizer(texts).get_vocab()


def test_demonstrations_mix_behaviours_and_mask_only_policy_text(world, engine, tokenizer):
    examples = world.questions("warmstart")
    mix = DemoMix(copy_practice=50, read_practice=30)
    demos = build_demonstrations(world, examples, engine, read_template(), mix, seed=0)
    behaviours = {d.behaviour for d in demos}
    assert behaviours == {"correct", "no_search", "wrong_doc", "skip_hop", "copy_practice", "read_practice"}
    practice = [d for d in demos if d.behaviour == "copy_practice"]
    extra = demos[len(examples):]  # one episode per practice slot, a no_search share of them guesses
    assert len(extra) == 80 and {d.behaviour for d in extra} == {"copy_practice", "read_practice", "no_search"}
    guesses = [d for d in extra if d.behaviour == "no_search"]
    assert 0.4 * 80 < len(guesses) < 0.8 * 80  # DemoMix.no_search = 0.6 covers practice too
    for d in guesses:  # prompt, then an answer of the right type, no search
        assert [s.policy for s in d.segments] == [False, True]
        assert d.answer in world.candidates(question_kind(d.example))
    for d in (d for d in demos if d.behaviour == "read_practice"):  # the answer is in the shown passage
        info = [s.text for s in d.segments if protocol.INFORMATION_OPEN in s.text][-1]
        assert d.answer in info and extract_answer(d.segments[-1].text) == d.answer
    for d in practice:  # the query is exactly the name asked about, and nothing follows it
        assert d.segments[-1].text == f"<search> {asked_name(d.example.question)} </search>"
    demos = demos[: len(examples)]
    correct = [d for d in demos if d.behaviour == "correct"]
    assert all(d.answer in d.example.golden_answers for d in correct)
    assert sum(d.answer in d.example.golden_answers for d in demos) < len(demos)
    demo = next(d for d in correct if question_kind(d.example) == "birth_country")
    policy_text = " ".join(s.text for s in demo.segments if s.policy)
    assert extract_answer(policy_text) == demo.answer
    assert policy_text.count(protocol.SEARCH_OPEN) == 2
    ids, mask = tokenize_demonstration(demo, tokenizer)
    policy_ids = [i for i, m in zip(ids, mask, strict=True) if m]
    assert tokenizer.decode(policy_ids, skip_special_tokens=True).split() == policy_text.split()
    info = tokenizer.convert_tokens_to_ids(protocol.INFORMATION_OPEN)
    assert all(m == 0 for i, m in zip(ids, mask, strict=True) if i == info)


def test_bad_world_config_is_a_clear_error():
    with pytest.raises(ValueError, match="first_names"):
        WorldConfig(first_names=2, last_names=2, warmstart_people=5)
