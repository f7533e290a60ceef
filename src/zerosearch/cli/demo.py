"""``zerosearch demo``: the ZeroSearch loop in miniature, offline, in minutes on a laptop CPU.

It builds the seeded toy world (made-up people, a wiki-style corpus, a word-level tokenizer and a tiny
policy warm-started to search and read passages but to search only about a third of the time), tunes a
tiny *simulator* LLM to play the search engine (``toyworld/simulator.py``: it writes what BM25 would
return, never sees the gold answer), RL-trains the policy with GRPO against the simulator under the
paper's noise curriculum (p 0 -> 0.3), and validates it every 10 steps on held-out questions with the
*real* BM25 engine: training costs no real search, evaluation uses the real one. ``--engine bm25``
trains against BM25 instead, for comparison. Everything lands in ``--out``: the world, the simulator,
``train/metrics.jsonl``, ``train/curves.png``, checkpoints, the resolved config and package versions.

    zerosearch demo                      # runs/demo, seed 0, simulated engine
    zerosearch demo --engine bm25 --steps 10 --out /tmp/demo
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

SHOWN = ("val/em", "val/f1", "val/searches", "val/answer_rate")
VALIDATE_EVERY = 10


class DemoEngine(str, Enum):
    """What the policy searches during RL (validation always uses real BM25)."""

    SIMULATED = "simulated"
    BM25 = "bm25"


def demo_config(
    world: Path, out: Path, steps: int, seed: int, engine: DemoEngine = DemoEngine.SIMULATED
) -> dict[str, Any]:
    """The embedded training config of the demo (GRPO on the toy world, validated with BM25)."""
    bm25 = {"kind": "bm25", "corpus": str(world / "corpus.jsonl"), "progress": False}
    config: dict[str, Any] = {
        "seed": seed,
        "total_steps": steps,
        "output_dir": str(out / "train"),
        "num_threads": 1,
        "model": {"name_or_path": str(world / "policy")},
        "algorithm": {"estimator": "grpo", "kl": {"coef": 0.0}, "micro_batch_size": 64},
        "optimizer": {"lr": 3.0e-4, "weight_decay": 0.0},
        "rollout": {"max_turns": 2, "max_new_tokens": 12, "temperature": 1.0, "n_samples": 8,
                    "top_k_documents": 1, "template_path": str(world / "template.txt")},
        "engine": bm25,
        "curriculum": {"kind": "constant", "p_start": 0.0, "p_end": 0.0},
        "reward": {"metric": "f1"},
        "data": {"train": str(world / "train.jsonl"), "val": str(world / "test.jsonl"), "val_limit": 150,
                 "prompts_per_step": 16},
        "validation": {"every": min(VALIDATE_EVERY, steps), "at_start": True, "engine": bm25},
        "checkpoint": {"every": 0, "save_final": True},
        "logging": {"tensorboard": False, "progress": True},
    }
    if engine is DemoEngine.SIMULATED:
        from zerosearch.toyworld.simulator import SimulatorConfig, simulator_engine_config

        simulator = SimulatorConfig(seed=seed)
        config["engine"] = simulator_engine_config(world / "simulator", simulator).model_dump(mode="json")
        config["curriculum"] = {"kind": "exponential", "p_start": 0.0, "p_end": 0.3, "base": 4.0}
    return config


def main(
    out: Annotated[Path, typer.Option(help="directory for the toy world and the training run")] = Path("runs/demo"),
    steps: Annotated[int, typer.Option(min=1, help="RL steps (16 questions x 8 samples each)")] = 30,
    seed: Annotated[int, typer.Option(help="seed for the world, the warm-start, the simulator and the RL run")] = 0,
    engine: Annotated[DemoEngine, typer.Option(help="search engine during RL (validation: real BM25)")] = (
        DemoEngine.SIMULATED),
) -> None:
    """Run the embedded default: toy world, simulator, RL against the simulator, held-out EM with real BM25."""
    from zerosearch.toyworld.build import build_toy_world
    from zerosearch.toyworld.simulator import SimulatorConfig, build_simulator
    from zerosearch.train.build import build_trainer
    from zerosearch.train.config import TrainConfig

    world = out / "world"
    if (world / "manifest.json").is_file():
        typer.echo(f"reusing the toy world in {world} (delete it to rebuild)")
    else:
        build_toy_world(world, seed=seed, log=typer.echo)
    if engine is DemoEngine.SIMULATED:
        if (world / "simulator" / "manifest.json").is_file():
            typer.echo(f"reusing the simulator in {world / 'simulator'} (delete it to rebuild)")
        else:
            build_simulator(world, world / "simulator", SimulatorConfig(seed=seed), overwrite=True, log=typer.echo)
    config = TrainConfig.model_validate(demo_config(world, out, steps, seed, engine))
    trainer = build_trainer(config)
    trainer.train()
    typer.echo(before_after(Path(config.output_dir) / "metrics.jsonl", engine.value))
    typer.echo(f"outputs in {out}: curves.png, metrics.jsonl, checkpoints, config and versions under {out / 'train'}")


def before_after(metrics_path: Path, trained_with: str = "bm25") -> str:
    """Held-out validation at the first and last validated steps, as a small table (greedy, real BM25)."""
    rows = [json.loads(line) for line in metrics_path.read_text("utf-8").splitlines() if line.strip()]
    validated = [r for r in rows if "val/em" in r]
    if not validated:
        raise RuntimeError(f"{metrics_path} holds no validation step; the demo config validates at start and end")
    first, last = validated[0], validated[-1]
    lines = [f"RL against the {trained_with} engine; held-out questions, greedy, real BM25 "
             f"| step {first['step']} | step {last['step']}"]
    nan = float("nan")
    lines += [f"{name:<36} | {first.get(name, nan):.3f} | {last.get(name, nan):.3f}" for name in SHOWN]
    return "\n".join(lines)
