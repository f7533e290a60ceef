"""``zerosearch demo``: ZeroSearch's claims side by side, offline, on a laptop CPU, in any world.

``--world toy`` (the default) builds a seeded toy world (made-up people, up to three searches per
question, top-3 results with distractors that share names) and a tiny policy warm-started to search and
read, tunes two tiny simulator LLMs with ``zerosearch.simulator`` (a query-sensitive one that never sees
the answer, and a hinted one in the paper's prompt style), then runs seven arms in parallel worker
processes and scores each on the same held-out questions with the **real** engine (BM25), greedy and
sampled: direct answer, RAG, the policy before RL, RL with the real engine (two seeds), ZeroSearch
(fine-tuned simulator + noise curriculum, two seeds), the same simulator at fixed noise, and RL with the
hinted simulator. Everything lands in ``--out``; ``results.json`` holds the table, costs, curves,
simulator quality and example episodes. A second run reuses everything already finished. ``--world
hotpotqa`` runs the same experiment on real HotpotQA questions and their own Wikipedia paragraphs with
SmolLM2-135M-Instruct as the policy and the simulators; ``--world my_world.yaml`` on a user's own
questions and corpus (docs/demo.md).

    zerosearch demo                                   # runs/demo, the toy world, all arms
    zerosearch demo --world hotpotqa                  # runs/demo-hotpotqa: real text, SmolLM2
    zerosearch demo --arms before_rl,rl_real --steps 10 --out /tmp/demo
    zerosearch demo --config demo.yaml                # any DemoConfig field (see docs/demo.md)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def main(
    world: Annotated[str, typer.Option(
        help="toy (made-up facts, tiny models), hotpotqa (real text, SmolLM2) or a world YAML file")] = "toy",
    out: Annotated[Path | None, typer.Option(
        help="directory for the world, simulators, arms and results (default runs/demo, runs/demo-<world>)")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the world, warm-start, simulators and first RL run")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="RL steps per RL arm (default: the world's)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="parallel worker processes (default 2)")] = None,
    arms: Annotated[str | None, typer.Option(
        help="comma-separated subset of the world's arms, e.g. direct,rag,before_rl,rl_real,zerosearch")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of DemoConfig fields (flags override it)")] = None,
) -> None:
    """Run a world's experiment: warm-start, simulators, every arm, held-out scores with the real engine."""
    from pydantic import ValidationError

    from zerosearch.demo.config import load_demo_config
    from zerosearch.demo.report import terminal_summary
    from zerosearch.demo.runner import DemoConfigMismatch, run_demo

    selected = [a.strip() for a in arms.split(",") if a.strip()] if arms else None
    try:
        demo = load_demo_config(config, world=world, out=out, seed=seed, steps=steps, workers=workers, arms=selected)
    except (ValidationError, ValueError, FileNotFoundError) as err:
        raise typer.BadParameter(str(err)) from err
    try:
        results = run_demo(demo, log=typer.echo)
    except DemoConfigMismatch as err:
        raise typer.BadParameter(str(err)) from err
    typer.echo(terminal_summary(results))
    typer.echo(f"outputs in {demo.out}: report.html (open it in a browser), summary.txt, results.json, "
               "arms/<arm>/seed<k>/ (training runs, evaluation records)")
