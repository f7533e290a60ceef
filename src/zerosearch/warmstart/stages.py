"""A warm-start in stages, each a TRL SFT run on the same model, each optionally ended by a reading check.

Every world's policy warm-start goes through here. The HotpotQA/SmolLM2 warm-start (``zerosearch sft``,
:func:`zerosearch.warmstart.run.run_warmstart`) is one stage without a check. The toy world's
(``zerosearch.toyworld.build``) is two:

1. *skills*: correct demonstrations plus practice; the policy learns the format, to copy names into its
   queries and to read answers out of results. Reading comes late and in sudden jumps, so a reading check
   (:class:`~zerosearch.warmstart.callbacks.ReadingCheckCallback`) measures it every ``check.every`` steps on
   correct episodes about held-out questions and stops the stage once every question kind passes ``check.target``;
2. *habits*: the imperfect mix (guesses, skipped hops) at a lower learning rate, fixed steps; reading
   stays, and the policy now searches only part of the time, which is what RL then improves.

Each stage is :func:`zerosearch.sft.run_sft` on the model the previous stage left (handed over in memory)
and saves into its own ``sft.output_dir``.

    stages = [Stage("skills", skill_rows, sft_a, ReadingCheck(check_rows, kinds, every=50, target=0.9)),
              Stage("habits", habit_rows, sft_b)]
    result = run_stages(stages, model=model, tokenizer=tokenizer, log=print)
    result.model, result.stages[0].passed, result.stages[0].checks[-1]["reading"]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zerosearch.sft import SFTResult, SFTRunConfig, run_sft
from zerosearch.warmstart.reading import ReadingCheck

Row = dict[str, list[int]]
#: torch CPU threads for a run: a count, or a callable asked every ``THREAD_POLL_STEPS`` steps (None: leave as is)
NumThreads = int | Callable[[], int] | None
THREAD_POLL_STEPS = 25


class StageConfig(BaseModel):
    """Optimisation of one warm-start stage of a small model, and its optional reading check.

    A compact form for worlds that train a fresh model (the toy world); :meth:`sft_config` turns it into
    the :class:`~zerosearch.sft.SFTRunConfig` a :class:`Stage` runs.
    """

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1600, ge=1, description="most optimizer steps (fewer when the reading check passes)")
    batch_size: int = Field(
        16, ge=1, description="16: the toy policy read after as many steps as with 32, at half the cost per step; "
        "with 8 it did not read in 1,300 steps (docs/demo.md)")
    learning_rate: float = Field(1e-3, gt=0.0, description="peak learning rate")
    warmup_steps: int = Field(30, ge=0, description="linear warm-up, then cosine decay to min_lr_rate x peak")
    min_lr_rate: float = Field(0.1, ge=0.0, le=1.0, description="the cosine decay's floor, as a share of the peak")
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    length_buckets: bool = Field(True, description="batches of rows of similar length (SFTRunConfig.length_buckets)")
    seed: int = Field(0, description="seeds batch order")
    log_every: int = Field(100, ge=1, description="steps between loss lines in the log")
    check_every: int = Field(50, ge=1, description="steps between teacher-forced reading checks (when checked)")
    reading_target: float = Field(
        0.9, ge=0.0, le=1.0, description="stop once every question kind is read at least this accurately")

    def sft_config(self, output_dir: Any, *, max_length: int | None = None, num_threads: int | None = None,
                   model: str = "fresh-model") -> SFTRunConfig:
        """The TRL run of this stage (CPU, float32, no gradient checkpointing, no probe: a tiny model)."""
        return SFTRunConfig(
            model=model, output_dir=output_dir, overwrite=True, max_steps=self.steps, batch_size=self.batch_size,
            learning_rate=self.learning_rate, lr_scheduler="cosine_with_min_lr",
            lr_scheduler_kwargs={"min_lr_rate": self.min_lr_rate}, warmup_steps=min(self.warmup_steps, self.steps - 1),
            weight_decay=self.weight_decay, max_grad_norm=self.max_grad_norm, max_length=max_length,
            length_buckets=self.length_buckets, seed=self.seed, gradient_checkpointing=False,
            num_threads=num_threads, logging_steps=self.log_every, probe_rows=0, use_cpu=True)


@dataclass
class Stage:
    """One SFT run of a staged warm-start: its rows, its TRL settings and an optional stopping check."""

    name: str
    rows: Sequence[Row]
    sft: SFTRunConfig
    check: ReadingCheck | None = None
    measure: Callable[[Any], dict[str, Any]] | None = None  # called with the model after the stage


@dataclass
class StageResult:
    """What one stage did: the SFT result, its reading checks and whether the last one passed."""

    name: str
    sft: SFTResult
    checks: list[dict[str, Any]] = field(default_factory=list)
    passed: bool | None = None  # None: the stage had no check
    measured: dict[str, Any] = field(default_factory=dict)  # what Stage.measure returned

    def summary(self) -> dict[str, Any]:
        """JSON-able record of the stage (steps, seconds, curve, checks)."""
        return {"steps": self.sft.steps, "seconds": self.sft.seconds, "cpu_seconds": self.sft.cpu_seconds,
                "curve": self.sft.curve, "reading_checks": self.checks, "passed_reading": self.passed,
                **self.measured}


@dataclass
class StagedResult:
    """Every stage's result; ``model`` is the final model (in memory, also saved by the last stage)."""

    stages: list[StageResult]
    model: Any

    def stage(self, name: str) -> StageResult:
        """The result of the stage called ``name``."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")


def run_stages(
    stages: Sequence[Stage], *, model: Any = None, tokenizer: Any = None, log: Callable[[str], None] = print,
    num_threads: NumThreads = None,
) -> StagedResult:
    """Run ``stages`` in order on one model: the ``model`` object, or (None) the model named by
    ``stages[0].sft.model``, with ``tokenizer`` (None: the named model's); each later stage continues from
    the previous stage's model. ``num_threads``: see :data:`NumThreads` (a stage's ``sft.num_threads``, when
    set, wins at that stage's start)."""
    import torch

    from zerosearch.sft.trainer import load_model_and_tokenizer
    from zerosearch.warmstart.callbacks import ReadingCheckCallback, ThreadsCallback

    if not stages:
        raise ValueError("run_stages needs at least one stage")
    if model is not None and tokenizer is None:
        raise ValueError("a model object needs its tokenizer object too")
    if isinstance(num_threads, int):
        torch.set_num_threads(num_threads)
    if model is None:
        model, loaded = load_model_and_tokenizer(stages[0].sft.model, stages[0].sft.dtype)
        tokenizer = tokenizer if tokenizer is not None else loaded
    results = []
    for stage in stages:
        check = ReadingCheckCallback(stage.check, tokenizer, log, stage.name) if stage.check else None
        callbacks = [c for c in (check, ThreadsCallback(num_threads, THREAD_POLL_STEPS) if callable(num_threads)
                                 else None) if c is not None]
        sft = run_sft(stage.sft, list(stage.rows), model=model, tokenizer=tokenizer, log=log,
                      callbacks=callbacks, name=stage.name)
        model = sft.model
        results.append(StageResult(stage.name, sft, check.checks if check else [], check.passed if check else None,
                                   stage.measure(model) if stage.measure else {}))
    return StagedResult(results, model)
