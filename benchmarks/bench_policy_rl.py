"""Does RL improve the warm-started SmolLM2 search agent on real HotpotQA, against BM25 and a simulator?

Why: the warm-start (``bench_policy_warmstart.py``) makes SmolLM2-135M-Instruct follow the protocol; this
runs ``zerosearch train`` on it, the product path end to end on CPU, with the two engines ZeroSearch compares:

1. ``warmstart``: ``zerosearch sft``'s pipeline with ``configs/sft-smollm2-hotpotqa.yaml`` (corpus, 70/30
   split, demonstrations, TRL SFT). Reused when ``<out>/warmstart/warmstart.json`` exists with the same
   settings (e.g. from an earlier ``zerosearch sft --set output_dir=<out>/warmstart``).
2. ``simulator``: ``zerosearch simulator``'s pipeline on the warm-start's *training* questions only (collect
   with BM25 over the paragraphs cut to 30 words, label contains-answer, build ``hinted`` = the paper's
   recipe, LoRA SFT of SmolLM2) and its quality on held-out questions against BM25 (``evaluate``).
3. ``eval-before``: ``zerosearch eval``'s code path on the held-out questions with BM25: direct, RAG, agent.
4. ``rl-bm25-seed<S>`` / ``rl-simulator-seed<S>``: ``zerosearch train`` (``build_trainer``) with
   ``configs/rl-smollm2-hotpotqa-{bm25,simulator}.yaml``; held-out validation always with BM25.
5. ``eval-<arm>-seed<S>``: direct, RAG and agent after RL through the eval code path (greedy; ``--sampled``
   adds the agent at T=1).

With ``--workers 2`` (the default) the stages run as a task graph (``zerosearch.taskgraph``) on two
one-thread processes: the simulator trains beside the warm-start (it needs only the split), the RL runs go
two at a time, the simulator arm's first (the longest chain). ``--workers 1`` runs them here in order.
Every stage is cached in its own directory (``stage.json``: its settings, seconds and record); a rerun
skips finished stages, refuses a stage whose saved settings differ (``--redo NAME`` reruns it), and an
interrupted RL run resumes from its last checkpoint. Writes ``benchmarks/results/policy_rl.json``
(command, versions, configs, per-arm per-seed scores before/after, step times, stage times, the
simulator's quality) and ``benchmarks/results/policy_rl_curves.png`` (training reward and held-out F1).

    OMP_NUM_THREADS=1 python benchmarks/bench_policy_rl.py                       # all stages, 2 workers
    python benchmarks/bench_policy_rl.py --steps 1 --rl-seeds 0 --sim-seeds 0 --out /tmp/x   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WARMSTART_CONFIG = ROOT / "configs" / "sft-smollm2-hotpotqa.yaml"
RL_CONFIGS = {"bm25": ROOT / "configs" / "rl-smollm2-hotpotqa-bm25.yaml",
              "simulator": ROOT / "configs" / "rl-smollm2-hotpotqa-simulator.yaml"}
DATASET = "hotpotqa_heldout"
METHODS = ["direct", "rag", "agent"]
STAGE_FILE = "stage.json"


# ---------------------------------------------------------------------------------------------- caching
class StageSettingsChanged(RuntimeError):
    """A stage directory holds a finished run made with other settings."""


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back (paths as strings, tuples as lists)."""
    return json.loads(json.dumps(value, default=str))


