"""Build a complete toy world into one directory: corpus, questions, tokenizer and warm-started policy.

Everything the toy RL runs need, from one seed, offline, in a few minutes on one CPU core. The warm-start
is two stages of :func:`zerosearch.warmstart.stages.run_stages` (TRL): *skills* (correct episodes and
practice) stops once the teacher-forced reading check passes for every question kind; *habits* (the
imperfect mix) runs a fixed number of steps. The demo's world (``zerosearch/demo/worlds/toy.yaml``) reads
after ~600 steps of 16 episodes, about 3 CPU-minutes in all (``docs/demo.md``)::

    python -m zerosearch.toyworld.build --out runs/toyworld --seed 0

or from Python (``zerosearch demo`` calls its two halves, :func:`write_world` and
:func:`warm_start_policy`, so the simulators can be built beside the warm-start)::

    paths = build_toy_world("runs/toyworld", seed=0)
    paths.policy, paths.corpus, paths.train, paths.test

Layout of ``out_dir``: ``corpus.jsonl`` (wiki-18 rows), ``world.json`` (every entity and fact),
``warmstart.jsonl`` / ``train.jsonl`` / ``test.jsonl`` (questions: ``id``, ``question``,
``golden_answers``, ``kind``), ``template.txt`` (the short raw prompt), ``demonstrations.jsonl`` (the
warm-start episodes of both stages, for inspection), ``policy/`` (model and tokenizer, ``save_pretrained``
form), ``stages/skills/`` (the model after the skills stage) and ``manifest.json`` (configs, versions,
warm-start losses, reading checks, search probability, timings). The same seed gives byte-identical files
except the timings in ``manifest.json`` and the ``sft_record.json`` files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zerosearch import protocol
from zerosearch.provenance import package_versions
from zerosearch.search.base import SearchEngine
from zerosearch.toyworld.demos import DemoMix, Demonstration, build_demonstrations, demonstration_rows
from zerosearch.toyworld.model import TinyModelConfig
from zerosearch.toyworld.world import SPLITS, World, WorldConfig, generate_world, question_kind
from zerosearch.warmstart.reading import ReadingCheck, action_probability, format_reading, reading_accuracy
from zerosearch.warmstart.stages import NumThreads, StageConfig

TEMPLATE_NAME = "template.txt"
SKILLS_DIR = "stages/skills"
HELD_OUT_DEMOS = 96
READING_CHECKS = 240


class ToyBuildConfig(BaseModel):
    """Every setting of a toy build; ``seed`` overrides the seeds of the sub-configs."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="one seed for world, model init, demonstrations and warm-start")
    world: WorldConfig = Field(default_factory=WorldConfig)
    model: TinyModelConfig = Field(default_factory=TinyModelConfig)
    demos: DemoMix = Field(default_factory=DemoMix, description="practice counts and the habits stage's mix")
    skills: StageConfig = Field(
        default_factory=lambda: StageConfig(steps=3000, batch_size=32, check_every=250, reading_target=0.95),
        description="stage 1: correct episodes + practice, until reading passes (this default world, one passage "
        "per person: all kinds read after ~1,000 steps)")
    habits: StageConfig = Field(
        default_factory=lambda: StageConfig(steps=200, batch_size=32, learning_rate=3e-4, warmup_steps=10,
                                            log_every=50),
        description="stage 2: the imperfect DemoMix, fixed steps at a lower learning rate")
    num_threads: int | None = Field(
        1, ge=1, description="torch CPU threads during the warm-start (1 is fastest for this size on a busy CPU)")

    def seeded(self) -> ToyBuildConfig:
        """A copy whose sub-config seeds all follow ``seed``."""
        return self.model_copy(update={
            "world": self.world.model_copy(update={"seed": self.seed}),
            "model": self.model.model_copy(update={"seed": self.seed}),
            "skills": self.skills.model_copy(update={"seed": self.seed}),
            "habits": self.habits.model_copy(update={"seed": self.seed}),
        })


