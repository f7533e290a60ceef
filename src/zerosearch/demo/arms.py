"""What each arm of the demo does, run inside a worker process: train (RL arms) and evaluate.

Every arm is evaluated the same way, through the evaluation harness (``build_methods`` ->
``run_evaluation`` -> ``records.jsonl``) on the same held-out questions with the **real** engine (BM25),
greedy and sampled (one episode per question at temperature 1). RL arms train with the normal trainer
(``build_trainer`` / ``TrainConfig``); arms that train against a simulator also query BM25 as the
``shadow_engine``, so every step logs how often the simulator handed over an answer BM25 would not have.

One (arm, seed) writes ``<out>/arms/<arm>/seed<k>/``: ``train/`` (RL arms: metrics.jsonl, curves.png,
the final checkpoint), ``eval/greedy`` and ``eval/sampled`` (harness output) and, last, ``seed.json``
(its scores, training cost and shadow summary). The runner treats ``seed.json`` as "done".

    result = run_arm_seed("rl_real", 0, config)   # in a worker: train, evaluate, write seed.json
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

from zerosearch.demo.config import DemoConfig
from zerosearch.demo.results import Scores, SeedResult, ShadowSummary, TrainingCost

SEED_FILE = "seed.json"
DATASET = "toyworld"
#: What the trained policy searches during RL, per arm (None: no RL).
TRAIN_ENGINES = {"rl_real": "bm25", "zerosearch": "simulator", "fixed_noise": "simulator", "hinted": "simulator"}
#: The harness method that evaluates each arm (the RL arms and before_rl are the search agent).
METHODS = {"direct": "direct", "rag": "rag"}


# ---- paths ----------------------------------------------------------------------------------------------
def world_dir(config: DemoConfig) -> Path:
    """The toy world (corpus, questions, warm-started policy)."""
    return config.out / "world"


def simulator_dir(config: DemoConfig, recipe: str) -> Path:
    """A trained simulator (``imitate`` or ``hinted``)."""
    return config.out / "simulators" / recipe


def seed_dir(config: DemoConfig, arm: str, seed: int) -> Path:
    """One (arm, seed)'s outputs."""
    return config.out / "arms" / arm / f"seed{seed}"


def simulator_of(arm: str) -> str | None:
    """The simulator recipe an arm trains against (None: the real engine or no training)."""
    return {"zerosearch": "imitate", "fixed_noise": "imitate", "hinted": "hinted"}.get(arm)


# ---- configs --------------------------------------------------------------------------------------------
def bm25_config(config: DemoConfig) -> dict[str, Any]:
    """The real engine of the demo, as an engine config."""
    return {"kind": "bm25", "corpus": str(world_dir(config) / "corpus.jsonl"), "progress": False}


def rollout_settings(config: DemoConfig, temperature: float, n_samples: int) -> dict[str, Any]:
    """The policy's protocol settings (training, validation and evaluation share them)."""
    return {"max_turns": config.max_turns, "max_new_tokens": config.rl.max_new_tokens, "temperature": temperature,
            "n_samples": n_samples, "top_k_documents": config.top_k,
            "template_path": str(world_dir(config) / "template.txt")}


def train_config(config: DemoConfig, arm: str, seed: int) -> dict[str, Any]:
    """The TrainConfig of one RL arm and seed (validated by ``TrainConfig``)."""
    from zerosearch.toyworld.simulator import simulator_engine_config

    world = world_dir(config)
    bm25 = bm25_config(config)
    train: dict[str, Any] = {
        "seed": seed, "total_steps": config.steps, "output_dir": str(seed_dir(config, arm, seed) / "train"),
        "num_threads": 1, "model": {"name_or_path": str(world / "policy"), "device": "cpu"},
        **config.rl.train_overrides(),
        "rollout": rollout_settings(config, 1.0, config.rl.n_samples),
        "engine": bm25, "curriculum": {"kind": "constant", "p_start": 0.0, "p_end": 0.0},
        "reward": {"metric": "f1"},
        "data": {"train": str(world / "train.jsonl"), "val": str(world / "test.jsonl"),
                 "val_limit": config.rl.val_questions, "prompts_per_step": config.rl.prompts_per_step},
        "validation": {"every": min(config.rl.validate_every, config.steps), "at_start": True, "engine": bm25},
        "checkpoint": {"every": 0, "save_final": True},
        "logging": {"tensorboard": False, "progress": config.progress},
    }
    recipe = simulator_of(arm)
    if recipe is None:
        return train
    sim = config.simulator if recipe == "imitate" else config.hinted_simulator
    train["engine"] = simulator_engine_config(simulator_dir(config, recipe).resolve(), sim.model_copy(
        update={"seed": seed}), device="cpu").model_dump(mode="json")
    train["shadow_engine"] = bm25
    if arm == "fixed_noise":
        train["curriculum"] = {"kind": "constant", "p_start": config.rl.fixed_noise, "p_end": config.rl.fixed_noise}
    else:
        train["curriculum"] = config.rl.curriculum.model_copy(update={"total_steps": config.steps}).model_dump(
            mode="json")
    return train


# ---- evaluation -----------------------------------------------------------------------------------------
def test_questions(config: DemoConfig) -> list[Any]:
    """The held-out questions every arm is scored on (the first ``test_questions`` of test.jsonl)."""
    from zerosearch.toyworld.evaluate import load_toy_questions

    return load_toy_questions(world_dir(config) / "test.jsonl", limit=config.test_questions)


