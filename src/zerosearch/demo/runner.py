"""Run a world's experiment: its files, warm-start, simulators and every (arm, seed), in worker processes.

The same runner serves every world (``zerosearch demo --world toy|hotpotqa|path.yaml``). The work is a
small graph of tasks, each run in a worker process with one torch thread (two workers use both cores of a
laptop)::

    world files (here) ─┬─ warm-start ──────────────────┬─ baselines and real-engine RL arms (x seeds)
                        └─ simulators (after the warm-  ┴─ simulated RL arms (x seeds); simulators ─ quality
                           start when they collect the policy's own queries)

A task whose outputs exist is skipped (and the log says so): a second run reuses the world, the
simulators and every finished (arm, seed), so an interrupted demo continues where it stopped and a
finished one only re-assembles ``results.json``. A rerun with other result-shaping settings into the same
directory is refused, naming what changed. The outputs are assembled into ``<out>/results.json``
(:class:`~zerosearch.demo.results.DemoResults`), which the report reads.

    results = run_demo(load_demo_config(world="toy"))   # also writes report.html and summary.txt
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
from zerosearch.demo import stages
from zerosearch.demo.config import DemoConfig
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


class DemoConfigMismatch(ValueError):
    """The output directory holds a demo run with other result-shaping settings."""


@dataclass(frozen=True)
class Task:
    """One unit of work for a worker: a name, what it needs first, and the file that says it is done."""

    name: str
    deps: tuple[str, ...]
    done_file: Path


# ---- the task graph -------------------------------------------------------------------------------------
def simulators_needed(config: DemoConfig) -> list[str]:
    """The world's simulators that the selected arms train against, in the world's order."""
    used = {A.train_engine_name(a) for a in config.selected_arms()}
    return [name for name in config.world.simulators if name in used]


def plan(config: DemoConfig) -> list[Task]:
    """Every task the selected arms need, in priority order (the longest chains first)."""
    done = stages.warmstart_done_file(config)
    warm = ("warmstart",) if done is not None else ()
    tasks = [Task("warmstart", (), done)] if done is not None else []
    sims = simulators_needed(config)
    tasks += [Task(f"simulator:{n}", (), stages.simulator_dir(config, n) / "manifest.json") for n in sims]
    ordered = sorted(config.selected_arms(), key=lambda a: (a.train is None, A.train_engine_name(a) == "real"))
    for arm in ordered:  # simulated RL arms first (the longest chains), then real-engine RL, then baselines
        engine = A.train_engine_name(arm)
        deps = warm + ((f"simulator:{engine}",) if engine not in (None, "real") else ())
        tasks += [Task(f"arm:{arm.name}:{seed}", deps, A.seed_dir(config, arm.name, seed) / A.SEED_FILE)
                  for seed in config.seeds_of(arm)]
    if sims:
        tasks.append(Task("quality", tuple(f"simulator:{n}" for n in sims), config.out / "simulators" / QUALITY_FILE))
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
        stages.warm_start(config, log=_file_log(config.out / "logs" / "warmstart.log"))
    elif kind == "simulator":
        stages.build_world_simulator(config, rest, log=_file_log(config.out / "logs" / f"simulator-{rest}.log"))
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
    """The built simulators' quality beside the real engine's, saved as ``simulators/quality.json``."""
    evaluation = stages.measure_quality(config, simulators_needed(config))
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
    from zerosearch.search.factory import build_engine

    start = time.perf_counter()
    check_config(config)
    for name in simulators_needed(config):  # a bad simulator setting fails now, not after the warm-start
        if config.world.simulators[name].source == "model":
            stages.tuned_engine_config(config.world.simulators[name])
    stages.write_world_files(config, log)
    build_engine(stages.parse_engine(stages.real_engine_config(config)))  # index once here, before the workers
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

    world = config.world
    quality_path = config.out / "simulators" / QUALITY_FILE
    return DemoResults(
        seed=config.seed, world=world_summary(config), metric=world.evaluation.metric,
        decodings=list(world.evaluation.decodings), claim_settings=world.claims.model_dump(mode="json"),
        usd_per_1k=DEFAULT_USD_PER_1K_QUERIES if world.usd_per_1k is None else world.usd_per_1k,
        noise_schedule=noise_schedule(config),
        simulator_quality=json.loads(quality_path.read_text("utf-8")) if quality_path.is_file() else {},
        arms=[assemble_arm(config, arm.name) for arm in config.selected_arms()],
        wall_seconds=wall_seconds, peak_rss_mib=peak_rss_mib, config=config.model_dump(mode="json"),
        versions=package_versions(), stages=stages or {},
    )


def question_kind(example: Any) -> str | None:
    """A question's kind for the report: the toy world's ``kind``, HotpotQA's ``type``, else None."""
    return example.metadata.get("kind") or example.metadata.get("type")


