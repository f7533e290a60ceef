"""The toy world's fine-tuned simulator: SFT data in the engine's own format, a short real SFT, loading
through ``build_engine``, what the policy reads, the measurement and the RL config.

Real components throughout (a small seeded world, real BM25, a tiny Llama trained for a few dozen steps,
the real ``SimulatedSearchEngine``), except where a test says otherwise. The simulator's *quality* after
the default 1,500 steps is measured by ``python -m zerosearch.toyworld.simulator``, not here.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

from zerosearch import protocol
from zerosearch.llm.base import Completion
from zerosearch.search import simulator_prompts as prompts
from zerosearch.search.base import Document, SearchRequest, SearchResult
from zerosearch.search.bm25 import BM25SearchEngine
from zerosearch.search.factory import build_engine
from zerosearch.search.simulated import SimulatedSearchEngine
from zerosearch.toyworld import simulator as sim
from zerosearch.toyworld.build import ToyWorldPaths, read_template, tokenizer_texts, write_world_files
from zerosearch.toyworld.model import TinyModelConfig
from zerosearch.toyworld.tokenizer import build_tokenizer, split_words
from zerosearch.toyworld.warmstart import SFTConfig
from zerosearch.toyworld.world import WorldConfig, generate_world
from zerosearch.train.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "toy-reinforce_pp-simulated.yaml"
SMALL_WORLD = WorldConfig(first_names=10, last_names=10, countries=3, cities_per_country=3, companies=4,
                          warmstart_people=60, train_people=20, test_people=20)
# ~20 s of SFT on one thread: enough for the small world's 20 RL people and 9 cities to be learned (greedy
# useful hit 1.0 at 1,200 steps, 0.5 at 600: measured), so the test can check behaviour, not just format.
SMALL = sim.SimulatorConfig(
    model=TinyModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    warmstart_repeats=0, misspelt=120, random_names=30, temperature=0.0, measure_questions=30,
    sft=SFTConfig(steps=1000, batch_size=16, learning_rate=3e-3, warmup_steps=10, log_every=250),
)


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("simworld") / "world"
    write_world_files(generate_world(SMALL_WORLD), ToyWorldPaths(root))
    return root


@pytest.fixture(scope="module")
def world(world_dir):
    return sim.load_world(world_dir)


@pytest.fixture(scope="module")
def bm25(world_dir) -> BM25SearchEngine:
    return BM25SearchEngine(world_dir / "corpus.jsonl", progress=False)


@pytest.fixture(scope="module")
def built(world_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "simulator"
    return sim.build_simulator(world_dir, out, SMALL, log=lambda _: None)


@pytest.fixture(scope="module")
def examples(world, bm25):
    return sim.build_sft_examples(world, bm25, SMALL)


class _Generator:
    """Stands in for the simulator LLM: answers every prompt with a fixed completion text."""

    name = "fixed"

    def __init__(self, tokenizer, text: str) -> None:
        self.tokenizer, self.text, self.prompts = tokenizer, text, []

    def generate(self, prompts_: list[str], params) -> list[Completion]:
        self.prompts += prompts_
        return [Completion(text=self.text) for _ in prompts_]


def _engine_config(**overrides):
    return sim.simulator_engine_config("unused", SMALL, device="cpu").model_copy(update=overrides)


def test_loaded_world_is_the_generated_one(world):
    assert world == generate_world(SMALL_WORLD)


def test_world_dir_without_corpus_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"world\.json is missing.*toyworld\.build"):
        sim.load_world(tmp_path)
    (tmp_path / "world.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"corpus\.jsonl is missing"):
        sim.build_simulator(tmp_path, tmp_path / "out", SMALL, log=lambda _: None)


def test_sft_prompt_is_the_engines_prompt_and_target_is_format_documents(world, examples):
    """Every SFT prompt is what the serving engine (fine-tuned mode, no hint) renders for that query,
    and prompt + completion is the un-primed prompt followed by ``format_documents`` of the passages."""
    tokenizer = sim.simulator_tokenizer(world)
    engine = SimulatedSearchEngine(_Generator(tokenizer, ""), _engine_config())
    person = next(p for p in world.people if p.split == "train")
    known = sim.known_words(world)
    for example in examples[:: max(1, len(examples) // 40)]:
        prompt, completion = sim.sft_texts(example, SMALL.top_k)
        request = SearchRequest(example.query, top_k=SMALL.top_k, question=f"Where was {person.name} born?",
                                golden_answers=(person.birth_city,))
        assert prompt == engine.build_prompt(request, example.mode)  # no question/answer in it
        unprimed = prompts.render(prompts.finetuned(example.query, SMALL.top_k, example.mode), None, False, False)
        target = prompts.format_documents(list(example.passages)) if example.passages else prompts.PRIME
        assert prompt + completion == unprimed + target
        ids, mask = sim.encode_example(example, tokenizer, SMALL.top_k)
        assert ids[-1] == tokenizer.eos_token_id and mask[-1] == 1
        # <unk> only for a misspelt word, and only in the prompt
        assert (tokenizer.unk_token_id in ids) == any(w not in known for w in example.query.split())
        assert tokenizer.unk_token_id not in [i for i, m in zip(ids, mask, strict=True) if m]
        trained = [i for i, m in zip(ids, mask, strict=True) if m]
        assert split_words(tokenizer.decode(trained, skip_special_tokens=True)) == split_words(completion)


def test_sft_mix_is_labelled_by_bm25(world, bm25, examples):
    by_source = {s: [e for e in examples if e.source == s] for s in ("exact", "misspelt", "random_name", "noisy")}
    assert len(by_source["misspelt"]) == SMALL.misspelt and len(by_source["random_name"]) == SMALL.random_names
    noisy_share = len(by_source["noisy"]) / len(examples)
    assert abs(noisy_share - SMALL.noisy_share) < 0.01
    train = [p for p in world.people if p.split == "train"]
    exact = [e.query for e in by_source["exact"]]
    assert all(exact.count(p.name) == SMALL.train_repeats for p in train)
    for example in by_source["exact"][:: 7] + by_source["misspelt"][:: 11]:
        assert list(example.passages) == sim.search_passages(bm25, [example.query], SMALL.top_k)[0]
    people = {p.name: p for p in world.people}
    for example in by_source["noisy"]:
        if example.query in people:  # another person: neither the birth city nor the employer leaks
            me = people[example.query]
            assert not sim.contains_answer(list(example.passages), me.birth_city)
            assert not sim.contains_answer(list(example.passages), me.employer)
            assert me.name not in example.passages[0]
    known = sim.known_words(world)
    assert all(any(w not in known for w in e.query.split()) for e in by_source["misspelt"])


def test_misspell_changes_one_letter_into_an_unknown_word(world):
    import random

    known = sim.known_words(world)
    name = world.people[0].name
    a = [sim.misspell(name, random.Random(3), known) for _ in range(2)]
    assert a[0] == a[1] != name
    changed = [(x, y) for x, y in zip(name.split(), a[0].split(), strict=True) if x != y]
    assert len(changed) == 1 and changed[0][1] not in known
    assert sum(c != d for c, d in zip(*changed[0], strict=True)) == 1


def test_sft_lowers_the_loss_and_writes_a_manifest(built):
    manifest = json.loads((built / sim.MANIFEST_NAME).read_text())
    sft = manifest["sft"]
    assert sft["loss_after"] < 0.5 * sft["loss_before"], sft
    assert sft["curve"][-1]["step"] == SMALL.sft.steps
    assert manifest["seed"] == SMALL.seed and manifest["config"]["sft"]["steps"] == SMALL.sft.steps
    assert {"torch", "transformers", "tokenizers"} <= set(manifest["versions"])
    assert manifest["engine"]["mode"] == "finetuned" and manifest["engine"]["include_question_and_answer"] is False


def test_trained_simulator_is_useful_and_query_sensitive(built):
    """Measured through build_engine on the saved files: correct queries get BM25's passage (so the answer),
    misspelt ones are no more lenient than BM25, noisy mode mostly hides the answer."""
    metrics = json.loads((built / sim.MANIFEST_NAME).read_text())["metrics"]
    assert metrics["questions"] == SMALL.measure_questions and metrics["bm25_hit"] == 1.0
    assert metrics["useful_hit"] >= 0.9 and metrics["agreement"] >= 0.8 and metrics["empty"] == 0.0, metrics
    assert metrics["leniency"] <= metrics["bm25_leniency"] + 0.15, metrics
    assert metrics["hit_when_bm25_misses"] <= 0.15, metrics
    assert metrics["noisy_leak"] <= 0.4, metrics  # a simulator that ignores the mode would leak ~useful_hit


def test_saved_simulator_serves_parseable_documents_through_build_engine(built, world):
    engine = build_engine(sim.simulator_engine_config(built, SMALL, device="cpu"))
    assert isinstance(engine, SimulatedSearchEngine) and engine.config.mode == "finetuned"
    names = [p.name for p in world.people if p.split == "train"][:4]
    requests = [SearchRequest(n, top_k=1, mode=m, question="q?", golden_answers=("a",))
                for n in names for m in ("useful", "noisy")]
    results = engine.search(requests)
    for result in results:
        assert result.extra["numbered"] and result.recovered >= 1, result.extra["raw_output"]
        words = split_words(result.documents[0].as_passage())
        assert words[:3] == ["(", "Title", ":"], words  # the passage format the policy was warm-started on
        assert not protocol.contains_tag(result.documents[0].text)


def test_policy_reads_the_same_ids_from_decoded_simulator_text(world, bm25):
    """The simulator's tokenizer decodes with single spaces ("( Title : X ) ... ."); after the engine's
    parse, the information block the policy reads encodes exactly like BM25's for the same passage."""
    tokenizer = sim.simulator_tokenizer(world)
    policy_tokenizer = build_tokenizer(tokenizer_texts(world, read_template()))
    person = next(p for p in world.people if p.split == "train")
    real = sim.search_passages(bm25, [person.name], 1)[0]
    _, completion = sim.sft_texts(sim.SimExample(person.name, "useful", tuple(real), "exact"), 1)
    ids = [*tokenizer(completion, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded == completion.strip() == real[0]  # spacing restored
    engine = SimulatedSearchEngine(_Generator(tokenizer, decoded), _engine_config())
    simulated = [d.as_passage() for d in engine.search([SearchRequest(person.name, top_k=1)])[0].documents]
    assert simulated == real

    def encode(docs: list[str]) -> list[int]:
        return policy_tokenizer(protocol.format_information(docs), add_special_tokens=False)["input_ids"]

    assert encode(simulated) == encode(real) and policy_tokenizer.unk_token_id not in encode(real)
    # the policy would not care about lost spacing either: it splits on whitespace and punctuation
    assert encode([" ".join(split_words(real[0]))]) == encode(real)


def test_engine_stop_strings_are_spellable_by_the_simulator_tokenizer(world):
    """transformers refuses a stop string it cannot spell from token strings; with space-joined decoding
    ("Doc 2 :") the engine's "Doc 2:" was refused and every simulated search failed."""
    from transformers import StopStringCriteria

    tokenizer = sim.simulator_tokenizer(world)
    StopStringCriteria(tokenizer=tokenizer, stop_strings=["Doc 2:", prompts.QUERY_HEADER])
    a, b = world.cities[:2]
    text = f"Doc 1: (Title: {a}) {a}.\nDoc 2: (Title: {b}) {b}."
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text.replace("\n", " ")


class _Fake:
    """A hand-made engine for the metric test: fixed documents per (query, mode); unknown queries get
    ``other``. Fake on purpose: it tests the arithmetic of ``measure_simulator``, not a simulator."""

    name = "fake"

    def __init__(self, docs: dict, other: list[str]) -> None:
        self.docs, self.other, self.requests = docs, other, []

    def search(self, requests: list[SearchRequest]) -> list[SearchResult]:
        self.requests += requests
        found = [self.docs.get((r.query, r.mode), self.other) for r in requests]
        return [SearchResult(r.query, [Document("", d) for d in docs]) for r, docs in zip(requests, found, strict=True)]


def test_measure_simulator_counts_hits_on_a_hand_made_case(world):
    """Questions: born-in and works-for of person A (query: A's name), country of A's birth (query: the
    city), born-in of person B. The fake simulator gets 2 of 4 right, with exactly one result in BM25's
    words; it is fully lenient on misspelt queries, where the fake BM25 finds nothing; it never leaks."""
    a, b = [p for p in world.people if p.split == "train"][:2]
    questions = world.questions("train")[:4]
    assert [q.metadata["person"] for q in questions] == [a.id, a.id, a.id, b.id]
    country = world.city_country[a.birth_city]
    ref_docs = {
        (a.name, None): [f"{a.name} was born in {a.birth_city} and works for {a.employer}."],
        (a.birth_city, None): [f"{a.birth_city} is a city of {country}."],
        (b.name, None): [f"{b.name} was born in {b.birth_city} and works for {b.employer}."],
    }
    sim_docs = {
        (a.name, "useful"): [f"{a.name} was born in {a.birth_city}."],  # born-in hit, works-for miss
        (a.birth_city, "useful"): [f"{a.birth_city} is a city of {country} ."],  # hit, same words as BM25
        (b.name, "useful"): [],  # miss, empty
    }
    lenient = [f"{a.birth_city} {a.employer} {country} {b.birth_city}"]
    noisy = ["Nothing to see."]
    simulator = _Fake(sim_docs | {(q, "noisy"): noisy for q, _ in ref_docs}, other=lenient)
    figures = sim.measure_simulator(simulator, _Fake(ref_docs, other=[]), world, questions, top_k=1, seed=0)
    assert figures == {
        "questions": 4, "useful_hit": 0.5, "bm25_hit": 1.0, "leniency": 1.0, "bm25_leniency": 0.0,
        "noisy_leak": 0.0, "hit_when_bm25_misses": 1.0, "agreement": 0.25, "empty": 0.25,
    }
    assert {r.mode for r in simulator.requests} == {"useful", "noisy"}
    misspelt = [r.query for r in simulator.requests if r.mode == "useful" and (r.query, "useful") not in sim_docs]
    assert len(misspelt) == 4 and not set(misspelt) & {a.name, b.name, a.birth_city}


def test_same_seed_same_simulator(world_dir, tmp_path):
    short = SMALL.model_copy(update={"sft": SMALL.sft.model_copy(update={"steps": 3}), "measure_questions": 4,
                                     "misspelt": 20, "random_names": 5})
    a = sim.build_simulator(world_dir, tmp_path / "a", short, log=lambda _: None)
    b = sim.build_simulator(world_dir, tmp_path / "b", short, log=lambda _: None)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert json.loads((a / "manifest.json").read_text())["metrics"] == json.loads(
        (b / "manifest.json").read_text())["metrics"]
    with pytest.raises(FileExistsError, match="overwrite"):
        sim.build_simulator(world_dir, a, short, log=lambda _: None)


def test_rl_config_trains_on_the_simulator_and_validates_on_bm25():
    config = load_config(CONFIG)
    engine = config.engine
    assert engine.kind == "simulated" and engine.mode == "finetuned"
    assert engine.include_question_and_answer is False
    assert Path(engine.generator.model) == Path("runs/toyworld/simulator")
    defaults = sim.SimulatorConfig()
    assert config.rollout.top_k_documents == defaults.top_k
    assert engine.temperature == defaults.temperature and engine.max_new_tokens >= defaults.max_new_tokens
    assert config.curriculum.kind.value == "exponential"
    assert (config.curriculum.p_start, config.curriculum.p_end) == (0.0, 0.3)
    assert config.validation.engine.kind == "bm25"
    assert Path(config.validation.engine.corpus) == Path("runs/toyworld/corpus.jsonl")
    assert config.validation.every > 0 and config.data.val


@pytest.mark.parametrize("module", [sim, "zerosearch.toyworld.tokenizer"])
def test_docstring_examples(module):
    import importlib

    module = importlib.import_module(module) if isinstance(module, str) else module
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_cli_names_a_missing_world_and_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sim.main(["--world", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    assert "world.json is missing" in capsys.readouterr().err