@dataclass(frozen=True)
class ToyWorldPaths:
    """Where a build put its files."""

    root: Path

    @property
    def corpus(self) -> Path:
        """wiki-18 JSONL corpus (BM25 engine input)."""
        return self.root / "corpus.jsonl"

    @property
    def world(self) -> Path:
        """Every entity and fact, JSON."""
        return self.root / "world.json"

    @property
    def warmstart(self) -> Path:
        """Questions the warm-start demonstrations are about."""
        return self.root / "warmstart.jsonl"

    @property
    def train(self) -> Path:
        """RL training questions (people unseen by the warm-start)."""
        return self.root / "train.jsonl"

    @property
    def test(self) -> Path:
        """Held-out evaluation questions (people unseen by warm-start and RL)."""
        return self.root / "test.jsonl"

    @property
    def template(self) -> Path:
        """The policy's short raw instruction template (``rollout.template_path``)."""
        return self.root / TEMPLATE_NAME

    @property
    def demonstrations(self) -> Path:
        """The warm-start episodes as text, one JSON per line."""
        return self.root / "demonstrations.jsonl"

    @property
    def policy(self) -> Path:
        """Warm-started policy and tokenizer (``from_pretrained`` directory)."""
        return self.root / "policy"

    @property
    def manifest(self) -> Path:
        """Configs, versions, losses and timings of the build."""
        return self.root / "manifest.json"


def read_template() -> str:
    """The toy instruction template shipped with the package."""
    return resources.files("zerosearch.toyworld").joinpath(TEMPLATE_NAME).read_text("utf-8").rstrip("\n")


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    """One JSON object per line, keys in insertion order (byte-stable)."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_world_files(world: World, paths: ToyWorldPaths) -> None:
    """Corpus, world description, question splits and template."""
    paths.root.mkdir(parents=True, exist_ok=True)
    write_jsonl(world.passages(), paths.corpus)
    paths.world.write_text(json.dumps(world.to_record(), indent=1), "utf-8")
    for split in SPLITS:
        rows = [
            {"id": q.id, "question": q.question, "golden_answers": list(q.golden_answers), "kind": question_kind(q)}
            for q in world.questions(split)
        ]
        write_jsonl(rows, getattr(paths, split))
    paths.template.write_text(read_template() + "\n", "utf-8")


def tokenizer_texts(world: World, template: str) -> list[str]:
    """Every text the policy's tokenizer must cover: passages, questions, template."""
    texts = [row["contents"] for row in world.passages()]
    texts += [q.question for split in SPLITS for q in world.questions(split)]
    return [*texts, template]


def demonstration_record(demo: Demonstration, stage: str) -> dict[str, Any]:
    """A demonstration as JSON: warm-start stage, behaviour, answer and its segments (policy flag + text)."""
    return {
        "stage": stage,
        "id": demo.example.id,
        "behaviour": demo.behaviour,
        "answer": demo.answer,
        "segments": [{"policy": s.policy, "text": s.text} for s in demo.segments],
    }


@dataclass(frozen=True)
class StageData:
    """The demonstrations of both warm-start stages and the held-out episodes that measure them."""

    skills: list[Demonstration]
    habits: list[Demonstration]
    checks: list[Demonstration]  # correct episodes about RL-train people: the reading check
    held_out: list[Demonstration]  # imperfect episodes about RL-train people: the held-out loss
    prompts: list[str]  # prompts of held-out (test) questions: the search probability


