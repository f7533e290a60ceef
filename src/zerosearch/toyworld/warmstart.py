"""Supervised warm-start of the toy policy on demonstrations, with loss on policy tokens only.

RL from a random 1M-parameter model would never find ``<search>`` by chance; the paper starts from
an instruction model that already knows the format. The toy equivalent is a short SFT in two stages
(``build.py`` runs both; injected tokens, the prompt and ``<information>`` blocks, are masked out of
the loss exactly as in the RL trainer):

1. *skills*: correct demonstrations plus copy and read practice, no guesses. The policy learns the
   format, to copy a made-up name into its query and to read the answer out of the passages. Reading
   comes late and in sudden jumps, so the stage measures it on correct episodes about held-out people
   every ``check_every`` steps and stops once every question kind passes ``reading_target`` (seed 0:
   all kinds at 1.00 after 1,000 steps; mixing 60% guesses into this stage instead left reading at
   chance after 1,500 steps: the guesses drown the reading signal);
2. *habits*: a short pass at a lower learning rate over the imperfect mix (``DemoMix``: mostly guess
   without searching, sometimes answer from the wrong passage or skip the second hop). Reading stays
   (it is still in 40% of the episodes) but the policy now searches only some of the time
   (:func:`search_probability`), which is what RL then improves.

    report = warm_start(model, tokenizer, demos, WarmStartConfig(), checks=held_out_correct_demos)
    report.passed_reading, report.reading()   # e.g. True, {'birth_country': 1.0, 'born_in': 1.0, ...}
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zerosearch import protocol
from zerosearch.toyworld.demos import Demonstration, tokenize_demonstration

IGNORE_INDEX = -100


class SFTConfig(BaseModel):
    """Optimisation settings of a supervised fine-tuning run on (ids, mask) rows."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(3000, ge=0, description="most optimizer steps")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(
        1e-3, gt=0.0, description="3e-3 learned to copy names but never to read the passages (seeds 0 and 1)")
    warmup_steps: int = Field(30, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    seed: int = Field(0, description="seeds batch order and dropout-free training")
    log_every: int = Field(100, ge=1)


class WarmStartConfig(SFTConfig):
    """A warm-start stage: SFT settings plus the reading check that can end it early."""

    check_every: int = Field(250, ge=1, description="steps between teacher-forced reading checks")
    reading_target: float = Field(
        0.95, ge=0.0, le=1.0, description="stop once every question kind is read at least this accurately")


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-pad ``(ids, mask)`` rows into ``input_ids``, ``attention_mask`` and ``labels`` (B, T)."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (B, T)
    attention = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    for i, (ids, mask) in enumerate(rows):
        row = torch.tensor(ids, dtype=torch.long)
        input_ids[i, : len(ids)] = row
        attention[i, : len(ids)] = 1
        labels[i, : len(ids)] = torch.where(torch.tensor(mask, dtype=torch.bool), row, IGNORE_INDEX)
    return input_ids, attention, labels


def length_bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches: shuffle, sort within windows of 16 batches by length, shuffle the batches.

    Copy-practice episodes are ~20 tokens and full episodes ~120; batching similar lengths together
    avoids padding short rows to the longest (about 3x less compute).
    """
    order = rng.sample(range(len(lengths)), len(lengths))
    window = batch_size * 16
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _lr_factor(step: int, config: SFTConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def policy_token_loss(model: Any, rows: list[tuple[list[int], list[int]]], pad_id: int) -> Any:
    """Mean cross-entropy over policy tokens of ``rows`` (a scalar tensor)."""
    input_ids, attention, labels = collate(rows, pad_id)
    return model(input_ids=input_ids, attention_mask=attention, labels=labels).loss


@dataclass
class WarmStartReport:
    """What the warm-start did: loss curve, reading checks, where it stopped and whether reading passed."""

    curve: list[dict[str, float]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    passed_reading: bool | None = None  # None when no reading checks were given

    def reading(self) -> dict[str, float]:
        """The last reading accuracy per question kind (empty without checks)."""
        return dict(self.checks[-1]["reading"]) if self.checks else {}


class _Stepper:
    """One optimizer step at a time over length-bucketed epochs of (ids, mask) rows."""

    def __init__(self, model: Any, rows: list[tuple[list[int], list[int]]], pad_id: int, config: SFTConfig):
        import torch

        self.model, self.rows, self.pad_id, self.config = model, rows, pad_id, config
        self.rng = random.Random(config.seed)
        torch.manual_seed(config.seed)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _lr_factor(s, config))
        self.lengths = [len(ids) for ids, _ in rows]
        self.batches: list[list[int]] = []

    def step(self) -> float:
        import torch

        if not self.batches:
            self.batches = length_bucketed_batches(self.lengths, self.config.batch_size, self.rng)
        batch = self.batches.pop()
        loss = policy_token_loss(self.model, [self.rows[i] for i in batch], self.pad_id)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return loss.item()


def train_rows(
    model: Any,
    rows: list[tuple[list[int], list[int]]],
    pad_id: int,
    config: SFTConfig,
    log: Any = print,
    *,
    name: str = "warm-start",
    check: Callable[[int, WarmStartReport], bool] | None = None,
    check_every: int = 0,
) -> WarmStartReport:
    """SFT ``model`` in place on ``(ids, mask)`` rows, loss on mask-1 tokens only (the toy policy's
    warm-start and the toy simulator share this loop). ``check(step, report)`` runs every ``check_every``
    steps and after the last one; returning True stops the run there."""
    if not rows:
        raise ValueError(f"{name} needs at least one training row")
    stepper = _Stepper(model, rows, pad_id, config)
    report = WarmStartReport()
    model.train()
    start, running = time.perf_counter(), 0.0
    for step in range(1, config.steps + 1):
        running += stepper.step()
        report.steps = step
        if step % config.log_every == 0 or step == config.steps:
            n = (step - 1) % config.log_every + 1
            report.curve.append({"step": step, "loss": running / n, "seconds": time.perf_counter() - start})
            log(f"{name} step {step}/{config.steps} loss {running / n:.4f}")
            running = 0.0
        if check is not None and check_every and (step % check_every == 0 or step == config.steps):
            stop = check(step, report)
            model.train()
            if stop:
                break
    model.eval()
    return report


def warm_start(
    model: Any,
    tokenizer: Any,
    demos: list[Demonstration],
    config: WarmStartConfig | None = None,
    log: Any = print,
    checks: list[Demonstration] | None = None,
) -> WarmStartReport:
    """Train ``model`` in place on ``demos``; with ``checks`` (correct episodes about held-out people),
    measure teacher-forced reading every ``check_every`` steps and stop once every kind passes."""
    config = config or WarmStartConfig()
    if not demos:
        raise ValueError("warm_start needs at least one demonstration")

    def reading_check(step: int, report: WarmStartReport) -> bool:
        reading = reading_accuracy(model, tokenizer, checks or [])
        report.checks.append({"step": step, "reading": reading})
        log(f"warm-start step {step}: teacher-forced reading accuracy {format_reading(reading)}")
        report.passed_reading = min(reading.values()) >= config.reading_target
        return report.passed_reading

    rows = [tokenize_demonstration(d, tokenizer) for d in demos]
    report = train_rows(model, rows, tokenizer.pad_token_id, config, log,
                        check=reading_check if checks else None, check_every=config.check_every)
    if checks:
        report.passed_reading = bool(report.passed_reading)
    return report


def format_reading(reading: dict[str, float]) -> str:
    """``kind value`` pairs of a reading check, for logs."""
    return ", ".join(f"{kind} {value:.2f}" for kind, value in reading.items())


def reading_accuracy(model: Any, tokenizer: Any, demos: list[Demonstration], batch_size: int = 64) -> dict[str, float]:
    """Per question kind, how often the model's top next token after the final ``<answer>`` is the first
    token of the demonstrated answer, with the demonstrated searches and passages fed in (teacher-forced).

    On correct episodes about people the warm-start never saw, this isolates *reading*: the answer is
    in the last ``<information>`` block and nowhere in the weights. Chance is 1 / number of candidates.
    """
    answer_open = tokenizer.convert_tokens_to_ids(protocol.ANSWER_OPEN)
    prefixes, targets = zip(*(_answer_prefix(d, tokenizer, answer_open) for d in demos), strict=True)
    predicted = last_token_logits(model, list(prefixes), tokenizer.pad_token_id, batch_size).argmax(-1).tolist()
    hits: dict[str, list[bool]] = {}
    for demo, guess, target in zip(demos, predicted, targets, strict=True):
        hits.setdefault(demo.example.metadata.get("kind", "?"), []).append(guess == target)
    return {kind: sum(v) / len(v) for kind, v in sorted(hits.items())}


def last_token_logits(model: Any, rows: list[list[int]], pad_id: int, batch_size: int = 64) -> Any:
    """Next-token logits after the last token of each row, ``(N, V)``, in batches, without gradient."""
    import torch

    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            input_ids, attention, _ = collate([(r, [0] * len(r)) for r in chunk], pad_id)
            logits = model(input_ids=input_ids, attention_mask=attention).logits  # (B, T, V)
            out.append(logits[torch.arange(len(chunk)), torch.tensor([len(r) - 1 for r in chunk])])  # (B, V)
    return torch.cat(out)


def _answer_prefix(demo: Demonstration, tokenizer: Any, answer_open: int) -> tuple[list[int], int]:
    """Ids up to and including the final ``<answer>`` tag, and the id that follows it."""
    ids, _ = tokenize_demonstration(demo, tokenizer)
    if answer_open not in ids:
        raise ValueError(f"demonstration {demo.example.id!r} has no {protocol.ANSWER_OPEN} turn to check reading on")
    position = len(ids) - 1 - ids[::-1].index(answer_open)
    return ids[: position + 1], ids[position + 1]


def search_probability(model: Any, tokenizer: Any, prompts: list[str], batch_size: int = 64) -> float:
    """Mean probability that the policy's first token after each prompt is ``<search>``.

    The warm-start's imperfect stage aims this well below 1: the share of episodes in which a freshly
    warm-started policy searches at all, the behaviour RL has to reinforce.
    """
    search = tokenizer.convert_tokens_to_ids(protocol.SEARCH_OPEN)
    rows = [list(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    if not rows:
        raise ValueError("search_probability needs at least one prompt")
    probs = last_token_logits(model, rows, tokenizer.pad_token_id, batch_size).softmax(-1)  # (N, V)
    return float(probs[:, search].mean())


def evaluate_loss(model: Any, tokenizer: Any, demos: list[Demonstration], batch_size: int = 64) -> float:
    """Mean policy-token loss of ``model`` on ``demos`` (no gradient), weighted by batch."""
    return rows_loss(model, [tokenize_demonstration(d, tokenizer) for d in demos], tokenizer.pad_token_id, batch_size)


def rows_loss(model: Any, rows: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int = 64) -> float:
    """Mean cross-entropy over the mask-1 tokens of ``(ids, mask)`` rows (no gradient), weighted by batch."""
    import torch

    model.eval()
    with torch.no_grad():
        losses = [policy_token_loss(model, rows[i : i + batch_size], pad_id).item()
                  for i in range(0, len(rows), batch_size)]
    return sum(losses) / len(losses)
