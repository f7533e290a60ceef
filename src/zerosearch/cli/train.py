"""``zerosearch train``: RL-train a search agent from one YAML config (see configs/*.yaml).

    zerosearch train --config configs/grpo_tiny.yaml
    zerosearch train --config configs/grpo_tiny.yaml --resume          # continue from the last checkpoint
    zerosearch train --config configs/ppo_tiny.yaml --set total_steps=10 --set optimizer.lr=1e-5
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zerosearch.cli.overrides import cli_overrides


def main(
    config: Annotated[Path, typer.Option("--config", "-c", help="training config YAML (unknown keys are errors)")],
    resume: Annotated[bool, typer.Option("--resume", help="continue from the newest checkpoint in output_dir")] = False,
    checkpoint: Annotated[Path | None, typer.Option(help="resume from this checkpoint directory")] = None,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help="override output_dir")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="override a config key, e.g. --set total_steps=5")
    ] = None,
) -> None:
    """RL-train a search agent (PPO, GRPO, REINFORCE++) against a real or simulated engine."""
    from zerosearch.train.build import build_trainer
    from zerosearch.train.config import ConfigError, load_config

    values = cli_overrides(overrides)
    if output_dir is not None:
        values["output_dir"] = str(output_dir)
    try:
        cfg = load_config(config, values)
    except ConfigError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from None
    try:
        trainer = build_trainer(cfg, resume=checkpoint if checkpoint is not None else resume)
    except (FileNotFoundError, FileExistsError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    final = trainer.train()
    shown = {k: round(v, 4) for k, v in final.items() if k.startswith(("rollout/", "val/"))}
    typer.echo(f"done at step {trainer.step}; outputs in {cfg.output_dir}; last step: {shown}")
