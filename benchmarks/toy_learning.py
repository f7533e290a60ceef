"""Does RL with zerosearch learn? Held-out EM before/after RL on the toy world, for each algorithm.

Builds (or reuses) a seeded toy world with its warm-started policy, evaluates the policy on held-out
questions with the real BM25 engine (greedy and sampled), runs ``zerosearch train`` for each toy config
(GRPO, REINFORCE++, REINFORCE++-baseline, PPO against BM25, and REINFORCE++-baseline against the toy
simulator with the noise curriculum: ZeroSearch's arm, built once into ``<world>/simulator``), and
evaluates again, always with real BM25. Prints a table and writes
``benchmarks/results/toy_learning.json`` (reward curve per run included) and a picture of the reward
curves beside it (``toy_learning.png``)::

    .venv/bin/python benchmarks/toy_learning.py                      # all algorithms, 40 steps each
    .venv/bin/python benchmarks/toy_learning.py --algos grpo --steps 20 --world runs/toyworld
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALGOS = ("grpo", "reinforce_pp", "reinforce_pp_baseline", "ppo", "reinforce_pp-simulated")
SIMULATED = "-simulated"  # config suffix: trains against the toy simulator (built once into <world>/simulator)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, default=ROOT / "runs" / "toyworld-bench", help="toy world dir")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the world even if it exists")
    parser.add_argument("--seed", type=int, default=0, help="world/warm-start seed")
    parser.add_argument("--rl-seed", type=int, default=0, help="RL run seed")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--steps", type=int, default=40, help="RL steps per algorithm")
    parser.add_argument("--eval-questions", type=int, default=300, help="held-out questions evaluated")
    parser.add_argument("--eval-samples", type=int, default=2, help="sampled episodes per question")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=None, help="override optimizer.lr of the configs")
    parser.add_argument("--prompts", type=int, default=None, help="override data.prompts_per_step")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "toy_learning.json")
    return parser.parse_args()


def toy_train_config(algo: str, world: Path, steps: int, seed: int, threads: int, out_dir: Path, **extra):
    """configs/toy-<algo>.yaml with its paths pointed at ``world`` and the run's length and seed."""
    from zerosearch.train.config import load_config

    corpus = str(world / "corpus.jsonl")
    engine = {"engine.generator.model": str(world / "simulator"), "shadow_engine.corpus": corpus
              } if algo.endswith(SIMULATED) else {"engine.corpus": corpus}
    return load_config(ROOT / "configs" / f"toy-{algo}.yaml", {**extra, **engine,
        "seed": seed, "total_steps": steps, "num_threads": threads, "output_dir": str(out_dir),
        "model.name_or_path": str(world / "policy"), "rollout.template_path": str(world / "template.txt"),
        "data.train": str(world / "train.jsonl"),
        "data.val": None, "validation.every": 0, "validation.at_start": False, "validation.engine": None,
    })


def evaluate(policy, engine, examples, rollout, samples: int) -> dict[str, dict[str, float]]:
    from zerosearch.toyworld.evaluate import evaluate_toy_policy

    return {
        "greedy": evaluate_toy_policy(policy, engine, examples, rollout, temperature=0.0),
        "sampled": evaluate_toy_policy(policy, engine, examples, rollout, temperature=1.0, n_samples=samples),
    }


def reward_curve(run_dir: Path) -> list[dict[str, float]]:
    """(step, reward, em, searches) per logged step of a run's metrics.jsonl."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    keys = {"rollout/reward": "reward", "rollout/em": "em", "rollout/searches": "searches",
            "noise_probability": "noise"}
    return [{"step": r["step"], **{v: r[k] for k, v in keys.items() if k in r}} for r in rows if "rollout/reward" in r]


def window_mean(curve: list[dict[str, float]], first: bool, width: int = 5) -> float:
    part = curve[:width] if first else curve[-width:]
    return sum(c["reward"] for c in part) / len(part)


def run_algo(algo: str, args: argparse.Namespace, examples, bm25, base_rollout) -> dict:
    from zerosearch.train.build import build_trainer

    run_dir = args.world.parent / f"toy-bench-{algo}-seed{args.rl_seed}"
    extra = {k: v for k, v in (("optimizer.lr", args.lr), ("data.prompts_per_step", args.prompts)) if v is not None}
    config = toy_train_config(algo, args.world, args.steps, args.rl_seed, args.threads, run_dir, **extra)
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    start = time.perf_counter()
    trainer = build_trainer(config)
    trainer.train()
    seconds = time.perf_counter() - start
    after = evaluate(trainer.generator, bm25, examples, base_rollout, args.eval_samples)
    curve = reward_curve(run_dir)
    return {"algo": algo, "estimator": config.algorithm.estimator, "train_seconds": seconds,
            "seconds_per_step": seconds / args.steps, "after": after, "reward_curve": curve,
            "reward_step1": curve[0]["reward"], "reward_first5": window_mean(curve, True),
            "reward_last5": window_mean(curve, False)}


def is_current_build(world: Path, seed: int) -> bool:
    """True when ``world`` holds a build made with today's default ToyBuildConfig and ``seed``."""
    from zerosearch.toyworld import ToyBuildConfig

    manifest = world / "manifest.json"
    if not manifest.is_file():
        return False
    expected = ToyBuildConfig().model_copy(update={"seed": seed}).seeded().model_dump(mode="json")
    return json.loads(manifest.read_text())["config"] == expected


