"""The demo report's figures, drawn with matplotlib and returned as ``data:`` URIs for embedding.

The report is one self-contained HTML file (it is mailed, attached to issues, opened offline), so every
image is a base64 PNG inside the page rather than a file beside it. Inputs are already-read training
metrics (``zerosearch.train.plot.read_metrics`` rows), so drawing never touches the run directory.

    uri = training_curves([RunCurves("ZeroSearch", 0, rows)])
    html = f'<img src="{uri}">'
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from zerosearch.plotting import png_bytes, pyplot
from zerosearch.train.plot import series

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: (metric key, panel title) of the overlay of RL arms.
CURVE_PANELS = (("rollout/reward", "training reward (training engine)"),
                ("val/{metric}", "held-out {label} during training (real engine, greedy)"))
SHADOW_KEY = "shadow/train_hit_real_miss"


@dataclass(frozen=True)
class RunCurves:
    """One training run's metrics rows, labelled by its arm; ``seed_index`` 0 is the arm's headline seed."""

    label: str
    seed_index: int
    rows: list[dict]
    seed: int = 0


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def file_data_uri(path: str | Path) -> str:
    """The PNG file at ``path`` as a data URI; a clear error when it is not a PNG."""
    png = Path(path).read_bytes()
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG file")
    return data_uri(png)


def _overlay(runs: Sequence[RunCurves], keys: Sequence[tuple[str, str]], *, hline: float | None = None) -> str | None:
    """One panel per key that any run logged; one colour per arm, dashed lines for its extra seeds."""
    panels = [(key, title) for key, title in keys if any(series(run.rows, key)[0] for run in runs)]
    if not panels:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5.0 * len(panels) + 3.2, 3.4), squeeze=False,
                             gridspec_kw={"width_ratios": [5.0] * len(panels) + [3.2]})
    labels = list(dict.fromkeys(run.label for run in runs))  # an arm keeps its colour in every figure
    colours = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    for ax, (key, title) in zip(axes[0][:-1], panels, strict=True):
        for run in runs:
            steps, values = series(run.rows, key)
            if not steps:
                continue
            ax.plot(steps, values, color=colours[run.label], linestyle="-" if run.seed_index == 0 else "--",
                    marker="o" if key.startswith("val/") else None, markersize=3,
                    label=run.label if run.seed_index == 0 else f"{run.label} (seed {run.seed})")
        if hline is not None:
            ax.axhline(hline, color="grey", linestyle=":", linewidth=1)
            ax.set_ylim(bottom=0)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
    legend = axes[0][-1]  # a panel of its own, so the legend never hides a curve
    legend.axis("off")
    handles = {label: h for ax in axes[0][:-1] for h, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    legend.legend(list(handles.values()), list(handles), fontsize=7, loc="center left", frameon=False)
    return data_uri(png_bytes(fig))


def training_curves(runs: Sequence[RunCurves], metric: str = "em") -> str | None:
    """RL arms overlaid: training reward and the held-out ``metric`` per step; None when no run logged either."""
    panels = [(key.format(metric=metric), title.format(label=metric.upper())) for key, title in CURVE_PANELS]
    return _overlay(runs, panels)


def shadow_curves(runs: Sequence[RunCurves], limit: float) -> str | None:
    """Per step "simulated hit where the real engine misses", with the ``limit`` line; None without shadow."""
    return _overlay(runs, ((SHADOW_KEY, "simulated hit where the real engine misses (shadow)"),), hline=limit)


def noise_schedule(schedule: dict) -> str | None:
    """The curriculum's noise probability per step (``{"steps": [...], "p": [...]}``, optional ``fixed_noise``).

    None when there is nothing to draw.
    """
    steps, p = schedule.get("steps") or [], schedule.get("p") or []
    if not steps or len(steps) != len(p):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    ax.plot(steps, p, color="C1", label="curriculum")
    fixed = schedule.get("fixed_noise")  # the fixed-noise arm's constant p, when the runner records it
    if fixed is not None:
        ax.axhline(fixed, color="C2", linestyle="--", label="fixed noise")
        ax.legend(fontsize=7)
    ax.set_ylim(0, max(1e-3, *p, fixed or 0.0) * 1.15)
    ax.set_title("noise probability of the simulated engine", fontsize="medium")
    ax.set_xlabel("RL step")
    ax.set_ylabel("p (noisy results)")
    ax.grid(alpha=0.3)
    return data_uri(png_bytes(fig))
