"""The toy world's fine-tuned simulator, built by the general simulator-tuning pipeline.

The toy world is a corpus, a real engine (BM25) and questions like any other, so its simulator is made by
``zerosearch.simulator``: ``collect`` (a scripted policy: the queries a correct policy sends, read from a
queries file written here, plus perturbed queries) -> ``label`` (contains-answer) -> ``build`` (the
``imitate`` recipe) -> ``sft`` (``zerosearch.sft``, TRL) -> ``evaluate``. Only three things are
toy-specific: the questions come from ``world.json``, the model is a fresh tiny Llama, and its tokenizer is
word-level (:func:`simulator_tokenizer`).

Why ``imitate`` (``MINIATURE-FINDINGS.md``, "Second round"): a simulator handed the gold answer returns it
even for bad queries, RL then rewards bad queries and nothing transfers to the real engine. This one never
sees the answer and is *query-sensitive*: in useful mode it writes what BM25 returns for the query, for
exact and misspelt/other-person queries alike; in noisy mode it writes BM25's results for a corrupted
query (another person, a city of another country).

The tokenizer decodes with the original spacing (``tokenizer.build_spaced_tokenizer``): the output is
parsed (``simulator_parse``) and cut at the engine's stop string ``Doc k+1:``, which transformers must be
able to spell from token strings. So the simulated passage is BM25's string itself, and the policy reads
the same ids it was warm-started on (checked in the tests).

    python -m zerosearch.toyworld.simulator --world runs/toyworld [--out runs/toyworld/simulator] [--seed 0]

writes ``simulator/`` (model + tokenizer, ``save_pretrained`` form, ``simulator.yaml``, loadable by
``build_engine`` through :func:`simulator_engine_config`), the pipeline's intermediate files under
``simulator/pipeline/`` and ``simulator/manifest.json`` (config, versions, SFT record, figures).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zerosearch.data.types import QAExample
from zerosearch.provenance import package_versions
from zerosearch.search import simulator_prompts as prompts
from zerosearch.search.factory import SimulatedEngineConfig
from zerosearch.simulator.perturb import PerturbationKind
from zerosearch.toyworld.model import TinyModelConfig
from zerosearch.toyworld.world import World, question_kind

MANIFEST_NAME = "manifest.json"
MAX_K = 10
#: Tokens a simulated toy passage takes at most, with its "Doc i:" marker (a person passage is ~22).
TOKENS_PER_PASSAGE = 28
FIGURES = ("useful hit {useful_hit:.3f} | leniency {leniency:.3f} (BM25 {reference_leniency:.3f}) | noisy leak "
           "{noisy_leak:.3f} | hit when BM25 misses {hit_when_reference_misses:.3f} | agreement {agreement:.3f}")


class ToySFTConfig(BaseModel):
    """Optimisation of the simulator's SFT (passed to ``zerosearch.sft``)."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1200, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    min_lr_rate: float = Field(
        0.1, ge=0.0, le=1.0, description="cosine decay ends at this share of the peak (as the old toy loop did)")
    warmup_steps: int = Field(30, ge=0)
    log_every: int = Field(100, ge=1)
    group_by_length: bool = Field(
        False, description="batch rows of similar length together (TRL's sampler); on (seed 0) it bunched the short "
        "city rows into few batches and city -> country was under-learned: useful hit 0.81 instead of 0.997")


