"""``zerosearch demo-report``: re-render a finished demo's report from its ``results.json``.

Nothing is re-run: it reads ``<out>/results.json`` and the files it names and writes ``report.html``
(self-contained) and ``summary.txt`` beside it, then prints the summary.

    zerosearch demo-report --out runs/demo
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def main(
    out: Annotated[Path, typer.Option(help="the demo's output directory (holds results.json)")] = Path("runs/demo"),
) -> None:
    """Re-render report.html and summary.txt of a finished demo run from its results.json."""
    from zerosearch.demo.report import SUMMARY_FILE, ReportInputError, write_report

    try:
        path = write_report(out)
    except ReportInputError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo((out / SUMMARY_FILE).read_text("utf-8"), nl=False)
    typer.echo(f"report: {path}")
