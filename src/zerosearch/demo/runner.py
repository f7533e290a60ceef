"""Run the demo: the world, the two simulators and every (arm, seed) in parallel worker processes.

The work is a small graph of tasks, each run in a worker process with one torch thread (two workers use
both cores of a laptop)::

    world files (here, seconds) ─┬─ warm-start ────────────┬─ direct, rag, before_rl, rl_real (x seeds)
                                 ├─ imitate simulator ─────┼─ zerosearch (x seeds), fixed_noise
                                 └─ hinted simulator ──────┴─ hinted;  both simulators ─ simulator quality

A task whose outputs exist is skipped (and the log says so): a second run reuses the world, the
simulators and every finished (arm, seed), so an interrupted demo continues where it stopped and a
finished one only re-assembles ``results.json``. A rerun with other result-shaping settings into the same
directory is refused, naming what changed. The outputs are assembled into ``<out>/results.json``
(:class:`~zerosearch.demo.results.DemoResults`), which the report reads.

    results = run_demo(DemoConfig(out="runs/demo"))   # also writes report.html and summary.txt
    print(terminal_summary(results))
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from zerosearch.config_files import flatten_dotted
from zerosearch.demo import arms as A
from zerosearch.demo.config import ARM_NAMES, RL_ARMS, DemoConfig
from zerosearch.demo.report import write_report
from zerosearch.demo.results import (
    Arm,
    DemoResults,
    ExampleEpisode,
    SeedResult,
    ShadowSummary,
    TrainingCost,
    WorldSummary,
)
from zerosearch.taskgraph import Task as GraphTask
from zerosearch.taskgraph import run_task_graph

CONFIG_FILE = "demo_config.json"
QUALITY_FILE = "quality.json"
TIMINGS_FILE = "timings.json"
TITLES = {
    "direct": "Direct answer (no search)",
    "rag": "RAG (one search with the question)",
    "before_rl": "Policy before RL",
    "rl_real": "RL with the real engine (Search-R1 analogue)",
    "zerosearch": "ZeroSearch: fine-tuned simulator + curriculum",
    "fixed_noise": "Fine-tuned simulator, fixed noise",
    "hinted": "Hinted simulator (paper prompt style) + curriculum",
}


class DemoConfigMismatch(ValueError):
    """The output directory holds a demo run with other result-shaping settings."""


@dataclass(frozen=True)
class Task:
    """One unit of work for a worker: a name, what it needs first, and the file that says it is done."""

    name: str
    deps: tuple[str, ...]
    done_file: Path


# ---- the task graph -------------------------------------------------------------------------------------
def plan(config: DemoConfig) -> list[Task]:
    """Every task the configured arms need, in priority order (the longest chains first)."""
    world = A.world_dir(config)
    recipes = [r for r in ("imitate", "hinted") if any(A.simulator_of(a) == r for a in config.arms)]
    tasks = [Task("warmstart", (), world / "manifest.json")]
    tasks += [Task(f"simulator:{r}", (), A.simulator_dir(config, r) / "manifest.json") for r in recipes]
    order = [a for a in ("rl_real", "zerosearch", "hinted", "fixed_noise", "before_rl", "rag", "direct")
             if a in config.arms]
    for arm in order:
        recipe = A.simulator_of(arm)
        deps = ("warmstart",) + ((f"simulator:{recipe}",) if recipe else ())
        tasks += [Task(f"arm:{arm}:{seed}", deps, A.seed_dir(config, arm, seed) / A.SEED_FILE)
                  for seed in config.seeds_of(arm)]
    if recipes:
        tasks.append(Task("quality", tuple(f"simulator:{r}" for r in recipes),
                          config.out / "simulators" / QUALITY_FILE))
    return tasks


def run_task(name: str, config_json: str) -> dict[str, Any]:
    """Run one task (in a worker process); returns its wall and CPU seconds and peak RSS."""
    import datasets
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model load would drown the demo's log
    datasets.disable_progress_bars()
    config = DemoConfig.model_validate_json(config_json)
    wall, cpu = time.perf_counter(), time.process_time()
    kind, _, rest = name.partition(":")
    if kind == "warmstart":
        from zerosearch.toyworld.build import ToyWorldPaths, warm_start_policy

        warm_start_policy(ToyWorldPaths(A.world_dir(config)), config.world.model_copy(update={"seed": config.seed}),
                          log=_file_log(config.out / "logs" / "warmstart.log"))
    elif kind == "simulator":
        from zerosearch.toyworld.simulator import build_simulator

        sim = config.simulator if rest == "imitate" else config.hinted_simulator
        seeded = sim.model_copy(update={"seed": config.seed})
        build_simulator(A.world_dir(config), A.simulator_dir(config, rest), seeded, overwrite=True,
                        log=_file_log(config.out / "logs" / f"simulator-{rest}.log"))
    elif kind == "quality":
        measure_quality(config)
    else:
        arm, _, seed = rest.partition(":")
        A.run_arm_seed(arm, int(seed), config)
    return {"task": name, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _file_log(path: Path) -> Callable[[str], None]:
    """A ``log`` callable that appends timestamped lines to ``path`` (a worker's progress, for ``tail -f``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    def log(message: str) -> None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"{time.perf_counter() - start:7.1f}s {message}\n")

    return log


def measure_quality(config: DemoConfig) -> dict[str, Any]:
    """``evaluate_simulators`` on the RL questions for the built simulators (BM25 as the reference row)."""
    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.search.factory import build_engine
    from zerosearch.toyworld.simulator import load_world, measure, simulator_engine_config

    world = load_world(A.world_dir(config))
    bm25 = BM25SearchEngine(A.world_dir(config) / "corpus.jsonl", progress=False)
    engines = {}
    for recipe, sim in (("imitate", config.simulator), ("hinted", config.hinted_simulator)):
        path = A.simulator_dir(config, recipe)
        if (path / "manifest.json").is_file():
            engines[recipe] = build_engine(simulator_engine_config(path.resolve(), sim, device="cpu"))
    work = config.out / "simulators" / "quality"
    evaluation = measure(engines, bm25, world, work, config.simulator)
    evaluation.pop("per_query", None)
    path = config.out / "simulators" / QUALITY_FILE
    path.write_text(json.dumps(evaluation, indent=1), "utf-8")
    return evaluation


def check_config(config: DemoConfig) -> None:
    """Store the result-shaping settings, or refuse to resume into a run made with other ones."""
    path = config.out / CONFIG_FILE
    new = json.loads(json.dumps(config.result_shaping()))
    if path.is_file():
        old = json.loads(path.read_text("utf-8"))
        before, after = flatten_dotted(old), flatten_dotted(new)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if changed:
            raise DemoConfigMismatch(
                f"{config.out} holds a demo run with other settings ({', '.join(changed[:6])}); "
                "use another --out, or the same settings to resume")
        return
    config.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(new, indent=1), "utf-8")


