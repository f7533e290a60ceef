"""``--set key=value`` for the commands that read a YAML config (train, sft): one parser, one error."""

from __future__ import annotations

import typer

from zerosearch.config_files import ConfigError, parse_overrides


def cli_overrides(pairs: list[str] | None) -> dict[str, object]:
    """Dotted overrides from ``--set`` options; a malformed pair is a usage error (exit 2)."""
    try:
        return parse_overrides(pairs or [])
    except ConfigError as err:
        raise typer.BadParameter(str(err)) from None
