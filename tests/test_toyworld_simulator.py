"""The toy world's fine-tuned simulator, built by the general simulator pipeline: SFT data in the engine's
own format, a short real SFT through TRL, loading through ``build_engine``, what the policy reads, the
measurement and the RL config.

Real components throughout (a small seeded world, real BM25, a tiny Llama trained for 600 steps, the real
``SimulatedSearchEngine``), except where a test says otherwise. The simulator's *quality* at the default
settings is measured by ``python -m zerosearch.toyworld.simulator`` (docs/simulator.md), not here.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

from zerosearch import protocol
from zerosearch.llm.base import Completion
from zerosearch.search import simulator_prompts as prompts
from zerosearch.search.base import SearchRequest
from zerosearch.search.bm25 import BM25SearchEngine
from zerosearch.search.factory import build_engine
from zerosearch.search.simulated import SimulatedSearchEngine
from zerosearch.simulator import contains_answer, load_built, read_records
from zerosearch.toyworld import simulator as sim
from zerosearch.toyworld.build import ToyWorldPaths, read_template, tokenizer_texts, write_world_files
from zerosearch.toyworld.model import TinyModelConfig
from zerosearch.toyworld.tokenizer import build_tokenizer, split_words
from zerosearch.toyworld.world import WorldConfig, generate_world
from zerosearch.train.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "toy-reinforce_pp-simulated.yaml"
SMALL_WORLD = WorldConfig(first_names=10, last_names=10, countries=3, cities_per_country=3, companies=4,
                          warmstart_people=60, train_people=20, test_people=20)
# ~1.5 min of SFT on one busy thread: enough for the small world's 20 RL people and 9 cities to be learned
# (greedy useful hit 1.0 at 600 steps: measured), so the test can check behaviour, not just format.
SMALL = sim.SimulatorConfig(
    model=TinyModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    splits=["train"], exact_repeats=4, temperature=0.0, measure_questions=30,
    sft=sim.ToySFTConfig(steps=600, batch_size=16, learning_rate=3e-3, warmup_steps=10, log_every=100),
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


def test_the_pipeline_built_the_sft_data_from_bm25_in_the_engines_format(built, world, bm25):
    """One code path: the simulator's data is the general pipeline's output (collect -> label -> build
    imitate). Every prompt is what the serving engine renders (no question/answer in it), useful targets are
    BM25's results for the query, noisy targets hold none of the question's answers."""
    work = built / "pipeline"
    records = read_records(work / "collect")
    by_query = {(r.question_id, r.query): r for r in records}
    for record in records[::17]:
        assert record.documents == [d.as_passage() for d in bm25.search([SearchRequest(record.query, 1)])[0].documents]
    queries = [r.query for r in records if r.kind == "exact"]
    train = [p for p in world.people if p.split == "train"]
    assert all(p.name in queries for p in train) and all(p.birth_city in queries for p in train)
    dataset, record = load_built(work / "dataset")
    assert record["config"]["recipe"] == "imitate" and record["counts"]["useful/misspelt"] > 0
    engine = SimulatedSearchEngine(_Generator(sim.simulator_tokenizer(world), ""), _engine_config())
    for row in dataset.select(range(0, len(dataset), max(1, len(dataset) // 40))):
        source = by_query[(row["question_id"], row["query"])]
        request = SearchRequest(row["query"], top_k=1, question=source.question,
                                golden_answers=tuple(source.golden_answers))
        assert row["prompt"] == engine.build_prompt(request, row["mode"])
        if row["mode"] == "useful":
            assert row["prompt"] + row["completion"] == row["prompt"][: -len(prompts.PRIME)] + \
                prompts.format_documents(source.documents)
        else:
            assert not contains_answer([row["completion"]], source.golden_answers)
    noisy = sum(m == "noisy" for m in dataset["mode"]) / len(dataset)
    assert abs(noisy - SMALL.noisy_share) < 0.01


def test_sft_lowers_the_loss_and_writes_a_manifest(built):
    manifest = json.loads((built / sim.MANIFEST_NAME).read_text())
    sft = manifest["sft"]
    assert sft["loss_after"] < 0.2 * sft["loss_before"], sft
    assert sft["curve"][-1]["step"] == SMALL.sft.steps and {"trl", "transformers"} <= set(sft["versions"])
    assert manifest["seed"] == SMALL.seed and manifest["config"]["sft"]["steps"] == SMALL.sft.steps
    assert manifest["engine"]["mode"] == "finetuned" and manifest["engine"]["include_question_and_answer"] is False
    assert manifest["labels"]["balance"]["contains-answer"]["useful"] > 0


def test_trained_simulator_is_useful_and_query_sensitive(built):
    """Measured by the pipeline's evaluate through build_engine on the saved files: correct queries get
    BM25's passage (so the answer), misspelt ones are no more lenient than BM25, noisy mode mostly hides
    the answer."""
    metrics = json.loads((built / sim.MANIFEST_NAME).read_text())["metrics"]
    assert metrics["questions"] == SMALL.measure_questions and metrics["bm25_hit"] == 1.0
    assert metrics["useful_hit"] >= 0.9 and metrics["agreement"] >= 0.8, metrics
    assert metrics["leniency"] <= metrics["reference_leniency"] + 0.15, metrics
    assert metrics["hit_when_reference_misses"] <= 0.15, metrics
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
    real = [d.as_passage() for d in bm25.search([SearchRequest(person.name, top_k=1)])[0].documents]
    _, completion = prompts.finetuned_sft_pair(person.name, 1, "useful", real)
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


def test_same_seed_same_simulator(world_dir, tmp_path):
    short = SMALL.model_copy(update={"sft": SMALL.sft.model_copy(update={"steps": 3}), "measure_questions": 4})
    a = sim.build_simulator(world_dir, tmp_path / "a", short, log=lambda _: None)
    b = sim.build_simulator(world_dir, tmp_path / "b", short, log=lambda _: None)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    figures = [json.loads((d / "manifest.json").read_text())["metrics"] for d in (a, b)]
    for f in figures:
        f.pop("seconds_per_query")
    assert figures[0] == figures[1]
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
    assert config.shadow_engine.kind == "bm25" and config.shadow_engine.corpus == config.validation.engine.corpus


@pytest.mark.parametrize("module", ["zerosearch.toyworld.tokenizer", "zerosearch.search.simulator_prompts"])
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