def stage_data(world: World, engine: SearchEngine, template: str, mix: DemoMix, seed: int) -> StageData:
    """Skills stage: correct episodes only (plus practice); habits stage: the imperfect ``mix``."""
    correct = mix.model_copy(update={"no_search": 0.0, "wrong_doc": 0.0, "skip_hop": 0.0})
    no_practice = {"copy_practice": 0, "read_practice": 0}
    warmstart = world.questions("warmstart")
    held_out = build_demonstrations(world, world.questions("train")[:HELD_OUT_DEMOS], engine, template,
                                    mix.model_copy(update=no_practice), seed + 1)
    checks = build_demonstrations(world, world.questions("train")[:READING_CHECKS], engine, template,
                                  correct.model_copy(update=no_practice))
    return StageData(
        skills=build_demonstrations(world, warmstart, engine, template, correct, seed),
        habits=build_demonstrations(world, warmstart, engine, template, mix, seed + 2),
        checks=checks,
        held_out=held_out,
        prompts=[protocol.render_prompt(q.question, None, template, False) for q in world.questions("test")],
    )


def build_toy_world(
    out_dir: str | Path,
    seed: int = 0,
    config: ToyBuildConfig | None = None,
    *,
    overwrite: bool = False,
    log: Any = print,
) -> ToyWorldPaths:
    """Build world, corpus, questions and a warm-started policy into ``out_dir`` (see module doc):
    :func:`write_world`, then :func:`warm_start_policy`."""
    config = (config or ToyBuildConfig()).model_copy(update={"seed": seed}).seeded()
    paths = write_world(out_dir, config, overwrite=overwrite)
    warm_start_policy(paths, config, log=log)
    return paths


def write_world(out_dir: str | Path, config: ToyBuildConfig, *, overwrite: bool = False) -> ToyWorldPaths:
    """The world's data files (corpus, questions, template, ``world.json``): seconds, no model. What the
    simulators need; the demo builds them and the warm-start in parallel once these exist."""
    paths = ToyWorldPaths(Path(out_dir))
    prepare_dir(paths.root, overwrite)
    write_world_files(generate_world(config.seeded().world), paths)
    return paths


def warm_start_policy(
    paths: ToyWorldPaths, config: ToyBuildConfig, *, log: Any = print, num_threads: NumThreads = None
) -> ToyWorldPaths:
    """Tokenizer, demonstrations and the two-stage warm-start of the world in ``paths`` (written by
    :func:`write_world` with the same ``config``); writes ``policy/`` and ``manifest.json`` last.

    ``num_threads`` (default ``config.num_threads``) is torch's CPU thread count, or a callable asked every
    ``THREAD_POLL_STEPS`` steps (a runner can hand over a second core once other tasks are done)."""
    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.toyworld.model import build_tiny_llama
    from zerosearch.toyworld.tokenizer import build_tokenizer

    config = config.seeded()
    threads = num_threads if num_threads is not None else config.num_threads
    start, cpu_start = time.perf_counter(), time.process_time()
    world = generate_world(config.world)
    if json.loads(paths.world.read_text("utf-8")) != json.loads(json.dumps(world.to_record())):
        raise ValueError(f"{paths.world} is not the world of this config; rebuild it with write_world")
    template = read_template()
    engine = BM25SearchEngine(paths.corpus, progress=False)
    tokenizer = build_tokenizer(tokenizer_texts(world, template))
    data = stage_data(world, engine, template, config.demos, config.seed)
    write_jsonl([demonstration_record(d, "skills") for d in data.skills]
                + [demonstration_record(d, "habits") for d in data.habits], paths.demonstrations)
    timings = {"data_s": time.perf_counter() - start}
    model = build_tiny_llama(tokenizer, config.model)
    warm = warm_start_stages(model, tokenizer, data, config, paths, log, threads)
    timings.update(warm.pop("timings"), total_s=time.perf_counter() - start,
                   total_cpu_s=time.process_time() - cpu_start)
    manifest = {
        "config": config.model_dump(mode="json"),
        "versions": package_versions(),
        "sizes": {"passages": len(world.passages()), "vocab": len(tokenizer),
                  "parameters": sum(p.numel() for p in model.parameters()),
                  **{f"{s}_questions": len(world.questions(s)) for s in SPLITS}},
        "behaviours": {"skills": _count(d.behaviour for d in data.skills),
                       "habits": _count(d.behaviour for d in data.habits)},
        "warmstart": warm,
        "timings": timings,
    }
    paths.manifest.write_text(json.dumps(manifest, indent=1), "utf-8")
    log(f"toy world built in {paths.root}: reading {format_reading(warm['reading'])}; first action is a search "
        f"with probability {warm['search_probability']:.2f}")
    if not warm["passed_reading"]:
        log(f"WARNING: after {warm['skills']['steps']} skills steps the policy reads answers out of passages "
            f"below {config.skills.reading_target:.2f} ({format_reading(warm['reading'])}); RL will have little to "
            "reinforce. Raise skills.steps (--steps) or try another --seed.")
    return paths


