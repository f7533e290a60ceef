"""Build a :class:`Trainer` from a :class:`TrainConfig`: load the policy, engines and questions.

This is what ``zerosearch train --config run.yaml [--resume]`` does; library users who already hold a
model, tokenizer and engine construct :class:`Trainer` directly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from zerosearch.train.checkpoint import latest_checkpoint, refuse_mixing_runs
from zerosearch.train.config import TrainConfig
from zerosearch.train.data import load_examples
from zerosearch.train.precision import compute_dtype
from zerosearch.train.trainer import Trainer


def load_policy(config: TrainConfig) -> tuple[object, object]:
    """The initial policy and its tokenizer, on the configured device.

    Trained weights are loaded in float32 (master weights; ``model.dtype`` is the autocast compute dtype).
    With LoRA only the adapters train, so the frozen base is loaded in the compute dtype.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zerosearch.llm.models import resolve_model
    from zerosearch.llm.transformers_backend import resolve_device

    path = resolve_model(config.model.name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.model.tokenizer) if config.model.tokenizer else path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = compute_dtype(config.model.dtype) if config.model.lora.enabled else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(resolve_device(config.model.device))
    return model, tokenizer


def resolve_resume(config: TrainConfig, resume: bool | str | Path) -> Path | None:
    """``True``: the newest checkpoint of the run (error if none); a path: that checkpoint."""
    if resume is False or resume is None:
        return None
    if resume is True:
        found = latest_checkpoint(config.output_dir)
        if found is None:
            raise FileNotFoundError(
                f"--resume: no checkpoint under {Path(config.output_dir) / 'checkpoints'}; "
                "run without --resume to start fresh"
            )
        return found
    return Path(resume)


def build_trainer(config: TrainConfig, resume: bool | str | Path = False) -> Trainer:
    """Everything the config names, assembled; resumed from a checkpoint when asked."""
    from zerosearch.search.factory import build_engine, sized_to_batch

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    checkpoint = resolve_resume(config, resume)
    if checkpoint is None:
        refuse_mixing_runs(config.output_dir)  # before the (slow) model load
    model, tokenizer = load_policy(config)
    train_examples = load_examples(config.data.train, limit=config.data.train_limit, seed=config.seed)
    val_examples = None
    if config.data.val:
        val_examples = load_examples(config.data.val, limit=config.data.val_limit, seed=config.seed)
    engine = build_engine(sized_to_batch(config.engine, config.episodes_per_step))  # llamacpp: a slot per episode
    val_engine = build_engine(config.validation.engine) if config.validation.engine else None
    shadow_engine = build_engine(config.shadow_engine) if config.shadow_engine else None
    trainer = Trainer(config, model=model, tokenizer=tokenizer, engine=engine, train_examples=train_examples,
                      val_examples=val_examples, val_engine=val_engine, shadow_engine=shadow_engine)
    if checkpoint is not None:
        trainer.resume(checkpoint)
    return trainer
