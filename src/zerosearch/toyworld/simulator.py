"""A tiny fine-tuned simulator for the toy world, so toy RL can run the ZeroSearch path: train against a
simulated engine, evaluate with real BM25.

Why this design (``MINIATURE-FINDINGS.md``, "Second round"): a simulator handed the gold answer returns it
even for bad queries, RL then rewards bad queries and nothing transfers to the real engine. This one never
sees the answer (``include_question_and_answer: false``) and is *query-sensitive*: in useful mode it writes
what real BM25 returns for the query (top-k ``Document.as_passage()`` strings, the format the policy was
warm-started on); in noisy mode it writes BM25's results for a corrupted query (another person, a city of
another country, another company). Its SFT mix: exact queries about the RL (train) people, repeated, plus
warm-start people, cities and companies; misspelt-name and random-name queries labelled with what BM25
really returns for them; and noisy examples. Prompts and targets come from ``simulator_prompts.finetuned``,
``render`` and ``format_documents``, the functions the serving engine uses; the loss is on the document
tokens (and EOS) only.

The simulator has its own word-level tokenizer (``tokenizer.build_spaced_tokenizer``) over every word the
policy can write plus the prompt's labels. Unlike the policy's, it decodes with the original spacing: its
output is text that is parsed (``simulator_parse``) and cut at the engine's stop string ``Doc k+1:``, which
transformers must be able to spell from token strings (with space-joined decoding it refuses the stop
string outright). So the simulated passage is BM25's string itself, and the policy, whose tokenizer splits
on whitespace and punctuation, reads the same ids it was warm-started on (checked in the tests).

    python -m zerosearch.toyworld.simulator --world runs/toyworld [--out runs/toyworld/simulator] [--seed 0]

writes ``simulator/`` (model + tokenizer, ``save_pretrained`` form, loadable by ``build_engine`` through
:func:`simulator_engine_config`) and ``simulator/manifest.json`` (config, versions, SFT losses, figures of
:func:`measure_simulator`). Default settings take about 2-3 minutes on one CPU thread.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zerosearch.data.types import QAExample
from zerosearch.provenance import package_versions
from zerosearch.rewards import normalize_answer
from zerosearch.search import simulator_prompts as prompts
from zerosearch.search.base import NoiseMode, SearchEngine, SearchRequest
from zerosearch.search.factory import SimulatedEngineConfig
from zerosearch.toyworld.model import TinyModelConfig
from zerosearch.toyworld.warmstart import SFTConfig
from zerosearch.toyworld.world import Person, World, question_kind

MANIFEST_NAME = "manifest.json"
MAX_K = 10
FIGURES = ("useful hit {useful_hit:.3f} | leniency {leniency:.3f} (BM25 {bm25_leniency:.3f}) | noisy leak "
           "{noisy_leak:.3f} | hit when BM25 misses {hit_when_bm25_misses:.3f} | agreement {agreement:.3f}")
_VOWELS, _CONSONANTS = "aeiou", "bdfgklmnprstvz"


class SimulatorConfig(BaseModel):
    """Data mix, model and SFT settings of the toy simulator."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="seeds data, initialisation, batch order and the measurement")
    top_k: int = Field(1, ge=1, description="documents per query (match the RL config's rollout.top_k_documents)")
    model: TinyModelConfig = Field(default_factory=TinyModelConfig)
    # data mix
    train_repeats: int = Field(4, ge=0, description="copies of the exact query of each RL (train split) person")
    warmstart_repeats: int = Field(1, ge=0, description="copies of the exact query of each warm-start person")
    city_repeats: int = Field(
        16, ge=0, description="copies of each city query (the 2-hop second search); at 4, city -> country was "
        "not learned in 1,500 steps (seed 0: useful hit 0.41 on country questions, 1.0 on the others)")
    company_repeats: int = Field(4, ge=0, description="copies of each company query")
    misspelt: int = Field(
        1000, ge=0, description="queries with one letter changed in one word, labelled by BM25 (the word becomes "
        "<unk>, so few distinct prompts: 3,000 were learned to loss 0.002, more than needed)")
    random_names: int = Field(600, ge=0, description="random first + last name queries, labelled by BM25")
    noisy_share: float = Field(0.35, ge=0.0, lt=1.0, description="share of noisy-mode examples in the mix")
    sft: SFTConfig = Field(
        default_factory=lambda: SFTConfig(steps=1200, log_every=250),
        description="optimisation (its seed follows ``seed``); 1,200 x 32 reached useful hit 0.97 on seed 0")
    # serving and measurement
    temperature: float = Field(0.8, ge=0.0, description="simulator sampling temperature (use the RL config's)")
    max_new_tokens: int = Field(32, ge=1, description="generation budget; one toy passage is ~18 tokens")
    measure_questions: int | None = Field(300, ge=1, description="train questions measured (None: all)")
    num_threads: int | None = Field(1, ge=1, description="torch CPU threads (1 is fastest at this size)")


