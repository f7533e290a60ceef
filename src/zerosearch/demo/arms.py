"""What each arm does, in a worker process: train (RL arms) and evaluate — the same in every world.

Every arm is evaluated the same way, through the evaluation harness (``build_methods`` ->
``run_evaluation`` -> ``records.jsonl``) on the same held-out questions with the world's **real** engine,
with the world's decodings (greedy: T=0; sampled: one episode per question at T=1). RL arms train with the
normal trainer (``build_trainer`` / ``TrainConfig``); arms that train against a simulator also query the
real engine as the ``shadow_engine``, so every step logs how often the simulator handed over an answer the
real engine would not have.

One (arm, seed) writes ``<out>/arms/<arm>/seed<k>/``: ``train/`` (RL arms: metrics.jsonl, curves.png, the
final checkpoint and the resolved ``config.yaml``, which ``zerosearch train --config`` reruns),
``eval/<decoding>`` (harness output) and, last, ``seed.json`` (its scores, training cost and shadow
summary). The runner treats ``seed.json`` as "done".

    result = run_arm_seed("rl_real", 0, config)   # in a worker: train, evaluate, write seed.json
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

from zerosearch.demo import stages
from zerosearch.demo.config import DemoConfig, merge
from zerosearch.demo.results import Scores, SeedResult, ShadowSummary, TrainingCost
from zerosearch.demo.world import ArmSpec

SEED_FILE = "seed.json"
DATASET = "heldout"
TEMPERATURES = {"greedy": 0.0, "sampled": 1.0}


def seed_dir(config: DemoConfig, arm: str, seed: int) -> Path:
    """One (arm, seed)'s outputs."""
    return config.out / "arms" / arm / f"seed{seed}"


def train_engine_name(arm: ArmSpec) -> str | None:
    """What the arm searched during RL: 'real', a simulator's name, or None (no RL)."""
    return arm.train.engine if arm.train else None


# ---- configs --------------------------------------------------------------------------------------------
def rollout_settings(config: DemoConfig, temperature: float, n_samples: int) -> dict[str, Any]:
    """The policy's protocol settings (training, validation and evaluation share them)."""
    rollout = config.world.rollout
    return {"max_turns": rollout.max_turns, "max_new_tokens": rollout.max_new_tokens, "temperature": temperature,
            "n_samples": n_samples, "top_k_documents": rollout.top_k,
            "max_information_tokens": rollout.max_information_tokens,
            "template_path": stages.template_path(config), "use_chat_template": config.world.prompt.use_chat_template}


def curriculum_of(config: DemoConfig, arm: ArmSpec) -> dict[str, Any]:
    """The arm's noise schedule: none on the real engine, the world's curriculum, or a fixed p."""
    rl = config.world.rl
    noise = "none" if arm.train is None or arm.train.engine == "real" else arm.train.noise
    if noise == "curriculum":
        return rl.curriculum.model_copy(update={"total_steps": rl.steps}).model_dump(mode="json")
    p = rl.fixed_noise if noise == "fixed" else 0.0
    return {"kind": "constant", "p_start": p, "p_end": p}


def train_config(config: DemoConfig, arm: ArmSpec, seed: int) -> dict[str, Any]:
    """The TrainConfig of one RL arm and seed (validated by ``TrainConfig``)."""
    rl = config.world.rl
    real = stages.real_engine_config(config)
    world = stages.world_dir(config)
    kl = {"coef": rl.kl_coef} if rl.kl_coef > 0 else {"coef": 0.0, "placement": "none"}
    train: dict[str, Any] = {
        "seed": seed, "total_steps": rl.steps, "output_dir": str(seed_dir(config, arm.name, seed) / "train"),
        "num_threads": 1, "model": {"name_or_path": str(stages.policy_dir(config)), "device": "cpu"},
        "algorithm": {"estimator": rl.estimator, "kl": kl},
        "optimizer": {"lr": rl.learning_rate},
        "rollout": rollout_settings(config, rl.temperature, rl.n_samples),
        "engine": real, "curriculum": curriculum_of(config, arm), "reward": {"metric": "f1"},
        "data": {"train": str(world / "train.jsonl"), "val": str(world / "test.jsonl"),
                 "val_limit": rl.val_questions, "prompts_per_step": rl.prompts_per_step},
        "validation": {"every": min(rl.validate_every, rl.steps), "at_start": True, "engine": real},
        "checkpoint": {"every": 0, "save_final": True},
        "logging": {"tensorboard": False, "progress": config.progress},
    }
    name = train_engine_name(arm)
    if name not in (None, "real"):
        train["engine"] = stages.simulator_engine(config, name, seed)
        train["shadow_engine"] = real
    return merge(train, rl.train)