def warm_start_stages(
    model: Any, tokenizer: Any, data: StageData, config: ToyBuildConfig, paths: ToyWorldPaths, log: Any,
    threads: NumThreads = None,
) -> dict[str, Any]:
    """Skills stage (stops when reading passes), then habits stage (saved as ``paths.policy``) through
    :func:`zerosearch.warmstart.stages.run_stages`; what each did, for the manifest."""
    from zerosearch.sft.trainer import completion_loss
    from zerosearch.warmstart.stages import Stage, run_stages

    check = ReadingCheck(demonstration_rows(data.checks, tokenizer), [d.example.metadata["kind"] for d in data.checks],
                         every=config.skills.check_every, target=config.skills.reading_target)
    prompts = [list(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in data.prompts]
    held_out = demonstration_rows(data.held_out, tokenizer)
    pad = tokenizer.pad_token_id
    loss_before = completion_loss(model, held_out, pad)
    length = config.model.max_position_embeddings
    stages = [
        Stage("skills", demonstration_rows(data.skills, tokenizer),
              config.skills.sft_config(paths.root / SKILLS_DIR, max_length=length, model="toyworld-tiny-llama"),
              check, measure=lambda m: {"search_probability": action_probability(m, tokenizer, prompts)}),
        Stage("habits", demonstration_rows(data.habits, tokenizer),
              config.habits.sft_config(paths.policy, max_length=length, model="toyworld-tiny-llama")),
    ]
    result = run_stages(stages, model=model, tokenizer=tokenizer, log=log, num_threads=threads)
    final = result.model
    skills, habits = result.stage("skills"), result.stage("habits")
    return {
        "held_out_loss_before": loss_before,
        "held_out_loss_after": completion_loss(final, held_out, pad),
        "passed_reading": bool(skills.passed),
        "reading": reading_accuracy(final, tokenizer, check.rows, check.kinds),
        "search_probability": action_probability(final, tokenizer, prompts),
        "skills": {**skills.summary(), "search_probability": skills.measured["search_probability"]},
        "habits": habits.summary(),
        "timings": {"skills_s": skills.sft.seconds, "skills_cpu_s": skills.sft.cpu_seconds,
                    "habits_s": habits.sft.seconds, "habits_cpu_s": habits.sft.cpu_seconds},
    }


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def prepare_dir(root: Path, overwrite: bool) -> None:
    """Refuse to mix a new build into an old one unless ``overwrite``."""
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root} is not empty; pass overwrite=True (--overwrite) or choose another directory")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m zerosearch.toyworld.build --out DIR [--seed N] [--steps N] [--overwrite]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory to build into")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="most skills-stage steps (default: the config's)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    args = parser.parse_args(argv)
    config = ToyBuildConfig()
    if args.steps is not None:
        config = config.model_copy(update={"skills": config.skills.model_copy(update={"steps": args.steps})})
    try:
        build_toy_world(args.out, seed=args.seed, config=config, overwrite=args.overwrite)
    except FileExistsError as err:
        parser.error(str(err))  # exit code 2 with the reason, not a traceback


if __name__ == "__main__":
    main()