@dataclass(frozen=True)
class SimExample:
    """One SFT example: the query, the requested kind, the target passages and where it came from."""

    query: str
    mode: NoiseMode
    passages: tuple[str, ...]
    source: str  # exact | misspelt | random_name | noisy


# ---- world and data -----------------------------------------------------------------------------------
def load_world(root: str | Path) -> World:
    """The world described by ``root/world.json`` (a directory written by ``toyworld.build``)."""
    root = Path(root)
    for name in ("world.json", "corpus.jsonl"):
        if not (root / name).is_file():
            raise FileNotFoundError(
                f"{root / name} is missing: build the world first (python -m zerosearch.toyworld.build --out {root})")
    try:
        return World.from_record(json.loads((root / "world.json").read_text("utf-8")))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{root / 'world.json'} is not a world this version can read ({err}); rebuild it") from err


def simulator_tokenizer(world: World, top_k: int = 1) -> Any:
    """Spacing-preserving word-level tokenizer over everything the policy can write (so every query it
    sends is covered) plus the fine-tuned prompt's labels and ``Doc i`` markers."""
    from zerosearch.toyworld.build import read_template, tokenizer_texts
    from zerosearch.toyworld.tokenizer import build_spaced_tokenizer

    # Numbers up to MAX_K + 1, so "Number of results: k" and the stop string "Doc k+1:" meet no <unk>.
    ks = max(top_k, MAX_K) + 1
    labels = [prompts.render(prompts.finetuned("x", top_k, m), None, False) for m in ("useful", "noisy")]
    texts = [*tokenizer_texts(world, read_template()), *labels, prompts.format_documents(["x"] * ks)]
    return build_spaced_tokenizer(texts)


def misspell(query: str, rng: random.Random, known: set[str]) -> str:
    """``query`` with one letter of one word swapped for another of its class (vowel/consonant), so the
    word is no longer a word of the world (``known``)."""
    words = query.split()
    for _ in range(100):
        i = rng.randrange(len(words))
        pos = rng.randrange(1, len(words[i])) if len(words[i]) > 1 else 0
        letter = words[i][pos].lower()
        pool = _VOWELS if letter in _VOWELS else _CONSONANTS
        new = words[i][:pos] + rng.choice(pool.replace(letter, "")) + words[i][pos + 1 :]
        if new not in known:
            return " ".join([*words[:i], new, *words[i + 1 :]])
    raise ValueError(f"could not misspell {query!r} into an unknown word")


def known_words(world: World) -> set[str]:
    """Every entity word of the world (names, cities, countries, companies)."""
    return {*world.first_names, *world.last_names, *world.countries, *world.cities, *world.companies}


def search_passages(engine: SearchEngine, queries: list[str], k: int, mode: NoiseMode | None = None) -> list[list[str]]:
    """``as_passage()`` strings of ``engine``'s top-k for each query, in one batched call."""
    results = engine.search([SearchRequest(query=q, top_k=k, mode=mode) for q in queries])
    return [[d.as_passage() for d in r.documents] for r in results]