# ---- evaluation -----------------------------------------------------------------------------------------
def test_questions(config: DemoConfig) -> list[Any]:
    """The held-out questions every arm is scored on."""
    return stages.read_questions(config, "test", config.world.evaluation.test_questions, dataset=DATASET)


def method_templates(config: DemoConfig) -> dict[str, Any]:
    """Direct and RAG prompts: the toy policy's own short template, else the harness's defaults."""
    if config.world.prompt.template != "toy":
        return {"use_chat_template": config.world.prompt.use_chat_template}
    from zerosearch.protocol import format_information
    from zerosearch.toyworld.build import read_template

    template = read_template()
    rag = template + format_information(["{documents}"]).replace("Doc 1: {documents}", "{documents}")
    return {"use_chat_template": False, "direct_template": template, "rag_template": rag}


def evaluate_arm(arm: ArmSpec, policy: Any, engine: Any, config: DemoConfig, seed: int,
                 out: Path) -> dict[str, Scores]:
    """Scores of ``policy`` on the test questions per decoding, through the harness (records under ``out``)."""
    from zerosearch.evaluation.harness import run_evaluation
    from zerosearch.evaluation.methods import MethodSettings, build_methods
    from zerosearch.rollout import RolloutConfig

    evaluation = config.world.evaluation
    examples = test_questions(config)
    scores = {}
    for decoding in evaluation.decodings:
        temperature = TEMPERATURES[decoding]
        rollout = RolloutConfig(**rollout_settings(config, temperature, 1))
        settings = MethodSettings(max_new_tokens=evaluation.answer_tokens or config.world.rollout.max_new_tokens,
                                  top_k=config.world.rollout.top_k, seed=seed, rollout=rollout,
                                  temperature=temperature, **method_templates(config))
        methods = build_methods([arm.method], policy, engine if arm.method != "direct" else None, settings)
        summary = run_evaluation(methods, {DATASET: examples}, out / decoding, seed=seed,
                                 batch_size=evaluation.batch_size, progress=False, plot_metric=None,
                                 settings={"arm": arm.name, "decoding": decoding,
                                           "rollout": rollout.model_dump(mode="json"), "questions": len(examples)})
        scores[decoding] = table_scores(summary.table, arm.method)
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
def run_arm_seed(name: str, seed: int, config: DemoConfig) -> dict[str, Any]:
    """Train (RL arms) and evaluate one arm at one seed; writes and returns ``seed.json``'s content."""
    from zerosearch.evaluation.cost import DEFAULT_USD_PER_1K_QUERIES, search_cost
    from zerosearch.llm.factory import GeneratorConfig, build_generator
    from zerosearch.search.factory import build_engine
    from zerosearch.taskgraph import report_progress
    from zerosearch.train.build import build_trainer
    from zerosearch.train.config import TrainConfig
    from zerosearch.train.plot import read_metrics

    arm = config.world.arm(name)
    out = seed_dir(config, name, seed)
    out.mkdir(parents=True, exist_ok=True)
    wall, cpu = time.perf_counter(), time.process_time()
    real = build_engine(stages.parse_engine(stages.real_engine_config(config)))
    searches, shadow, run_dir = 0, None, None
    if arm.train is not None:
        train = TrainConfig.model_validate(train_config(config, arm, seed))
        trainer = build_trainer(train)
        trainer.train(on_step=lambda step, _: report_progress(step, train.total_steps, "RL steps"))
        policy = trainer.generator
        rows = read_metrics(train.output_dir / "metrics.jsonl")
        searches = train_searches(rows, config.world.rl.prompts_per_step * config.world.rl.n_samples)
        shadow = shadow_summary(rows)
        run_dir = str(train.output_dir.relative_to(config.out))
    else:
        policy = build_generator(GeneratorConfig(model=str(stages.policy_dir(config)), dtype="float32",
                                                 device="cpu", batch_size=config.world.evaluation.batch_size))
    scores = evaluate_arm(arm, policy, real, config, seed, out / "eval")
    usd = config.world.usd_per_1k
    price = DEFAULT_USD_PER_1K_QUERIES if usd is None else usd
    real_searches = searches if train_engine_name(arm) == "real" else 0
    cost = TrainingCost(train_searches=searches, real_engine_searches=real_searches,
                        api_usd=search_cost(searches, price), cpu_seconds=time.process_time() - cpu,
                        wall_seconds=time.perf_counter() - wall)
    result = SeedResult(seed=seed, scores=scores, run_dir=run_dir)
    record = {"arm": name, "result": result.model_dump(mode="json"), "cost": cost.model_dump(mode="json"),
              "shadow": shadow.model_dump(mode="json") if shadow else None,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    (out / SEED_FILE).write_text(json.dumps(record, indent=1), "utf-8")
    return record