def cached_stage(directory: Path, settings: dict[str, Any], run: Callable[[], dict[str, Any]], *,
                 redo: bool = False) -> dict[str, Any]:
    """Run ``run`` once for ``directory``: its record, seconds and ``settings`` go to ``stage.json``, and
    a later call returns them (``cached: True``) without running. Saved settings that differ from
    ``settings`` raise :class:`StageSettingsChanged` (a silent reuse would report another run's
    numbers); ``redo`` runs the stage again."""
    marker = directory / STAGE_FILE
    settings = _plain(settings)
    if marker.is_file() and not redo:
        saved = json.loads(marker.read_text("utf-8"))
        if saved["settings"] != settings:
            changed = sorted(k for k in settings.keys() | saved["settings"].keys()
                             if settings.get(k) != saved["settings"].get(k))
            raise StageSettingsChanged(
                f"{directory} was run with other settings (differ: {', '.join(changed)}); pass --redo "
                f"{directory.name} to run it again, or another --out")
        return {**saved, "cached": True}
    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    record = run()
    saved = {"settings": settings, "seconds": time.perf_counter() - start, "record": _plain(record),
             "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    marker.write_text(json.dumps(saved, indent=1), "utf-8")
    return {**saved, "cached": False}


# ---------------------------------------------------------------------------------------------- arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-rl", help="work directory (stages)")
    p.add_argument("--warmstart-config", type=Path, default=WARMSTART_CONFIG)
    p.add_argument("--bm25-config", type=Path, default=RL_CONFIGS["bm25"])
    p.add_argument("--simulator-config", type=Path, default=RL_CONFIGS["simulator"])
    p.add_argument("--rl-seeds", default="0,1", help="seeds of the BM25 arm")
    p.add_argument("--sim-seeds", default="0", help="seeds of the simulator arm ('' skips the arm)")
    p.add_argument("--steps", type=int, default=None, help="override total_steps of both RL configs")
    p.add_argument("--val-every", type=int, default=None, help="override validation.every of both RL configs")
    p.add_argument("--sampled", action="store_true", help="also evaluate the agent sampled (T=1)")
    p.add_argument("--answer-tokens", type=int, default=128, help="direct/RAG: new tokens for the answer")
    p.add_argument("--sim-steps", type=int, default=40, help="simulator LoRA SFT steps (batch 2)")
    p.add_argument("--sim-lr", type=float, default=1e-3)
    p.add_argument("--sim-words", type=int, default=30, help="words per paragraph in the simulator's corpus")
    p.add_argument("--sim-eval-questions", type=int, default=12, help="held-out questions for simulator quality")
    p.add_argument("--only-simulator", action="store_true",
                   help="build the simulator and stop (it needs only the warm-start's split, so it can train while "
                   "the warm-start does)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--workers", type=int, default=2,
                   help="processes running stages at once (2 on a 2-core machine: the simulator trains beside the "
                   "warm-start, RL runs side by side); 1 runs every stage in this process, one after another")
    p.add_argument("--redo", default="", help="comma-separated stage names to run again")
    p.add_argument("--result", type=Path, default=RESULTS / "policy_rl.json")
    p.add_argument("--plot", type=Path, default=RESULTS / "policy_rl_curves.png")
    return p.parse_args(argv)


def seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


# ---------------------------------------------------------------------------------------------- stages
def warmstart_config(args: argparse.Namespace) -> Any:
    from zerosearch.warmstart import load_warmstart_config

    return load_warmstart_config(args.warmstart_config, {
        "output_dir": str(args.out / "warmstart"), "sft.num_threads": args.threads, "sft.probe_rows": 8})


def _comparable(config_json: dict[str, Any]) -> dict[str, Any]:
    """A warm-start config without its output paths (the same run may live under another spelling)."""
    body = {k: v for k, v in config_json.items() if k != "output_dir"}
    body["sft"] = {k: v for k, v in body["sft"].items() if k != "output_dir"}
    return body


def stage_warmstart(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    """The warm-start's record; a finished run in the directory with the same settings is reused."""
    from zerosearch.warmstart import run_warmstart
    from zerosearch.warmstart.run import RECORD_FILE

    path = config.output_dir / RECORD_FILE
    if not path.is_file():
        path = run_warmstart(config).record_path
    record = json.loads(path.read_text("utf-8"))
    if _comparable(record["config"]) != _comparable(config.model_dump(mode="json")):
        raise StageSettingsChanged(f"{path} was made with another warm-start config; move it away or pass "
                                   "another --out")
    return {"data": record["data"], "sft": {k: record["sft"][k] for k in ("loss_before", "loss_after", "seconds",
                                                                        "rows")}}


def stage_simulator(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    """``zerosearch simulator`` collect -> label -> build (hinted) -> sft -> evaluate, on the warm-start split."""
    import torch

    from zerosearch.data.loaders import load_dataset
    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.search.factory import build_engine
    from zerosearch.sft import LoRASettings, SFTRunConfig
    from zerosearch.simulator import (
        BuildConfig,
        CollectConfig,
        build_dataset,
        collect,
        evaluate_simulators,
        label_collection,
        load_engine_config,
        read_records,
        tune_simulator,
    )
    from zerosearch.simulator.aligned import hotpotqa_aligned

    torch.set_num_threads(args.threads)
    work, top_k, timings = args.out / "simulator", config.demos.top_k_documents, {}
    start = time.perf_counter()
    pooled = hotpotqa_aligned(config.data.aligned, corpus_out=work / "corpus.jsonl", max_words=args.sim_words)
    split = config.output_dir / "split"
    train_q = {e.question for e in load_dataset(str(split / "train.jsonl"))}
    test_q = {e.question for e in load_dataset(str(split / "test.jsonl"))}
    train = [q for q in pooled if q.question in train_q]
    test = [q for q in pooled if q.question in test_q][: args.sim_eval_questions]
    bm25 = BM25SearchEngine(work / "corpus.jsonl", progress=False)
    collect(train, bm25, work / "collect-train", CollectConfig(top_k=top_k, seed=0), progress=False)
    collect(test, bm25, work / "collect-test",
            CollectConfig(top_k=top_k, seed=0, perturbations=["misspelt", "other_entity"]), progress=False)
    labels = label_collection(read_records(work / "collect-train"), ["contains-answer"], work / "label-train")
    build_dataset(read_records(work / "label-train"), work / "data-hinted", BuildConfig(recipe="hinted", top_k=top_k))
    timings["data_s"] = time.perf_counter() - start
    sft = SFTRunConfig(model="smollm2-135m-instruct", output_dir=work / "model", overwrite=True,
                       max_steps=args.sim_steps, batch_size=2, learning_rate=args.sim_lr,
                       warmup_steps=min(5, args.sim_steps - 1), lora=LoRASettings(r=16, alpha=32,
                                                                                  layers=list(range(18, 30))),
                       seed=0, num_threads=args.threads, logging_steps=5, probe_rows=8, max_length=512,
                       use_cpu=True)
    start = time.perf_counter()
    tuned = tune_simulator(work / "data-hinted", sft, max_new_tokens=40 * args.sim_words * top_k // 30 + 40)
    timings["sft_s"] = time.perf_counter() - start
    start = time.perf_counter()
    engine_config = load_engine_config(work / "model", temperature=0.8, seed=0)
    engine_config = engine_config.model_copy(update={"generator": engine_config.generator.model_copy(
        update={"device": "cpu", "batch_size": 32})})
    quality = evaluate_simulators(read_records(work / "collect-test"), {"tuned hinted": build_engine(engine_config)},
                                  top_k, batch_size=32)
    timings["evaluate_s"] = time.perf_counter() - start
    return {"train_questions": len(train), "eval_questions": len(test), "label_report": labels,
            "sft": {"steps": args.sim_steps, "lr": args.sim_lr, "loss_before": tuned.loss_before,
                    "loss_after": tuned.loss_after, "rows": tuned.rows},
            "quality": quality["table"], "timings_s": timings, "model": str(work / "model")}


def _rollout_for_eval(rl_config: Any, temperature: float) -> Any:
    """The RL runs' rollout settings (turns, tokens, information budget) for an evaluation."""
    return rl_config.rollout.model_copy(update={"temperature": temperature, "n_samples": 1})


def evaluate_policy(args: argparse.Namespace, ws: Any, rl_config: Any, policy: str, out_dir: Path,
                    methods: list[str], temperature: float = 0.0) -> dict[str, Any]:
    """``zerosearch eval``'s code path on the held-out split with BM25 over the pooled corpus."""
    from zerosearch.evaluation.runner import EvalConfig, evaluate
    from zerosearch.llm.factory import GeneratorConfig
    from zerosearch.search.factory import BM25EngineConfig

    eval_config = EvalConfig(
        policy=GeneratorConfig(model=policy, device="cpu"),
        engine=BM25EngineConfig(corpus=ws.corpus_path, progress=False), methods=methods,
        datasets=[f"{DATASET}={ws.output_dir / 'split' / 'test.jsonl'}"], max_new_tokens=args.answer_tokens,
        top_k=rl_config.rollout.top_k_documents, rollout=_rollout_for_eval(rl_config, temperature),
        out_dir=out_dir, progress=False, plot_metric=None, seed=0,
    )
    table = evaluate(eval_config).table.to_dict()
    return {m: cell(table, m) for m in methods}


def cell(table: dict[str, Any], method: str) -> dict[str, float]:
    """Scores, answered share and searches of one method on the held-out set."""
    scores, usage = table["results"][method][DATASET], table["usage"][method]
    return {"n": scores["n"], "answered": usage["answered"], "em": scores["em"], "f1": scores["f1"],
            "searches_per_question": usage["searches_per_question"]}


def rl_config(args: argparse.Namespace, arm: str, seed: int, ws: Any, simulator_dir: Path | None) -> Any:
    """An arm's training config with this benchmark's paths, seed and step overrides."""
    from zerosearch.train.config import load_config

    corpus = str(ws.corpus_path)
    overrides: dict[str, Any] = {
        "seed": seed, "output_dir": str(args.out / f"rl-{arm}-seed{seed}"), "num_threads": args.threads,
        "model.name_or_path": str(ws.sft.output_dir), "data.train": str(ws.output_dir / "split" / "train.jsonl"),
        "data.val": str(ws.output_dir / "split" / "test.jsonl"), "logging.progress": False,
    }
    if arm == "bm25":
        overrides["engine.corpus"] = corpus
    else:
        overrides.update({"engine.generator.model": str(simulator_dir), "shadow_engine.corpus": corpus,
                          "validation.engine.corpus": corpus})
    if args.steps is not None:
        overrides["total_steps"] = args.steps
    if args.val_every is not None:
        overrides["validation.every"] = args.val_every
    return load_config(args.bm25_config if arm == "bm25" else args.simulator_config, overrides)


def stage_rl(config: Any) -> dict[str, Any]:
    """``zerosearch train``; resumes an interrupted run from its last checkpoint."""
    from zerosearch.train.build import build_trainer
    from zerosearch.train.checkpoint import latest_checkpoint
    from zerosearch.train.plot import read_metrics

    out = Path(config.output_dir)
    resume = latest_checkpoint(out) is not None
    if not resume and out.is_dir() and any(out.iterdir()):
        print(f"{out}: an interrupted run without a checkpoint; starting it afresh", flush=True)
        shutil.rmtree(out)
    trainer = build_trainer(config, resume=resume)
    trainer.train()
    final = latest_checkpoint(out)
    rows = read_metrics(out / "metrics.jsonl")
    return {"policy": str(final / "policy"), "resumed": resume, "metrics": rows}


def step_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-step curves and mean step times from a run's metrics.jsonl rows."""
    train = [r for r in rows if "rollout/reward" in r]
    val = [r for r in rows if "val/f1" in r]
    times = {k: sum(r.get(k, 0.0) for r in train) / max(len(train), 1)
             for k in ("time/rollout_s", "time/update_s", "time/shadow_s")}
    times["step_s"] = times["time/rollout_s"] + times["time/update_s"] + times["time/shadow_s"]
    shadow = {k: sum(r[k] for r in train) / len(train) for k in (train[0] if train else {})
              if k.startswith("shadow/") and all(k in r for r in train)}
    return {"reward": [[r["step"], r["rollout/reward"]] for r in train],
            "val_f1": [[r["step"], r["val/f1"]] for r in val],
            "val_answer_rate": [[r["step"], r.get("val/answer_rate")] for r in val],
            "mean_times_s": times, "shadow_mean": shadow}


# ---------------------------------------------------------------------------------------------- report
def incomplete_runs(out: Path, finished: dict[str, Any]) -> dict[str, Any]:
    """RL runs under ``out`` that were started but not finished (no ``stage.json``): their logged steps, so
    a run cut short is reported rather than dropped."""
    found = {}
    for path in sorted(out.glob("rl-*/metrics.jsonl")):
        name = path.parent.name.removeprefix("rl-")
        if name in finished or (path.parent / STAGE_FILE).is_file():
            continue
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
        found[name] = {"steps_logged": len(rows), "curves": step_summary(rows)}
    return found


def plot_curves(runs: dict[str, dict[str, Any]], before_f1: float, path: Path) -> Path:
    """Training reward and held-out F1 (BM25) per step, one line per arm and seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_r, ax_v) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in runs.items():
        style = "-" if name.startswith("bm25") else "--"
        steps, reward = zip(*run["curves"]["reward"], strict=True) if run["curves"]["reward"] else ((), ())
        ax_r.plot(steps, reward, style, marker=".", label=name)
        points = [[0, before_f1], *run["curves"]["val_f1"], [run["steps"], run["after"]["agent"]["f1"]]]
        points = sorted({int(s): v for s, v in points}.items())
        ax_v.plot([s for s, _ in points], [v for _, v in points], style, marker="o", label=name)
    ax_r.set(title="training reward (F1, train questions)", xlabel="step", ylabel="mean reward")
    ax_v.set(title="held-out F1, BM25, greedy (step 0 and last: zerosearch eval)", xlabel="step", ylabel="F1")
    for ax in (ax_r, ax_v):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def spread(values: list[float]) -> float:
    return max(values) - min(values) if values else float("nan")


def targets(before: dict[str, Any], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """RL raises held-out F1 beyond the spread between the BM25 seeds; the simulator arm beside it."""
    f1 = {name: run["after"]["agent"]["f1"] for name, run in runs.items()}
    bm25 = [v for k, v in f1.items() if k.startswith("bm25")]
    gain = (min(bm25) - before["agent"]["f1"]) if bm25 else float("nan")
    return {"before_agent_f1": before["agent"]["f1"], "after_agent_f1": f1, "bm25_seed_spread": spread(bm25),
            "bm25_min_gain": gain, "rl_gain_beyond_seed_spread": bool(len(bm25) >= 2 and gain > spread(bm25)),
            "simulator_arm_reported": any(k.startswith("simulator") for k in f1)}


# ---------------------------------------------------------------------------------------------- stages
StageSpec = tuple[tuple[str, ...], dict[str, Any], Callable[[], dict[str, Any]]]


def run_names(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(arm, seed) of every RL run, the simulator arm first (its steps are the slowest: the longest chain)."""
    return [("simulator", s) for s in seeds(args.sim_seeds)] + [("bm25", s) for s in seeds(args.rl_seeds)]


def redo_names(args: argparse.Namespace) -> set[str]:
    """The stage names ``--redo`` asks to run again."""
    return {s.strip() for s in args.redo.split(",") if s.strip()}


def ensure_split(ws: Any) -> None:
    """Write the corpus and the split when missing (deterministic; all the simulator needs, so it can train
    beside the warm-start, which rewrites them atomically)."""
    from zerosearch.warmstart.run import training_questions

    if not (ws.output_dir / "split" / "train.jsonl").is_file():
        training_questions(ws)


def stage_record(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """A finished stage's record (its ``stage.json``)."""
    return json.loads((args.out / name / STAGE_FILE).read_text("utf-8"))["record"]


def stage_specs(args: argparse.Namespace, ws: Any) -> dict[str, StageSpec]:
    """Every stage of this invocation: the stages it needs, its settings (the cache key) and how to run it."""
    specs: dict[str, StageSpec] = {
        "warmstart": ((), {"config": _comparable(ws.model_dump(mode="json"))}, lambda: stage_warmstart(args, ws))}
    if seeds(args.sim_seeds):
        sim_settings = {k: getattr(args, k) for k in ("sim_steps", "sim_lr", "sim_words", "sim_eval_questions")}
        specs["simulator"] = ((), sim_settings, lambda: stage_simulator(args, ws))
    base_rl = rl_config(args, "bm25", 0, ws, None)
    evals = {"rollout": base_rl.rollout.model_dump(mode="json"), "answer_tokens": args.answer_tokens}
    ws_policy = str(ws.sft.output_dir)
    specs["eval-before"] = (("warmstart",), evals, lambda: evaluate_policy(
        args, ws, base_rl, ws_policy, args.out / "eval-before" / "greedy", METHODS))
    if args.sampled:
        specs["eval-before-sampled"] = (("warmstart",), evals, lambda: evaluate_policy(
            args, ws, base_rl, ws_policy, args.out / "eval-before-sampled" / "t1", ["agent"], 1.0))
    for arm, seed in run_names(args):
        name = f"{arm}-seed{seed}"
        config = rl_config(args, arm, seed, ws, args.out / "simulator" / "model" if arm == "simulator" else None)
        deps = ("warmstart", "simulator") if arm == "simulator" else ("warmstart",)
        specs[f"rl-{name}"] = (deps, {"config": config.model_dump(mode="json")}, lambda c=config: stage_rl(c))
        # all three methods after RL too: RAG before vs after separates better reading from better searching
        specs[f"eval-{name}"] = ((f"rl-{name}",), {**evals, "methods": METHODS}, lambda n=name: evaluate_policy(
            args, ws, base_rl, stage_record(args, f"rl-{n}")["policy"], args.out / f"eval-{n}" / "greedy", METHODS))
        if args.sampled:
            specs[f"eval-{name}-sampled"] = ((f"rl-{name}",), evals, lambda n=name: evaluate_policy(
                args, ws, base_rl, stage_record(args, f"rl-{n}")["policy"], args.out / f"eval-{n}-sampled" / "t1",
                ["agent"], 1.0))
    return specs


def prepare(args: argparse.Namespace) -> Any:
    """Threads, quiet progress bars and the warm-start config (the same in the main process and in workers)."""
    import datasets
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()  # one "Loading weights" bar per model load would drown the log
    datasets.disable_progress_bars()
    args.out = args.out.resolve()
    return warmstart_config(args)


def stage_worker(name: str, argv: list[str]) -> dict[str, Any]:
    """Run one stage in a worker process of ``--workers`` (module level, so a spawned process can call it)."""
    args = parse_args(argv)
    ws = prepare(args)
    _, settings, run = stage_specs(args, ws)[name]
    done = cached_stage(args.out / name, settings, run, redo=name in redo_names(args))
    return {"seconds": done["seconds"], "cached": done["cached"]}


def run_stages_in_parallel(args: argparse.Namespace, argv: list[str], ws: Any,
                           specs: dict[str, StageSpec]) -> float:
    """Run every unfinished stage on ``args.workers`` one-thread processes, each once its inputs exist;
    returns the seconds it took. The simulator needs only the split, so it trains beside the warm-start."""
    from functools import partial

    from zerosearch.taskgraph import Task, run_task_graph

    start = time.perf_counter()
    ensure_split(ws)
    redo = redo_names(args)
    done = {n for n in specs if (args.out / n / STAGE_FILE).is_file() and n not in redo}
    tasks = [Task(n, deps) for n, (deps, _, _) in specs.items()]
    order = {n: i for i, n in enumerate(["warmstart", "simulator", *[f"rl-{a}-seed{s}" for a, s in run_names(args)]])}
    tasks.sort(key=lambda t: order.get(t.name, len(order)))  # the long chains first, evaluations after
    stamp = time.perf_counter()
    run_task_graph(tasks, partial(stage_worker, argv=argv), args.workers,
                   lambda m: print(f"[{time.perf_counter() - stamp:6.0f} s] {m}", flush=True), done=done)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from zerosearch.provenance import package_versions

    ws = prepare(args)
    redo = redo_names(args)
    specs = stage_specs(args, ws)
    command = " ".join([Path(sys.argv[0]).name if __name__ == "__main__" else "bench_policy_rl.py", *argv])
    wall = time.perf_counter()
    stages: dict[str, dict[str, Any]] = {}
    if args.only_simulator:
        if "simulator" not in specs:
            raise SystemExit("--only-simulator builds the simulator arm's simulator; --sim-seeds is empty")
        ensure_split(ws)
        _, settings, run = specs["simulator"]
        return cached_stage(args.out / "simulator", settings, run, redo="simulator" in redo)["record"]
    parallel_seconds = None
    if args.workers > 1:
        parallel_seconds = run_stages_in_parallel(args, argv, ws, specs)
        redo = set()  # the workers ran them; below only reads the finished stages

    def stage(name: str) -> dict[str, Any]:
        _, settings, run = specs[name]
        print(f"== stage {name}", flush=True)
        stages[name] = cached_stage(args.out / name, settings, run, redo=name in redo)
        print(f"== stage {name}: {'cached' if stages[name]['cached'] else 'ran'} "
              f"({stages[name]['seconds']:.0f} s)", flush=True)
        return stages[name]["record"]

    stage("warmstart")
    simulator = stage("simulator") if "simulator" in specs else None
    before = stage("eval-before")
    before_sampled = stage("eval-before-sampled") if args.sampled else None
    runs: dict[str, dict[str, Any]] = {}
    for arm, seed in sorted(run_names(args), key=lambda r: r[0]):
        name = f"{arm}-seed{seed}"
        trained = stage(f"rl-{name}")
        config = specs[f"rl-{name}"][1]["config"]
        runs[name] = {"arm": arm, "seed": seed, "steps": config["total_steps"], "policy": trained["policy"],
                      "config": config, "curves": step_summary(trained["metrics"]), "before": before,
                      "after": stage(f"eval-{name}")}
        if args.sampled:
            runs[name]["after_sampled"] = stage(f"eval-{name}-sampled")
            runs[name]["before_sampled"] = before_sampled
    plot_curves(runs, before["agent"]["f1"], args.plot)
    incomplete = incomplete_runs(args.out, runs)
    stage_seconds = {n: {"seconds": s["seconds"], "cached": s["cached"]} for n, s in stages.items()}
    payload = {
        "benchmark": "policy_rl", "command": command, "versions": package_versions(), "threads": args.threads,
        "workers": args.workers, "args": _plain(vars(args)), "warmstart": stages["warmstart"]["record"],
        "simulator": simulator, "before": before, "runs": runs, "targets": targets(before, runs),
        "stage_seconds": stage_seconds, "incomplete_runs": incomplete,
        "parallel_stages_wall_seconds": parallel_seconds,
        "wall_seconds_this_invocation": time.perf_counter() - wall,
        "stage_seconds_sum": sum(s["seconds"] for s in stages.values()),
        "load_avg_1m_at_end": os.getloadavg()[0], "cpu_count": os.cpu_count(), "plot": str(args.plot),
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(payload, indent=1), "utf-8")
    print(json.dumps({"targets": payload["targets"], "stage_seconds": stage_seconds}, indent=1))
    print(f"wrote {args.result} and {args.plot}")
    return payload


if __name__ == "__main__":
    main()