def evaluate_arm(arm: str, policy: Any, engine: Any, config: DemoConfig, seed: int, out: Path) -> dict[str, Scores]:
    """Greedy and sampled scores of ``policy`` on the test questions through the harness (records under ``out``)."""
    from zerosearch.evaluation.harness import run_evaluation
    from zerosearch.evaluation.methods import MethodSettings, build_methods
    from zerosearch.protocol import format_information
    from zerosearch.rollout import RolloutConfig
    from zerosearch.toyworld.build import read_template

    template = read_template()
    rag_template = template + format_information(["{documents}"]).replace("Doc 1: {documents}", "{documents}")
    examples = test_questions(config)
    scores = {}
    for decoding, temperature in (("greedy", 0.0), ("sampled", 1.0)):
        rollout = RolloutConfig(**rollout_settings(config, temperature, 1))
        settings = MethodSettings(max_new_tokens=config.rl.max_new_tokens, top_k=config.top_k,
                                  use_chat_template=False, seed=seed, rollout=rollout, temperature=temperature,
                                  direct_template=template, rag_template=rag_template)
        method = METHODS.get(arm, "agent")
        methods = build_methods([method], policy, engine if method != "direct" else None, settings)
        summary = run_evaluation(methods, {DATASET: examples}, out / decoding, seed=seed, batch_size=100,
                                 progress=False, plot_metric=None,
                                 settings={"arm": arm, "decoding": decoding, "rollout": rollout.model_dump(mode="json"),
                                           "questions": len(examples)})
        scores[decoding] = table_scores(summary.table, method)
    return scores


def table_scores(table: Any, method: str) -> Scores:
    """One method's row of the harness's table as :class:`Scores`."""
    usage = table.usage[method]
    return Scores(em=table.score(method, DATASET, "em"), f1=table.score(method, DATASET, "f1"),
                  cover_em=table.score(method, DATASET, "cover_em"), searches=usage.searches_per_question,
                  answered=table.answered[method], n=usage.questions)


# ---- training records -----------------------------------------------------------------------------------

def train_searches(rows: list[dict[str, Any]], episodes_per_step: int) -> int:
    """Searches the policy issued to the training engine: per step, mean searches x episodes."""
    return round(sum(r["rollout/searches"] * episodes_per_step for r in rows if "rollout/searches" in r))


def shadow_summary(rows: list[dict[str, Any]]) -> ShadowSummary | None:
    """Means (and the worst step) of the shadow engine's figures; None without a shadow engine."""
    miss = [r["shadow/train_hit_real_miss"] for r in rows if "shadow/train_hit_real_miss" in r]
    if not miss:
        return None
    agreement = [r["shadow/agreement"] for r in rows if "shadow/agreement" in r]
    return ShadowSummary(train_hit_real_miss=sum(miss) / len(miss), train_hit_real_miss_max=max(miss),
                         agreement=sum(agreement) / len(agreement))


# ---- one (arm, seed) ------------------------------------------------------------------------------------
def run_arm_seed(arm: str, seed: int, config: DemoConfig) -> dict[str, Any]:
    """Train (RL arms) and evaluate one arm at one seed; writes and returns ``seed.json``'s content."""
    from zerosearch.evaluation.cost import DEFAULT_USD_PER_1K_QUERIES, search_cost
    from zerosearch.llm.factory import GeneratorConfig, build_generator
    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.train.build import build_trainer
    from zerosearch.train.config import TrainConfig
    from zerosearch.train.plot import read_metrics

    out = seed_dir(config, arm, seed)
    out.mkdir(parents=True, exist_ok=True)
    wall, cpu = time.perf_counter(), time.process_time()
    real = BM25SearchEngine(world_dir(config) / "corpus.jsonl", progress=False)
    searches, shadow, run_dir = 0, None, None
    if arm in TRAIN_ENGINES:
        train = TrainConfig.model_validate(train_config(config, arm, seed))
        trainer = build_trainer(train)
        trainer.train()
        policy = trainer.generator
        rows = read_metrics(train.output_dir / "metrics.jsonl")
        searches = train_searches(rows, config.rl.prompts_per_step * config.rl.n_samples)
        shadow = shadow_summary(rows)
        run_dir = str(train.output_dir.relative_to(config.out))
    else:
        policy = build_generator(GeneratorConfig(model=str(world_dir(config) / "policy"), dtype="float32",
                                                 device="cpu", batch_size=100))
    scores = evaluate_arm(arm, policy, real, config, seed, out / "eval")
    price = DEFAULT_USD_PER_1K_QUERIES if config.usd_per_1k is None else config.usd_per_1k
    real_searches = searches if TRAIN_ENGINES.get(arm) == "bm25" else 0
    cost = TrainingCost(train_searches=searches, real_engine_searches=real_searches,
                        api_usd=search_cost(searches, price), cpu_seconds=time.process_time() - cpu,
                        wall_seconds=time.perf_counter() - wall)
    result = SeedResult(seed=seed, greedy=scores["greedy"], sampled=scores["sampled"], run_dir=run_dir)
    record = {"arm": arm, "result": result.model_dump(mode="json"), "cost": cost.model_dump(mode="json"),
              "shadow": shadow.model_dump(mode="json") if shadow else None,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    (out / SEED_FILE).write_text(json.dumps(record, indent=1), "utf-8")
    return record