def run_tasks(tasks: list[Task], config: DemoConfig, log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Run the pending tasks on ``config.workers`` processes, each as soon as its dependencies are done."""
    done = {t.name for t in tasks if t.done_file.is_file()}
    for t in tasks:
        if t.name in done:
            log(f"skip {t.name}: found {t.done_file} (delete it to redo)")
    pending = [GraphTask(t.name, t.deps) for t in tasks if t.name not in done]
    timings = run_task_graph(pending, partial(run_task, config_json=config.model_dump_json()), config.workers,
                             log, done=done)
    for name, timing in timings.items():
        log(f"{name}: {timing['wall_s']:.0f} s (cpu {timing['cpu_s']:.0f} s, "
            f"peak RSS {timing['peak_rss_mib']:.0f} MiB)")
    return timings


# ---- assembly -------------------------------------------------------------------------------------------
def run_demo(config: DemoConfig, log: Callable[[str], None] = print) -> DemoResults:
    """Build what is missing, run the pending arms, and write ``<out>/results.json``."""
    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.toyworld.build import write_world

    start = time.perf_counter()
    check_config(config)
    world = A.world_dir(config)
    if (world / "world.json").is_file():
        log(f"reuse the world files in {world}")
    else:
        write_world(world, config.world.model_copy(update={"seed": config.seed}), overwrite=True)
        log(f"wrote the world files to {world}")
    BM25SearchEngine(world / "corpus.jsonl", progress=False)  # index once here, before the workers share it
    timings = run_tasks(plan(config), config, log)
    record = record_invocation(config.out / TIMINGS_FILE, timings, time.perf_counter() - start)
    peak = max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                *(stage["peak_rss_mib"] for stage in record["stages"].values())])  # one process's peak
    results = assemble(config, wall_seconds=sum(i["wall_s"] for i in record["invocations"]), peak_rss_mib=peak,
                       stages=record["stages"])
    path = results.write(config.out)
    report = write_report(config.out)
    log(f"results in {path}; report in {report}")
    return results


def record_invocation(path: Path, timings: dict[str, dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Add this invocation (its wall time and the tasks it ran) to ``timings.json`` and return the whole
    record: a resumed demo's wall time is the sum over the invocations that built its outputs."""
    record = json.loads(path.read_text("utf-8")) if path.is_file() else {"stages": {}, "invocations": []}
    record["stages"].update(timings)
    record["invocations"].append({"wall_s": wall_s, "ran": sorted(timings)})
    path.write_text(json.dumps(record, indent=1), "utf-8")
    return record


def assemble(config: DemoConfig, *, wall_seconds: float, peak_rss_mib: float | None,
             stages: dict[str, Any] | None = None) -> DemoResults:
    """:class:`DemoResults` from the finished outputs under ``config.out``."""
    from zerosearch.evaluation.cost import DEFAULT_USD_PER_1K_QUERIES
    from zerosearch.provenance import package_versions

    quality_path = config.out / "simulators" / QUALITY_FILE
    return DemoResults(
        seed=config.seed, world=world_summary(config),
        usd_per_1k=DEFAULT_USD_PER_1K_QUERIES if config.usd_per_1k is None else config.usd_per_1k,
        noise_schedule=noise_schedule(config),
        simulator_quality=json.loads(quality_path.read_text("utf-8")) if quality_path.is_file() else {},
        arms=[assemble_arm(config, name) for name in ARM_NAMES if name in config.arms],
        wall_seconds=wall_seconds, peak_rss_mib=peak_rss_mib, config=config.model_dump(mode="json"),
        versions=package_versions(), stages=stages or {},
    )


def world_summary(config: DemoConfig) -> WorldSummary:
    """Sizes and kinds of the world, for reading the table."""
    world = A.world_dir(config)
    examples = A.test_questions(config)
    kinds: dict[str, int] = {}
    for ex in examples:
        kinds[ex.metadata["kind"]] = kinds.get(ex.metadata["kind"], 0) + 1
    lines = (world / "train.jsonl").read_text("utf-8").splitlines()
    passages = (world / "corpus.jsonl").read_text("utf-8").splitlines()
    description = (
        f"made-up people, cities, companies and countries; {len(config.world.world.kinds)} question kinds "
        f"({', '.join(config.world.world.kinds)}), up to {config.max_turns} searches per question; BM25 top-"
        f"{config.top_k} lists passages that share the searched name")
    return WorldSummary(description=description, train_questions=len([x for x in lines if x.strip()]),
                        test_questions=len(examples), corpus_passages=len([x for x in passages if x.strip()]),
                        top_k=config.top_k, question_kinds=kinds)


def noise_schedule(config: DemoConfig) -> dict[str, Any]:
    """The ZeroSearch arm's curriculum and p at every step (from ``zerosearch.curriculum``)."""
    curriculum = config.rl.curriculum.model_copy(update={"total_steps": config.steps})
    steps = list(range(config.steps + 1))
    return {"config": curriculum.model_dump(mode="json"), "steps": steps,
            "p": [curriculum.probability(s) for s in steps], "fixed_noise": config.rl.fixed_noise}


def assemble_arm(config: DemoConfig, name: str) -> Arm:
    """One arm's row from its seeds' ``seed.json`` files (the first seed is the headline)."""
    from zerosearch.evaluation.harness import read_records

    records = [json.loads((A.seed_dir(config, name, s) / A.SEED_FILE).read_text("utf-8"))
               for s in config.seeds_of(name)]
    head = A.seed_dir(config, name, config.seeds_of(name)[0])
    greedy_records = head / "eval" / "greedy" / "records.jsonl"
    rel = lambda p: str(p.relative_to(config.out))  # noqa: E731
    runs = [A.seed_dir(config, name, s) / "train" for s in config.seeds_of(name)]
    train = A.train_config(config, name, config.seed) if name in RL_ARMS else None
    return Arm(
        name=name, title=TITLES[name], kind="rl" if name in RL_ARMS else "baseline",
        train_engine=A.TRAIN_ENGINES.get(name), curriculum=train["curriculum"] if train else None,
        seeds=[SeedResult.model_validate(r["result"]) for r in records], records=rel(greedy_records),
        metrics_jsonl=[rel(r / "metrics.jsonl") for r in runs if (r / "metrics.jsonl").is_file()],
        curves_png=[rel(r / "curves.png") for r in runs if (r / "curves.png").is_file()],
        episodes=example_episodes(read_records(greedy_records)),
        cost=TrainingCost.model_validate(records[0]["cost"]),
        shadow=ShadowSummary.model_validate(records[0]["shadow"]) if records[0]["shadow"] else None,
        simulator=A.simulator_of(name),
    )


def example_episodes(records: list[Any], count: int = 3) -> list[ExampleEpisode]:
    """``count`` held-out episodes of different question kinds, right and wrong ones mixed when possible."""
    picked: list[Any] = []
    kinds: set[str] = set()
    for want_right in (True, False, True, False):
        for r in records:
            kind = r.id.rsplit("-", 1)[-1]
            if r not in picked and kind not in kinds and bool(r.metrics["em"]) == want_right:
                picked.append(r)
                kinds.add(kind)
                break
    for r in records:  # fewer kinds than count: fill in order
        if len(picked) >= count:
            break
        if r not in picked:
            picked.append(r)
    return [ExampleEpisode(question=r.question, golds=r.golds, prediction=r.prediction, em=r.metrics["em"],
                           turns=r.turns, queries=r.queries, documents=r.documents) for r in picked[:count]]
