"""Run one completion-only SFT with TRL's ``SFTTrainer`` and save a model every backend can load.

TRL does the training loop (batching, padding, scheduler, peft wrapping); this module adds what the
project needs around it: a model resolved from a built-in name, hub id or directory (or handed in, as the
toy world does with a fresh tiny Llama), rows checked before training, seeding, the completion loss of
``probe_rows`` training rows before and after (a cheap proof that training did something), LoRA merged
back into plain weights, and
``sft_record.json`` (config, versions, sizes, loss curve) next to the ``save_pretrained`` files.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zerosearch.provenance import package_versions
from zerosearch.sft.config import SFTRunConfig
from zerosearch.sft.data import length_bucketed_order, to_dataset, to_rows

RECORD_NAME = "sft_record.json"


@dataclass
class SFTResult:
    """What :func:`run_sft` did: where the model is, the probe loss before/after and the curve."""

    output_dir: Path
    loss_before: float
    loss_after: float
    curve: list[dict[str, float]] = field(default_factory=list)
    rows: int = 0
    trained_tokens: int = 0
    seconds: float = 0.0
    model: Any = None  # the trained (merged) model, still in memory
    steps: int = 0  # optimizer steps taken (below max_steps when a callback stopped the run)
    cpu_seconds: float = 0.0  # CPU time of this process in trainer.train()


def prepare_output(path: Path, overwrite: bool) -> None:
    """Create ``path``; refuse a non-empty one unless ``overwrite`` (then empty it)."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file; choose a directory for output_dir")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{path} is not empty; choose another output_dir or pass overwrite=True")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def load_model_and_tokenizer(name: str, dtype: str = "float32") -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a built-in name, hub id or local directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zerosearch.llm.models import resolve_model

    path = resolve_model(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    return model, tokenizer


def completion_loss(model: Any, rows: list[dict], pad_id: int, batch_size: int = 16) -> float:
    """Mean cross-entropy per trained token of ``rows`` (no gradient)."""
    import torch

    if not rows:
        return float("nan")
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            width = max(len(r["input_ids"]) for r in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)  # (B, T)
            attention = torch.zeros_like(ids)  # (B, T)
            labels = torch.full_like(ids, -100)  # (B, T)
            for i, r in enumerate(chunk):
                row = torch.tensor(r["input_ids"])
                ids[i, : len(row)], attention[i, : len(row)] = row, 1
                labels[i, : len(row)] = torch.where(torch.tensor(r["completion_mask"]).bool(), row, -100)
            logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits
            shift_logits = logits[:, :-1].float()  # (B, T-1, V)
            shift_labels = labels[:, 1:].to(logits.device)  # (B, T-1)
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=-100,
                reduction="sum")
            total += float(loss)
            count += int((shift_labels != -100).sum())
    model.train(was_training)
    return total / max(count, 1)


@contextlib.contextmanager
def quiet_progress(quiet: bool = True) -> Iterator[None]:
    """Without the progress bars of ``datasets`` (TRL's dataset preparation) and transformers (saving
    shards) while inside, when ``quiet``; restores their previous state after."""
    if not quiet:
        yield
        return
    import datasets
    from transformers.utils import logging as hf_logging

    datasets_on, transformers_on = not datasets.are_progress_bars_disabled(), hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_on:
            datasets.enable_progress_bars()
        if transformers_on:
            hf_logging.enable_progress_bar()


def _trl_args(config: SFTRunConfig, scratch: str) -> Any:
    """TRL's arguments. Without a GPU ``use_cpu`` is set: the run is on the CPU either way, and transformers
    refuses bf16 autocast on a CPU unless told it is one."""
    import dataclasses

    import torch
    from trl import SFTConfig

    # transformers 5 renamed gradient_checkpointing (TRL's default: on) and warns on the old name
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return SFTConfig(
        output_dir=scratch, max_steps=config.max_steps, per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler, lr_scheduler_kwargs=config.lr_scheduler_kwargs,
        warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm, max_length=config.max_length, completion_only_loss=True,
        train_sampling_strategy=_sampling(config),
        seed=config.seed, data_seed=config.seed,
        logging_steps=config.logging_steps, save_strategy="no", report_to="none",
        use_cpu=config.use_cpu or not torch.cuda.is_available(),
        bf16=config.dtype == "bfloat16" or config.mixed_precision == "bf16", fp16=config.dtype == "float16",
        dataloader_num_workers=0, disable_tqdm=not config.progress_bar, packing=False,
        **{checkpointing: config.gradient_checkpointing},
    )


def _sampling(config: SFTRunConfig) -> str:
    if config.length_buckets:
        return "sequential"  # the rows come pre-ordered (length_bucketed_order)
    return "group_by_length" if config.group_by_length else "random"