def main() -> None:
    args = parse_args()
    import torch

    from zerosearch.llm.transformers_backend import TransformersGenerator
    from zerosearch.search.bm25 import BM25SearchEngine
    from zerosearch.toyworld.build import build_toy_world
    from zerosearch.toyworld.evaluate import load_toy_questions

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.rebuild or not is_current_build(args.world, args.seed):
        build_toy_world(args.world, seed=args.seed, overwrite=True)
    if any(a.endswith(SIMULATED) for a in args.algos) and not (args.world / "simulator" / "manifest.json").is_file():
        from zerosearch.toyworld.simulator import SimulatorConfig, build_simulator

        build_simulator(args.world, args.world / "simulator", SimulatorConfig(seed=args.seed), overwrite=True)
    build_s = time.perf_counter() - start
    examples = load_toy_questions(args.world / "test.jsonl", args.eval_questions)
    bm25 = BM25SearchEngine(args.world / "corpus.jsonl", progress=False)
    base_rollout = toy_train_config(args.algos[0], args.world, 1, 0, args.threads, Path("unused")).rollout
    policy = TransformersGenerator.from_pretrained(str(args.world / "policy"), device="cpu", dtype="float32")
    before = evaluate(policy, bm25, examples, base_rollout, args.eval_samples)
    result = {"world": str(args.world), "lr": args.lr, "prompts": args.prompts,
              "seed": args.seed, "rl_seed": args.rl_seed, "steps": args.steps,
              "eval_questions": len(examples), "eval_samples": args.eval_samples, "build_seconds": build_s,
              "manifest": json.loads((args.world / "manifest.json").read_text()), "before": before, "runs": [],
              "simulator": _simulator_figures(args.world), "complete": False,
              "out": str(args.out)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for algo in args.algos:  # the JSON is rewritten after every run, so a crash loses only the run in flight
        result["runs"].append(run_algo(algo, args, examples, bm25, base_rollout))
        result["complete"] = len(result["runs"]) == len(args.algos)
        args.out.write_text(json.dumps(result, indent=1))
    print_table(result)
    print(f"wrote {plot_curves(result, args.out.with_suffix('.png'))}")


def plot_curves(result: dict, path: Path) -> Path:
    """Reward per step of every run, one line per algorithm, with the held-out EM before/after in the legend."""
    from zerosearch.plotting import pyplot, save_png

    fig, ax = pyplot().subplots(figsize=(6.4, 3.6))
    before = result["before"]["greedy"]["em"]
    for run in result["runs"]:
        steps = [c["step"] for c in run["reward_curve"]]
        label = f"{run['algo']} (held-out greedy EM {before:.2f} -> {run['after']['greedy']['em']:.2f})"
        noise = max(c.get("noise", 0.0) for c in run["reward_curve"])
        if noise > 0:  # the simulator's noisy results lower the training reward, not the held-out score
            label += f"\n  trained on noisy simulated results (p up to {noise:.2f})"
        ax.plot(steps, [c["reward"] for c in run["reward_curve"]], label=label)
    ax.set_xlabel("RL step")
    ax.set_ylabel("reward of sampled episodes (F1)")
    ax.set_title(f"toy world seed {result['seed']}, RL seed {result['rl_seed']}: reward per step", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_png(fig, path, dpi=110)


def _simulator_figures(world: Path) -> dict | None:
    """The toy simulator's own measurements (useful hit, leniency, noisy leak), when one was built."""
    manifest = world / "simulator" / "manifest.json"
    return json.loads(manifest.read_text())["metrics"] if manifest.is_file() else None


def print_table(result: dict) -> None:
    b = result["before"]
    print(f"toy world {result['world']} (seed {result['seed']}); held-out {result['eval_questions']} questions, "
          f"BM25 top-1; RL {result['steps']} steps, lr {result['lr']}, prompts/step {result['prompts']} x 8 samples")
    print(f"{'run':26s} {'greedy EM':>9s} {'sampled EM':>10s} {'sampled F1':>10s} {'search':>6s} {'copy':>5s} "
          f"{'reward step 1 -> last 5':>24s} {'s/step':>6s}")
    print(f"{'warm-start (before RL)':26s} {b['greedy']['em']:9.3f} {b['sampled']['em']:10.3f} "
          f"{b['sampled']['f1']:10.3f} {b['sampled']['searched']:6.2f} {b['sampled']['copy_rate']:5.2f}")
    for r in result["runs"]:
        a = r["after"]
        print(f"{r['algo']:26s} {a['greedy']['em']:9.3f} {a['sampled']['em']:10.3f} {a['sampled']['f1']:10.3f} "
              f"{a['sampled']['searched']:6.2f} {a['sampled']['copy_rate']:5.2f} "
              f"{r['reward_step1']:11.3f} -> {r['reward_last5']:.3f} {r['seconds_per_step']:8.2f}")
    print(f"wrote {result['out']}")


if __name__ == "__main__":
    main()
