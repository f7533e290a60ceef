"""``zerosearch sft``: warm-start a policy on the search protocol (demonstrations from a real engine + TRL SFT).

    zerosearch sft --config configs/sft-smollm2-hotpotqa.yaml
    zerosearch sft --config configs/sft-smollm2-hotpotqa.yaml --set sft.max_steps=5 -o runs/sft-try
    zerosearch ask "..." --policy runs/sft-smollm2-hotpotqa/model --engine bm25 \\
        --corpus runs/sft-smollm2-hotpotqa/corpus.jsonl

Any base model that does not write ``<search>`` / ``<answer>`` needs this before RL (it gives RL a reward
signal). Bad input (a missing file, an empty split, an unknown engine, a bad key) exits with code 2 and
the reason. Heavy imports happen inside ``main``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zerosearch.cli.overrides import cli_overrides


def main(
    config: Annotated[Path, typer.Option("--config", "-c", help="warm-start config YAML (unknown keys are errors)")],
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help="override output_dir")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="override a config key, e.g. --set sft.max_steps=5")
    ] = None,
) -> None:
    """Warm-start a policy on the search protocol: demonstrations from a real engine, then TRL SFT."""
    from zerosearch.data.loaders import DataError
    from zerosearch.search.corpus import CorpusError
    from zerosearch.sft import SFTDataError
    from zerosearch.warmstart import ConfigError, load_warmstart_config, run_warmstart

    values = cli_overrides(overrides)
    if output_dir is not None:
        values["output_dir"] = str(output_dir)
    try:
        cfg = load_warmstart_config(config, values)
        result = run_warmstart(cfg, log=typer.echo)
    except (ConfigError, DataError, CorpusError, SFTDataError, FileNotFoundError, FileExistsError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"warm-started model in {result.sft.output_dir} (policy-token loss {result.sft.loss_before:.3f} -> "
               f"{result.sft.loss_after:.3f}); held-out questions in {cfg.output_dir / 'split' / 'test.jsonl'}; "
               f"record {result.record_path}")
