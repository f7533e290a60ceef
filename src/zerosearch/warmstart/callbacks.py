"""transformers ``TrainerCallback``s of a staged warm-start: the reading check (measure every N steps, stop
once it passes) and a thread-count poll.

A staged warm-start (:mod:`zerosearch.warmstart.stages`) adds it to a stage's TRL run. Its own module, imported
only when a stage runs, because importing transformers' trainer machinery costs seconds that configs and the
CLI should not pay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from zerosearch.warmstart.reading import ReadingCheck, format_reading, reading_accuracy


class ReadingCheckCallback(TrainerCallback):
    """Measures teacher-forced reading every ``check.every`` steps (and at the last step) and stops the
    run once every kind reaches ``check.target``. Checks are recorded in ``self.checks``."""

    def __init__(self, check: ReadingCheck, tokenizer: Any, log: Callable[[str], None], name: str = "warm-start"):
        self.check, self.tokenizer, self.log, self.name = check, tokenizer, log, name
        self.checks: list[dict[str, Any]] = []
        self.passed = False

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
        if state.global_step % self.check.every and state.global_step < state.max_steps:
            return control
        start = time.perf_counter()
        reading = reading_accuracy(model, self.tokenizer, self.check.rows, self.check.kinds)
        self.checks.append({"step": state.global_step, "reading": reading,
                            "seconds": round(time.perf_counter() - start, 3)})
        self.passed = min(reading.values()) >= self.check.target
        self.log(f"{self.name} step {state.global_step}: teacher-forced reading {format_reading(reading)}"
                 + (f" (all >= {self.check.target:.2f}: stop)" if self.passed else ""))
        if self.passed:
            control.should_training_stop = True
        return control


class ThreadsCallback(TrainerCallback):
    """Sets torch's CPU thread count to ``threads()`` at the start and every ``every`` steps, so a runner
    can hand a running warm-start a second core once its other tasks have finished."""

    def __init__(self, threads: Callable[[], int], every: int = 25):
        self.threads, self.every = threads, every

    def _apply(self) -> None:
        import torch

        wanted = int(self.threads())
        if wanted >= 1 and wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self._apply()
        return control

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step % self.every == 0:
            self._apply()
        return control