def world_summary(config: DemoConfig) -> WorldSummary:
    """Sizes and kinds of the world, for reading the table."""
    world = stages.world_dir(config)
    examples = A.test_questions(config)
    kinds: dict[str, int] = {}
    for ex in examples:
        kind = question_kind(ex)
        if kind:
            kinds[kind] = kinds.get(kind, 0) + 1
    rollout = config.world.rollout
    description = (f"{config.world.description}; up to {rollout.max_turns} searches per question, "
                   f"{config.world.engine['kind']} top-{rollout.top_k}")
    return WorldSummary(name=config.world.name, description=description,
                        train_questions=len(stages.read_questions(config, "train")), test_questions=len(examples),
                        corpus_passages=sum(1 for x in (world / "corpus.jsonl").read_text("utf-8").splitlines()
                                            if x.strip()),
                        top_k=rollout.top_k, question_kinds=dict(sorted(kinds.items())),
                        real_engine=config.world.engine["kind"])


def noise_schedule(config: DemoConfig) -> dict[str, Any]:
    """The curriculum arms' noise schedule and p at every step (from ``zerosearch.curriculum``)."""
    rl = config.world.rl
    curriculum = rl.curriculum.model_copy(update={"total_steps": rl.steps})
    steps = list(range(rl.steps + 1))
    return {"config": curriculum.model_dump(mode="json"), "steps": steps,
            "p": [curriculum.probability(s) for s in steps], "fixed_noise": rl.fixed_noise}


def assemble_arm(config: DemoConfig, name: str) -> Arm:
    """One arm's row from its seeds' ``seed.json`` files (the first seed is the headline)."""
    from zerosearch.evaluation.harness import read_records

    spec = config.world.arm(name)
    seeds = config.seeds_of(spec)
    records = [json.loads((A.seed_dir(config, name, s) / A.SEED_FILE).read_text("utf-8")) for s in seeds]
    head = A.seed_dir(config, name, seeds[0])
    first = config.world.evaluation.decodings[0]
    shown_records = head / "eval" / first / "records.jsonl"
    rel = lambda p: str(p.relative_to(config.out))  # noqa: E731
    runs = [A.seed_dir(config, name, s) / "train" for s in seeds]
    engine = A.train_engine_name(spec)
    return Arm(
        name=name, title=spec.label, kind="rl" if spec.train else "baseline", method=spec.method,
        train_engine=engine, curriculum=A.curriculum_of(config, spec) if spec.train else None,
        seeds=[SeedResult.model_validate(r["result"]) for r in records], records=rel(shown_records),
        metrics_jsonl=[rel(r / "metrics.jsonl") for r in runs if (r / "metrics.jsonl").is_file()],
        curves_png=[rel(r / "curves.png") for r in runs if (r / "curves.png").is_file()],
        episodes=example_episodes(read_records(shown_records)),
        cost=TrainingCost.model_validate(records[0]["cost"]),
        shadow=ShadowSummary.model_validate(records[0]["shadow"]) if records[0]["shadow"] else None,
        simulator=engine if engine not in (None, "real") else None,
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
                           f1=r.metrics.get("f1"), turns=r.turns, queries=r.queries, documents=r.documents)
            for r in picked[:count]]