def _corrupt(query: str, world: World, people: dict[str, Person], rng: random.Random) -> str:
    """The query whose BM25 results make a noisy answer to ``query`` (on topic, answer left out)."""
    if query in people:
        me = people[query]
        others = [p for p in world.people if p.birth_city != me.birth_city and p.employer != me.employer]
        return rng.choice(others).name
    if query in world.city_country:
        return rng.choice([c for c, k in world.city_country.items() if k != world.city_country[query]])
    if query in world.company_city:
        return rng.choice([c for c in world.companies if c != query])
    return rng.choice(world.people).name


def build_sft_examples(world: World, bm25: SearchEngine, config: SimulatorConfig) -> list[SimExample]:
    """The SFT mix (see the module docstring), every target taken from real BM25."""
    rng = random.Random(config.seed)
    people = {p.name: p for p in world.people}
    repeats = {"train": config.train_repeats, "warmstart": config.warmstart_repeats}
    exact = [p.name for p in world.people for _ in range(repeats.get(p.split, 0))]
    exact += [c for c in world.cities for _ in range(config.city_repeats)]
    exact += [c for c in world.companies for _ in range(config.company_repeats)]
    bases = sorted(set(exact)) or [p.name for p in world.people]
    known = known_words(world)
    misspelt = [misspell(rng.choice(bases), rng, known) for _ in range(config.misspelt)]
    randoms = [f"{rng.choice(world.first_names)} {rng.choice(world.last_names)}" for _ in range(config.random_names)]
    useful = [(q, "exact") for q in exact] + [(q, "misspelt") for q in misspelt] + [(q, "random_name") for q in randoms]
    n_noisy = round(config.noisy_share / (1 - config.noisy_share) * len(useful))
    noisy = [rng.choice(useful)[0] for _ in range(n_noisy)]
    corrupted = [_corrupt(q, world, people, rng) for q in noisy]
    labels = search_passages(bm25, [q for q, _ in useful] + corrupted, config.top_k)
    queries = [(q, "useful", src) for q, src in useful] + [(q, "noisy", "noisy") for q in noisy]
    return [SimExample(q, mode, tuple(lab), src) for (q, mode, src), lab in zip(queries, labels, strict=True)]


def sft_texts(example: SimExample, k: int) -> tuple[str, str]:
    """(prompt as the engine renders it, ending in ``Doc 1:``; the completion that follows it).

    ``prompt + completion`` is the un-primed prompt followed by ``format_documents(passages)``; with no
    passages the completion is empty (the parser then finds no document, like BM25's empty result).
    """
    prompt = prompts.render(prompts.finetuned(example.query, k, example.mode), None, use_chat_template=False)
    target = prompts.format_documents(list(example.passages)) if example.passages else prompts.PRIME
    if not target.startswith(prompts.PRIME):
        raise ValueError(f"format_documents output {target[:20]!r} does not start with {prompts.PRIME!r}")
    return prompt, target[len(prompts.PRIME) :]