class SimulatorConfig(BaseModel):
    """Collection, data mix, model and SFT settings of the toy simulator."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="seeds perturbations, data mix, initialisation, batch order, measurement")
    recipe: Literal["imitate", "hinted"] = Field(
        "imitate", description="imitate: no answer hint, query-sensitive (default); hinted: the paper's prompt "
        "style, the gold answer handed to the simulator (the demo's comparison arm)")
    top_k: int = Field(1, ge=1, description="documents per query (match the RL config's rollout.top_k_documents)")
    model: TinyModelConfig = Field(default_factory=TinyModelConfig)
    splits: list[str] = Field(
        default_factory=lambda: ["train", "warmstart"],
        description="people whose questions are collected: the RL (train) people and the warm-start people")
    perturbations: list[PerturbationKind] = Field(
        default_factory=lambda: ["misspelt", "other_entity"],
        description="perturbed queries per exact query, labelled by BM25 (misspelt name, another person)")
    exact_repeats: int = Field(2, ge=1, description="copies of each exact query's useful example")
    noisy_share: float = Field(0.35, gt=0.0, lt=1.0, description="share of noisy-mode examples in the mix")
    sft: ToySFTConfig = Field(default_factory=ToySFTConfig)
    # serving and measurement
    temperature: float = Field(0.8, ge=0.0, description="simulator sampling temperature (use the RL config's)")
    max_new_tokens: int = Field(32, ge=1, description="generation budget; one toy passage is ~18 tokens")
    measure_questions: int | None = Field(300, ge=1, description="train questions measured (None: all)")
    num_threads: int | None = Field(1, ge=1, description="torch CPU threads (1 is fastest at this size)")

    @model_validator(mode="after")
    def _check_budget(self) -> SimulatorConfig:
        # A cut-off output is not k documents: the policy reads half a passage (measured: format_valid 0.0 and
        # RL that stopped answering, with 32 tokens for top-3).
        if self.max_new_tokens < TOKENS_PER_PASSAGE * self.top_k:
            raise ValueError(f"max_new_tokens {self.max_new_tokens} cannot hold top_k {self.top_k} toy passages "
                             f"(~{TOKENS_PER_PASSAGE} tokens each); raise it to >= {TOKENS_PER_PASSAGE * self.top_k}")
        return self


# ---- world, tokenizer, queries ----------------------------------------------------------------------------
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
    labels = [prompts.render(prompts.finetuned("x", top_k, m, question=q, answers=a), None, False)
              for m in ("useful", "noisy") for q, a in ((None, None), ("x", ("x",)))]
    texts = [*tokenizer_texts(world, read_template()), *labels, prompts.format_documents(["x"] * ks)]
    return build_spaced_tokenizer(texts)


def policy_queries(world: World, questions: list[QAExample], answer_only: bool = False) -> list[dict[str, str]]:
    """The queries a correct policy sends per question, as queries-file rows (``World.hop_queries``: the
    person's name, then the city or the company and its city for multi-hop kinds). ``answer_only``: just
    the last query, whose results hold the answer — what the measurement asks about."""
    people = {p.id: p for p in world.people}
    rows = []
    for q in questions:
        if q.metadata.get("person") not in people:
            raise ValueError(f"question {q.id!r} names no person of this world; pass world.questions(split)")
        queries = world.hop_queries(people[q.metadata["person"]], question_kind(q))
        rows += [{"question_id": q.id, "query": text} for text in (queries[-1:] if answer_only else queries)]
    return rows


def _write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


# ---- the pipeline ------------------------------------------------------------------------------------------
def simulator_engine_config(path: str | Path, config: SimulatorConfig, device: str = "auto") -> SimulatedEngineConfig:
    """How RL serves the saved simulator: the imitate recipe's engine settings, the configured sampling."""
    from zerosearch.llm.factory import GeneratorConfig
    from zerosearch.simulator.build import engine_settings

    return SimulatedEngineConfig(
        generator=GeneratorConfig(model=str(path), dtype="float32", device=device, batch_size=64),
        temperature=config.temperature, max_new_tokens=config.max_new_tokens, seed=config.seed,
        **engine_settings(config.recipe))


def collect_records(world: World, bm25: Any, work: Path, config: SimulatorConfig) -> list:
    """Collect (resumable) the SFT records: the configured splits' questions, their queries and perturbations."""
    from zerosearch.simulator.collect import CollectConfig, collect, read_records

    questions = [q for split in config.splits for q in world.questions(split)]  # type: ignore[arg-type]
    queries = _write_jsonl(policy_queries(world, questions), work / "sft_queries.jsonl")
    collect_config = CollectConfig(policy="queries-file", queries_file=queries, top_k=config.top_k,
                                   perturbations=config.perturbations, seed=config.seed, batch_size=256)
    return read_records(collect(questions, bm25, work / "collect", collect_config, progress=False))


def measure(engines: dict[str, Any], bm25: Any, world: World, work: Path, config: SimulatorConfig) -> dict[str, Any]:
    """The pipeline's evaluation of ``engines`` (name -> simulated engine) on the RL (train) questions: the
    answer query and a misspelt one each (``evaluate_simulators``' output, BM25 as the reference row)."""
    from zerosearch.simulator.collect import CollectConfig, collect, read_records
    from zerosearch.simulator.evaluate import evaluate_simulators

    questions = world.questions("train")[: config.measure_questions]
    queries = _write_jsonl(policy_queries(world, questions, answer_only=True), work / "measure_queries.jsonl")
    collect_config = CollectConfig(policy="queries-file", queries_file=queries, top_k=config.top_k,
                                   perturbations=["misspelt"], seed=config.seed + 1, batch_size=256)
    records = read_records(collect(questions, bm25, work / "measure", collect_config, progress=False))
    return evaluate_simulators(records, engines, config.top_k, batch_size=256, log=lambda _: None)


def build_simulator(
    world_dir: str | Path, out_dir: str | Path | None = None, config: SimulatorConfig | None = None,
    *, overwrite: bool = False, log: Any = print,
) -> Path:
    """Run the pipeline for the world in ``world_dir``; the simulator goes to ``out_dir`` (default
    ``world_dir/simulator``) with its manifest; returns ``out_dir``."""
    import torch

    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.search.factory import build_engine
    from zerosearch.sft import SFTRunConfig
    from zerosearch.sft.trainer import prepare_output
    from zerosearch.simulator.build import BuildConfig, build_dataset
    from zerosearch.simulator.label import label_records, label_report
    from zerosearch.simulator.tune import tune_simulator, write_engine_file
    from zerosearch.toyworld.model import build_tiny_llama

    config = config or SimulatorConfig()
    world_dir = Path(world_dir)
    world = load_world(world_dir)
    out = Path(out_dir) if out_dir is not None else world_dir / "simulator"
    prepare_output(out, overwrite)
    work = out / "pipeline"
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    bm25 = BM25SearchEngine(world_dir / "corpus.jsonl", progress=False)
    records = label_records(collect_records(world, bm25, work, config), ["contains-answer"])
    build = BuildConfig(recipe=config.recipe, top_k=config.top_k, noisy_share=config.noisy_share,
                        exact_repeats=config.exact_repeats, seed=config.seed)
    build_dataset(records, work / "dataset", build)
    tokenizer = simulator_tokenizer(world, config.top_k)
    model = build_tiny_llama(tokenizer, config.model.model_copy(update={"seed": config.seed}))
    sft = SFTRunConfig(model="toyworld-tiny-llama", output_dir=work / "model", max_steps=config.sft.steps,
                       batch_size=config.sft.batch_size, learning_rate=config.sft.learning_rate,
                       lr_scheduler="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": config.sft.min_lr_rate},
                       warmup_steps=min(config.sft.warmup_steps, config.sft.steps - 1),
                       logging_steps=config.sft.log_every, seed=config.seed,
                       num_threads=config.num_threads, max_length=config.model.max_position_embeddings,
                       use_cpu=True, probe_rows=256, group_by_length=config.sft.group_by_length)
    result = tune_simulator(work / "dataset", sft, model=model, tokenizer=tokenizer, log=log,
                            max_new_tokens=config.max_new_tokens)
    for item in result.output_dir.iterdir():  # the simulator's files at the top of out/
        item.rename(out / item.name)
    engine_config = simulator_engine_config(out.resolve(), config)
    write_engine_file(out, engine_config, config.recipe)
    start = time.perf_counter()
    evaluation = measure({"simulator": build_engine(engine_config)}, bm25, world, work, config)
    metrics = evaluation["table"]["simulator"] | {
        "bm25_hit": evaluation["table"]["reference"]["useful_hit"], "questions": config.measure_questions}
    manifest = {
        "config": config.model_dump(mode="json"), "seed": config.seed, "versions": package_versions(),
        "world": str(world_dir), "engine": engine_config.model_dump(mode="json"),
        "labels": label_report(records), "build": json.loads((work / "dataset" / "build_record.json").read_text()),
        "sft": json.loads((out / "sft_record.json").read_text()),
        "metrics": metrics, "measure_seconds": time.perf_counter() - start,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1), "utf-8")
    log(f"simulator saved in {out}: SFT {result.seconds:.0f} s, "
        f"loss {result.loss_before:.3f} -> {result.loss_after:.3f}")
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