def linear_module_names(model: Any) -> list[str]:
    """Names (last component) of the model's linear layers, the output head excluded."""
    import torch

    head = model.get_output_embeddings()
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and module is not head})


def _peft_config(config: SFTRunConfig, model: Any) -> Any:
    if config.lora is None:
        return None
    from peft import LoraConfig

    lora = config.lora
    targets = lora.target_modules
    if lora.layers is not None and targets == "all-linear":  # peft wants explicit names with layers_to_transform
        targets = linear_module_names(model)
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=targets, layers_to_transform=lora.layers, task_type="CAUSAL_LM")


def make_trainer(
    config: SFTRunConfig, rows: list[dict], model: Any, tokenizer: Any, scratch: str,
    *, callbacks: Sequence[Any] = (), log: Callable[[str], None] = print, name: str = "sft",
) -> Any:
    """TRL's ``SFTTrainer`` over checked ``rows`` (labels built from ``completion_mask``), checkpoints in
    ``scratch``, with ``callbacks`` (transformers ``TrainerCallback``s) added. Without
    ``config.progress_bar`` TRL's printers are replaced by one ``log`` line per logging step."""
    from transformers import PrinterCallback
    from trl import SFTTrainer

    from zerosearch.sft.progress import LogCallback

    if config.length_buckets:
        per_step = config.batch_size * config.gradient_accumulation_steps
        order = length_bucketed_order([len(r["input_ids"]) for r in rows], per_step, config.max_steps, config.seed)
        rows = [rows[i] for i in order]
    trainer = SFTTrainer(model=model, args=_trl_args(config, scratch), train_dataset=to_dataset(rows),
                         processing_class=tokenizer, peft_config=_peft_config(config, model))
    if not config.progress_bar:
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(LogCallback(log, name))
    for callback in callbacks:
        trainer.add_callback(callback)
    return trainer


def run_sft(
    config: SFTRunConfig, data: Any, *, model: Any = None, tokenizer: Any = None, log: Any = print,
    callbacks: Sequence[Any] = (), name: str = "sft",
) -> SFTResult:
    """Fine-tune on ``data`` (text pairs or pre-tokenized rows, list or ``datasets.Dataset``), save the
    model + tokenizer + ``sft_record.json`` into ``config.output_dir`` and return an :class:`SFTResult`.

    Pass ``model`` and ``tokenizer`` objects to train something not on disk (``config.model`` is then
    only recorded); otherwise both are loaded from ``config.model``. ``callbacks`` (transformers
    ``TrainerCallback``s) join TRL's, e.g. a check that stops the run early
    (``control.should_training_stop``); progress goes to ``log`` as lines prefixed with ``name``.
    """
    import torch
    from transformers import set_seed

    if (model is None) != (tokenizer is None):
        raise ValueError("pass both model and tokenizer objects, or neither (then config.model is loaded)")
    out = Path(config.output_dir)
    prepare_output(out, config.overwrite)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    set_seed(config.seed)
    if model is None:
        model, tokenizer = load_model_and_tokenizer(config.model, config.dtype)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = to_rows(data, tokenizer)
    probe = random.Random(config.seed).sample(rows, min(config.probe_rows, len(rows)))
    loss_before = completion_loss(model, probe, tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory(prefix="zerosearch-sft-") as scratch, quiet_progress(not config.progress_bar):
        trainer = make_trainer(config, rows, model, tokenizer, scratch, callbacks=callbacks, log=log, name=name)
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    trained = trainer.model
    if config.lora is not None and config.lora.merge:
        trained = trained.merge_and_unload()
    loss_after = completion_loss(trained, probe, tokenizer.pad_token_id)
    trained.generation_config.pad_token_id = tokenizer.pad_token_id
    trained.generation_config.eos_token_id = tokenizer.eos_token_id
    with quiet_progress(not config.progress_bar):
        trained.save_pretrained(out)
        tokenizer.save_pretrained(out)
    curve = [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]
    steps = trainer.state.global_step
    result = SFTResult(out, loss_before, loss_after, curve, len(rows),
                       sum(sum(r["completion_mask"]) for r in rows), seconds, trained, steps, cpu_seconds)
    record = {
        "config": config.model_dump(mode="json"), "seed": config.seed,
        "versions": package_versions(), "steps": steps,
        "rows": result.rows, "trained_tokens": result.trained_tokens, "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "loss_before": loss_before, "loss_after": loss_after, "probe_rows": len(probe), "curve": curve,
        "parameters": sum(p.numel() for p in trained.parameters()),
    }
    (out / RECORD_NAME).write_text(json.dumps(record, indent=1), "utf-8")
    probed = f", completion loss {loss_before:.3f} -> {loss_after:.3f}" if probe else ""
    log(f"SFT saved in {out}: {steps} steps in {seconds:.0f} s{probed}")
    return result

