"""The simulator quality report: one table (markdown), the full result (JSON) and a bar chart (PNG).

    write_report(result, "docs/simulator-report", title="HotpotQA, 30 held-out questions")
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from zerosearch.provenance import package_versions

COLUMNS = (
    ("useful_hit", "useful hit"), ("noisy_leak", "noisy leak"), ("useful_minus_leak", "useful - leak"),
    ("format_valid", "format valid"), ("mean_words", "words/doc"), ("leniency", "leniency"),
    ("reference_leniency", "reference leniency"), ("hit_when_reference_misses", "hit when ref. misses"),
    ("agreement", "agreement"), ("seconds_per_query", "s/query"),
)
PLOTTED = ("useful_hit", "noisy_leak", "leniency", "hit_when_reference_misses", "agreement")


def format_cell(value: Any, key: str) -> str:
    """One table cell: "—" for a missing or NaN figure, words per document to 0.1, the rest to 0.001."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.1f}" if key == "mean_words" else f"{value:.3f}"


def markdown_table(result: dict[str, Any]) -> str:
    """The table: one row per engine, the reference (real engine) first."""
    head = "| engine | " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|---|" + "---|" * len(COLUMNS)
    rows = [f"| {name} | " + " | ".join(format_cell(row.get(k), k) for k, _ in COLUMNS) + " |"
            for name, row in result["table"].items()]
    return "\n".join([head, rule, *rows])


def plot(result: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Grouped bars of :data:`PLOTTED` per engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["table"])
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        values = [result["table"][name].get(k) for k in PLOTTED]
        values = [0.0 if v is None or math.isnan(v) else v for v in values]
        ax.bar([j + i * width for j in range(len(PLOTTED))], values, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(PLOTTED))])
    ax.set_xticklabels([dict(COLUMNS)[k] for k in PLOTTED])
    ax.set_ylim(0, 1.05)
    ax.set_title(title or "simulator quality")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _section(result: dict[str, Any], png: str, title: str) -> list[str]:
    return [markdown_table(result), "",
            f"top-k {result['top_k']}; leniency over perturbed queries of kind(s) {result['leniency_kinds']}; "
            "'reference' is the real engine.", "", f"![{title}]({png})", ""]


def write_report(result: dict[str, Any], out_dir: str | Path, *, title: str = "", extra: dict | None = None,
                 per_query: bool = True) -> Path:
    """``report.json`` (everything, plus versions and ``extra``), ``report.md`` and a bar chart per table:
    ``report.png`` for one table, ``report-<split>.png`` per split of an ``evaluate_splits`` result, each
    under a heading that says what its split measures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    body = {**result, "versions": package_versions(), **(extra or {})}
    if not per_query:
        body.pop("per_query", None)
        for split in body.get("splits", {}).values():
            split.pop("per_query", None)
    (out / "report.json").write_text(json.dumps(body, indent=1), "utf-8")
    lines = [f"# {title or 'Simulator quality'}", ""]
    if "splits" in result:
        for name, split in result["splits"].items():
            lines += [f"## {name}", "", f"{split['description']}.", ""]
            lines += _section(split, f"report-{name}.png", name)
            plot(split, out / f"report-{name}.png", f"{title} ({name})" if title else name)
    else:
        lines += _section(result, "report.png", "simulator quality")
        plot(result, out / "report.png", title)
    (out / "report.md").write_text("\n".join(lines), "utf-8")
    return out
