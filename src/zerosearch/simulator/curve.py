"""Quality per epoch: is the simulator trained to competence, still learning, or over-fitting?

A single end-of-training figure cannot tell "trained too little" from "cannot learn this". The pipeline
therefore saves the model every ``every`` epochs while it trains (:class:`EpochCheckpoints`, a
transformers callback that also measures the completion loss of held-out SFT rows), then measures each
checkpoint on a fixed subset of held-out queries (:func:`measure_curve`), and draws the figures beside the
real engine's (:func:`curve_figure`).

    callback = EpochCheckpoints(out / "checkpoints", steps_per_epoch=69, every=0.5, epochs=2, heldout_rows=rows)
    run_sft(config, data, callbacks=[callback])
    curve = measure_curve(callback.saved, records, engine_for, top_k=3)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from zerosearch.search.base import SearchEngine
from zerosearch.simulator.collect import SearchRecord
from zerosearch.simulator.evaluate import measure_engine

CURVE_METRICS = ("useful_hit", "noisy_leak", "format_valid", "leniency")


def checkpoint_steps(steps_per_epoch: float, every: float, epochs: float) -> dict[int, float]:
    """``{step: epoch}`` every ``every`` epochs, the last at the run's final step (``ceil(epochs *
    steps_per_epoch)``, labelled ``epochs``).

    >>> checkpoint_steps(10, 0.5, 2)
    {5: 0.5, 10: 1.0, 15: 1.5, 20: 2.0}
    >>> checkpoint_steps(10.5, 0.5, 1)
    {5: 0.5, 11: 1.0}
    """
    if every <= 0 or steps_per_epoch <= 0 or epochs <= 0:
        raise ValueError(f"every ({every}), steps_per_epoch ({steps_per_epoch}) and epochs ({epochs}) must be "
                         "positive")
    last = max(1, math.ceil(epochs * steps_per_epoch - 1e-9))
    steps: dict[int, float] = {}
    k = 1
    while k * every < epochs - 1e-9:
        step = max(1, round(k * every * steps_per_epoch))
        if step < last:
            steps[step] = round(k * every, 4)
        k += 1
    steps[last] = round(float(epochs), 4)
    return steps


class EpochCheckpoints(TrainerCallback):
    """Save the model (merged, if LoRA) and tokenizer at :func:`checkpoint_steps`; record the completion loss
    of ``heldout_rows`` there. ``saved``: ``[{"step", "epoch", "path", "heldout_loss"}]``."""

    def __init__(self, out_dir: str | Path, steps_per_epoch: float, every: float, epochs: float,
                 heldout_rows: Sequence[dict] = (), pad_id: int = 0) -> None:
        self.out = Path(out_dir)
        self.steps = checkpoint_steps(steps_per_epoch, every, epochs)
        self.max_steps = max(self.steps)
        self.rows, self.pad_id = list(heldout_rows), pad_id
        self.saved: list[dict[str, Any]] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from zerosearch.sft.trainer import completion_loss

        epoch = self.steps.get(state.global_step)
        if epoch is None:
            return
        model = kwargs["model"]
        tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
        path = self.out / f"epoch-{epoch:g}"
        plain = copy.deepcopy(model).merge_and_unload() if hasattr(model, "merge_and_unload") else model
        plain.save_pretrained(path)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)
        loss = completion_loss(model, self.rows, self.pad_id) if self.rows else float("nan")
        self.saved.append({"step": state.global_step, "epoch": epoch, "path": str(path), "heldout_loss": loss})


def measure_curve(
    checkpoints: Sequence[Mapping[str, Any]], records: Sequence[SearchRecord],
    engine_for: Callable[[str], SearchEngine], top_k: int, *, log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Each checkpoint's :data:`CURVE_METRICS` on ``records`` (``engine_for(path)`` serves a checkpoint)."""
    curve = []
    for point in checkpoints:
        summary, _ = measure_engine(engine_for(point["path"]), records, top_k)
        row = {"epoch": point["epoch"], "step": point["step"], "heldout_loss": point.get("heldout_loss"),
               **{k: summary[k] for k in CURVE_METRICS}}
        log(f"curve epoch {row['epoch']:g}: " + ", ".join(f"{k} {row[k]:.3f}" for k in CURVE_METRICS))
        curve.append(row)
    return curve


def curve_figure(curve: Sequence[Mapping[str, Any]], reference: Mapping[str, float], path: str | Path,
                 title: str = "") -> Path:
    """Lines of :data:`CURVE_METRICS` per epoch (left) with the real engine's level dashed, held-out SFT loss
    per epoch (right)."""
    from zerosearch.plotting import pyplot, save_png

    plt = pyplot()
    fig, (ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    epochs = [p["epoch"] for p in curve]
    for i, key in enumerate(CURVE_METRICS):
        color = f"C{i}"
        ax.plot(epochs, [p[key] for p in curve], marker="o", color=color, label=key.replace("_", " "))
        level = reference.get(key)
        if level is not None and not math.isnan(level):
            ax.axhline(level, color=color, linestyle="--", linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylim(0, 1.05)
    ax.set_title(title or "simulator quality on held-out queries (dashed: real engine)", fontsize=9)
    ax.legend(fontsize=7)
    loss_ax.plot(epochs, [p.get("heldout_loss") for p in curve], marker="o", color="C5")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_title("completion loss, held-out SFT rows", fontsize=9)
    return save_png(fig, path)
