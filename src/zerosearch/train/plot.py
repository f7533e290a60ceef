"""Training curves as a picture: reward, searches and held-out scores of a run, read from ``metrics.jsonl``.

A reward curve is what people look at first when they ask "did it learn?"; the trainer writes
``curves.png`` next to ``metrics.jsonl`` at the end of every run (``logging.plot``), and the function
works on any finished or running run directory::

    plot_run_curves("runs/toy-grpo/metrics.jsonl", "runs/toy-grpo/curves.png")
"""

from __future__ import annotations

import json
from pathlib import Path

from zerosearch.plotting import pyplot, save_png

#: (metric key, panel title) drawn when present; validation keys are drawn as points on their steps.
PANELS: tuple[tuple[str, str], ...] = (
    ("rollout/reward", "reward (sampled episodes)"),
    ("rollout/searches", "searches per episode"),
    ("val/em", "held-out EM (validation engine)"),
    ("noise_probability", "noise probability (curriculum)"),
)


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a ``metrics.jsonl`` file; a clear error when it is missing or holds no rows."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; point at a run's metrics.jsonl")
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{path} holds no logged steps yet")
    return rows


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """Steps and values of ``key`` over the rows that logged it (None values skipped).

    >>> series([{"step": 0, "a": 1.0}, {"step": 1}, {"step": 2, "a": 0.5}], "a")
    ([0, 2], [1.0, 0.5])
    """
    picked = [(int(r["step"]), float(r[key])) for r in rows if r.get(key) is not None]
    return [s for s, _ in picked], [v for _, v in picked]


def plot_run_curves(metrics_path: str | Path, out_path: str | Path, *, title: str | None = None) -> Path:
    """Save one panel per metric of :data:`PANELS` that the run logged, as PNG; returns the path."""
    rows = read_metrics(metrics_path)
    panels = [(key, name) for key, name in PANELS if series(rows, key)[0]]
    if not panels:
        raise ValueError(f"{metrics_path} logs none of {[key for key, _ in PANELS]}")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, (key, name) in zip(axes[0], panels, strict=True):
        steps, values = series(rows, key)
        ax.plot(steps, values, marker="o" if key.startswith("val/") else None, markersize=4)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title or str(Path(metrics_path).parent.name), fontsize="medium")
    return save_png(fig, out_path, dpi=110)