def encode_example(example: SimExample, tokenizer: Any, k: int) -> tuple[list[int], list[int]]:
    """(ids, mask) of prompt + completion + EOS; mask 1 on the completion and EOS only."""
    prompt, completion = sft_texts(example, k)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = [*tokenizer(completion, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    return prompt_ids + target_ids, [0] * len(prompt_ids) + [1] * len(target_ids)


# ---- training -----------------------------------------------------------------------------------------
def train_simulator(
    model: Any, rows: list[tuple[list[int], list[int]]], pad_id: int, config: SimulatorConfig, log: Any = print
) -> list[dict[str, float]]:
    """SFT ``model`` in place on ``rows`` (the warm-start's loop, loss on documents only); the loss curve."""
    from zerosearch.toyworld.warmstart import train_rows

    sft = config.sft.model_copy(update={"seed": config.seed})
    return train_rows(model, rows, pad_id, sft, log, name="simulator").curve


# ---- measurement ----------------------------------------------------------------------------------------
def contains_answer(passages: list[str], answer: str) -> bool:
    """Whether the normalised answer occurs as whole words in one of the passages.

    >>> contains_answer(["(Title: Kovani Tesu) Kovani Tesu was born in Bavoru."], "bavoru")
    True
    >>> contains_answer(["Bavorus is a city of Kesa."], "Bavoru")
    False
    """
    target = f" {normalize_answer(answer)} "
    return any(target in f" {normalize_answer(p)} " for p in passages)


def answer_queries(world: World, questions: list[QAExample]) -> list[tuple[str, str]]:
    """(the query whose results hold the answer, the answer) per question: the person's name for born-in
    and works-for, the birth city for country of birth (its second hop)."""
    people = {p.id: p for p in world.people}
    pairs = []
    for q in questions:
        if q.metadata.get("person") not in people:
            raise ValueError(f"question {q.id!r} names no person of this world; pass world.questions(split)")
        person = people[q.metadata["person"]]
        query = person.birth_city if question_kind(q) == "birth_country" else person.name
        pairs.append((query, q.golden_answers[0]))
    return pairs


def _rate(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def measure_simulator(
    engine: SearchEngine, reference: SearchEngine, world: World, questions: list[QAExample], top_k: int = 1,
    seed: int = 0,
) -> dict[str, float]:
    """The miniature's figures for ``engine`` (a simulator) against ``reference`` (real BM25).

    ``useful_hit``: answer in the useful-mode results of the correct query. ``leniency``: the same for a
    misspelt query (``bm25_leniency``: the real engine's figure). ``noisy_leak``: answer in the noisy-mode
    results of the correct query. ``hit_when_bm25_misses``: misspelt queries where BM25 misses but the
    simulator hits (the early warning; nan if BM25 never misses). ``agreement``: useful results that split
    into the same words as BM25's (what the policy reads). ``empty``: useful results with no document.
    """
    from zerosearch.toyworld.tokenizer import split_words

    pairs = answer_queries(world, questions)
    rng = random.Random(seed)
    known = known_words(world)
    correct, answers = [q for q, _ in pairs], [a for _, a in pairs]
    misspelt = [misspell(q, rng, known) for q in correct]
    sim = search_passages(engine, correct, top_k, "useful")
    sim_bad = search_passages(engine, misspelt, top_k, "useful")
    sim_noisy = search_passages(engine, correct, top_k, "noisy")
    ref, ref_bad = search_passages(reference, correct, top_k), search_passages(reference, misspelt, top_k)

    def hits(docs: list[list[str]]) -> list[bool]:
        return [contains_answer(d, a) for d, a in zip(docs, answers, strict=True)]

    bad_hits, ref_bad_hits = hits(sim_bad), hits(ref_bad)
    return {
        "questions": len(pairs),
        "useful_hit": _rate(hits(sim)),
        "bm25_hit": _rate(hits(ref)),
        "leniency": _rate(bad_hits),
        "bm25_leniency": _rate(ref_bad_hits),
        "noisy_leak": _rate(hits(sim_noisy)),
        "hit_when_bm25_misses": _rate([s for s, r in zip(bad_hits, ref_bad_hits, strict=True) if not r]),
        "agreement": _rate([[split_words(p) for p in s] == [split_words(p) for p in r]
                            for s, r in zip(sim, ref, strict=True)]),
        "empty": _rate([not d for d in sim]),
    }


# ---- build --------------------------------------------------------------------------------------------
def simulator_engine_config(path: str | Path, config: SimulatorConfig, device: str = "auto") -> SimulatedEngineConfig:
    """How RL serves the saved simulator: fine-tuned mode, no answer hint, the configured sampling."""
    from zerosearch.llm.factory import GeneratorConfig

    return SimulatedEngineConfig(
        generator=GeneratorConfig(model=str(path), dtype="float32", device=device, batch_size=64),
        mode="finetuned", include_question_and_answer=False, temperature=config.temperature,
        max_new_tokens=config.max_new_tokens, seed=config.seed)


def build_simulator(
    world_dir: str | Path, out_dir: str | Path | None = None, config: SimulatorConfig | None = None,
    *, overwrite: bool = False, log: Any = print,
) -> Path:
    """SFT a simulator for the world in ``world_dir``, save it to ``out_dir`` (default ``world_dir/simulator``),
    measure it through ``build_engine`` and write the manifest; returns ``out_dir``."""
    import torch

    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.search.factory import build_engine
    from zerosearch.toyworld.build import prepare_dir
    from zerosearch.toyworld.model import build_tiny_llama
    from zerosearch.toyworld.warmstart import rows_loss

    config = config or SimulatorConfig()
    world_dir = Path(world_dir)
    world = load_world(world_dir)
    out = Path(out_dir) if out_dir is not None else world_dir / "simulator"
    prepare_dir(out, overwrite)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    bm25 = BM25SearchEngine(world_dir / "corpus.jsonl", progress=False)
    tokenizer = simulator_tokenizer(world, config.top_k)
    examples = build_sft_examples(world, bm25, config)
    rows = [encode_example(e, tokenizer, config.top_k) for e in examples]
    model = build_tiny_llama(tokenizer, config.model.model_copy(update={"seed": config.seed}))
    probe = random.Random(config.seed).sample(rows, min(512, len(rows)))
    loss_before = rows_loss(model, probe, tokenizer.pad_token_id, batch_size=128)
    start = time.perf_counter()
    curve = train_simulator(model, rows, tokenizer.pad_token_id, config, log)
    sft_seconds = time.perf_counter() - start
    loss_after = rows_loss(model, probe, tokenizer.pad_token_id, batch_size=128)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    engine_config = simulator_engine_config(out, config)
    questions = world.questions("train")[: config.measure_questions]
    start = time.perf_counter()
    metrics = measure_simulator(build_engine(engine_config), bm25, world, questions, config.top_k, config.seed)
    manifest = {
        "config": config.model_dump(mode="json"), "seed": config.seed, "versions": package_versions(),
        "world": str(world_dir), "engine": engine_config.model_dump(mode="json"),
        "sizes": {"examples": len(examples), "vocab": len(tokenizer),
                  "parameters": sum(p.numel() for p in model.parameters()),
                  **{f"{s}_examples": sum(e.source == s for e in examples)
                     for s in ("exact", "misspelt", "random_name", "noisy")}},
        "sft": {"loss_before": loss_before, "loss_after": loss_after, "seconds": sft_seconds, "curve": curve},
        "metrics": metrics, "measure_seconds": time.perf_counter() - start,
        "examples_preview": [asdict(e) for e in examples[:: max(1, len(examples) // 8)]],
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1), "utf-8")
    log(f"simulator saved in {out}: SFT {sft_seconds:.0f} s, loss {loss_before:.3f} -> {loss_after:.3f}")
    log(FIGURES.format(**metrics))
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m zerosearch.toyworld.simulator --world DIR [--out DIR] [--seed N] [--steps N] [--overwrite]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", required=True, help="a toy world directory (corpus.jsonl, world.json)")
    parser.add_argument("--out", default=None, help="where to save the simulator (default: WORLD/simulator)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="SFT steps (default: SimulatorConfig)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    args = parser.parse_args(argv)
    config = SimulatorConfig(seed=args.seed)
    if args.steps is not None:
        config = config.model_copy(update={"sft": config.sft.model_copy(update={"steps": args.steps})})
    try:
        build_simulator(args.world, args.out, config, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        parser.error(str(err))  # exit code 2 with the reason, not a traceback


if __name__ == "__main__":
    main()
