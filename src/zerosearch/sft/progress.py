"""Training progress as one short line per logging step, through the caller's ``log`` callable.

TRL's default prints a tqdm bar and every logged dictionary to the terminal (``PrinterCallback`` or the
bar's ``write``). In a run of many tasks (``zerosearch demo``) that floods the terminal; the project's
convention is a ``log`` callable (``print``, or a worker's log file), so :func:`run_sft` replaces TRL's
printers with :class:`LogCallback` unless ``SFTRunConfig.progress_bar`` asks for the bar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback


class LogCallback(TrainerCallback):
    """``<name> step 40/600 loss 1.2345 lr 9.8e-04`` per TRL log record that carries a training loss."""

    def __init__(self, log: Callable[[str], None], name: str = "sft") -> None:
        self.log, self.name = log, name

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            lr = logs.get("learning_rate")
            tail = f" lr {lr:.1e}" if isinstance(lr, float) else ""
            self.log(f"{self.name} step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f}{tail}")
