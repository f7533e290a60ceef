"""Entry point of the ``zerosearch`` console script.

Each command lives in its own module under ``zerosearch.cli`` and exposes ``main``; this file only
registers them. Command modules import heavy libraries (torch, transformers) inside ``main`` so that
``zerosearch --help`` stays instant.
"""

from __future__ import annotations

import typer

from zerosearch.cli import ask, data, demo, demo_report, evaluate, generate, serve, sft, simulator, train

app = typer.Typer(
    name="zerosearch",
    help="Train LLM search agents with RL against an LLM-simulated search engine (ZeroSearch).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("generate", help=generate.main.__doc__)(generate.main)
app.command("serve", help=serve.main.__doc__)(serve.main)
app.command("train", help=train.main.__doc__)(train.main)
app.command("sft", help=sft.main.__doc__)(sft.main)
app.command("eval", help=evaluate.main.__doc__)(evaluate.main)
app.command("ask", help=ask.main.__doc__)(ask.main)
app.command("demo", help=demo.main.__doc__)(demo.main)
app.command("demo-report", help=demo_report.main.__doc__)(demo_report.main)
app.add_typer(data.app, name="data", help="Load, inspect and export QA datasets (ours and verl parquet).")
app.add_typer(simulator.app, name="simulator", help=simulator.app.info.help)


if __name__ == "__main__":  # pragma: no cover
    app()
