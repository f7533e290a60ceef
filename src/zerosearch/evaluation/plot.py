"""Bar chart of a results table (one group of bars per dataset plus the average, one bar per method).

    plot_table(table, "out/results.png", metric="em")
"""

from __future__ import annotations

from pathlib import Path

from zerosearch.evaluation.tables import AVG, METRIC_TITLES, ResultTable
from zerosearch.plotting import pyplot, save_png


def plot_table(table: ResultTable, path: str | Path, *, metric: str = "em", title: str | None = None) -> Path:
    """Save a grouped bar chart of ``metric`` (in %) as PNG; returns the path."""
    if metric not in table.metrics:
        raise ValueError(f"metric {metric!r} is not in the table; choose one of {', '.join(table.metrics)}")
    plt = pyplot()
    columns = [*table.datasets, AVG]
    width = 0.8 / max(len(table.methods), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(columns) + 2), 4.0))
    for i, method in enumerate(table.methods):
        values = [table.score(method, d, metric) for d in table.datasets] + [table.average(method, metric)]
        xs = [c + (i - (len(table.methods) - 1) / 2) * width for c in range(len(columns))]
        ax.bar(xs, [100 * (v or 0.0) for v in values], width=width, label=method)
    ax.set_xticks(range(len(columns)), columns, rotation=20, ha="right")
    ax.set_ylabel(f"{METRIC_TITLES.get(metric, metric)} (%)")
    ax.set_title(title or f"{METRIC_TITLES.get(metric, metric)} by dataset")
    ax.legend(fontsize="small")
    return save_png(fig, path, dpi=120)
