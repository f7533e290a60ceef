"""The training loop: rollout -> reward -> advantages -> clipped policy update, with logs and checkpoints.

Model-agnostic: any causal LM + tokenizer (transformers API) and any :class:`SearchEngine` can be passed
in; :meth:`Trainer.from_config` builds them from a :class:`TrainConfig` (what ``zerosearch train`` does)::

    trainer = Trainer(config, model=model, tokenizer=tok, engine=engine, train_examples=questions)
    trainer.train()

One step: take ``prompts_per_step`` questions from the seeded sampler; read the noise probability from
the curriculum at the global step; sample ``n_samples`` multi-turn episodes each (seed derived from the
run seed and the step, so a resumed run samples the same episodes); score them (F1 by default); with a
shadow engine, send the same queries to it and log its hit agreement (``shadow.py``; never shown to the
policy); collate; run :class:`PolicyUpdater` (old/ref log-probs, estimator, clipped loss); step the LR
scheduler; log; validate and checkpoint when due. Everything the next step depends on is in the
checkpoint (the engines' random state included), so ``resume`` continues exactly. A fresh run refuses an
output_dir that already holds another run's checkpoints or metrics (resume it, or pick a new directory).

Precision: trainable weights, the critic and AdamW state are float32; ``model.dtype: bfloat16`` runs the
rollout and every forward pass under autocast (``precision.py``).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from zerosearch.data.types import QAExample
from zerosearch.llm.transformers_backend import TransformersGenerator
from zerosearch.provenance import package_versions
from zerosearch.rollout import run_rollout, score_episodes, write_episodes_jsonl
from zerosearch.train.batch import collate_episodes
from zerosearch.train.checkpoint import (
    CRITIC_FILE,
    POLICY_DIR,
    VALUE_HEAD_FILE,
    CheckpointParts,
    load_trainer_state,
    refuse_mixing_runs,
    save_checkpoint,
    set_rng_state,
)
from zerosearch.train.config import KLPlacement, LoraSettings, OptimizerSettings, TrainConfig
from zerosearch.train.data import EpochSampler
from zerosearch.train.estimators import get_estimator
from zerosearch.train.forward import Critic, ValueHead, split_causal_lm
from zerosearch.train.logger import RunLogger
from zerosearch.train.metrics import episode_metrics
from zerosearch.train.precision import autocast, check_master_weights, compute_dtype
from zerosearch.train.shadow import shadow_metrics
from zerosearch.train.update import PolicyUpdater, Reference
from zerosearch.train.validation import validate


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def wrap_lora(model: Any, settings: LoraSettings) -> Any:
    """The model with trainable LoRA adapters (peft); other weights frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def lr_lambda(settings: OptimizerSettings, total_steps: int) -> Any:
    """Multiplier of the base LR at a training step: linear warm-up (``warmup_ratio`` x total_steps when
    set, else ``warmup_steps``), then constant/linear/cosine decay."""
    warmup = settings.warmup_steps if settings.warmup_ratio is None else int(settings.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if settings.schedule == "constant":
            return 1.0
        span = max(total_steps - warmup, 1)
        progress = min((step - warmup) / span, 1.0)
        shape = 1.0 - progress if settings.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
        return settings.min_lr_ratio + (1.0 - settings.min_lr_ratio) * shape

    return factor


def _hidden_size(model: Any) -> int:
    size = getattr(model.config, "hidden_size", None)
    return int(size) if size else int(model.get_input_embeddings().embedding_dim)


class Trainer:
    """Single-machine RL trainer for search agents (PPO / GRPO / REINFORCE++ via the registries)."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        model: Any,
        tokenizer: Any,
        engine: Any,
        train_examples: Sequence[QAExample],
        val_examples: Sequence[QAExample] | None = None,
        val_engine: Any | None = None,
        reference_model: Any | None = None,
        shadow_engine: Any | None = None,
    ) -> None:
        self.config = config
        self.output_dir = Path(config.output_dir)
        seed_everything(config.seed)
        if config.model.lora.enabled and not hasattr(model, "peft_config"):
            model = wrap_lora(model, config.model.lora)
        if config.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        check_master_weights(model)
        self.model, self.tokenizer, self.engine = model, tokenizer, engine
        self.device = next(model.parameters()).device
        self.compute_dtype = compute_dtype(config.model.dtype)
        self.generator = TransformersGenerator(model, tokenizer, name=config.model.name_or_path)
        self.value_head, self.critic, self.critic_optimizer = self._build_critic()
        self.optimizer = self._build_optimizer()
        schedule = lr_lambda(config.optimizer, config.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.updater = PolicyUpdater(
            model, config.algorithm, self.optimizer, temperature=config.rollout.temperature or 1.0,
            reference=self._build_reference(reference_model), value_head=self.value_head,
            max_grad_norm=config.optimizer.max_grad_norm, critic=self.critic,
            critic_optimizer=self.critic_optimizer, compute_dtype=self.compute_dtype, loss_scale=config.loss_scale,
        )
        self.sampler = EpochSampler(train_examples, config.data.prompts_per_step, config.seed, config.data.shuffle)
        self.val_examples = list(val_examples or [])
        self.val_engine = val_engine or engine
        if config.shadow_engine is not None and shadow_engine is None:
            raise ValueError("config.shadow_engine is set but no shadow engine was passed: pass "
                             "shadow_engine=build_engine(config.shadow_engine) (build_trainer does)")
        self.shadow_engine = shadow_engine
        self.reward_config = config.reward.to_reward_config()
        self.step = 0
        self._resumed_from: int | None = None

    # ------------------------------------------------------------------ construction helpers

    def _build_reference(self, reference_model: Any | None) -> Reference | None:
        algo = self.config.algorithm
        if algo.kl.resolved_placement(algo.estimator) is KLPlacement.NONE:
            return None
        if hasattr(self.model, "peft_config") and reference_model is None:
            return Reference(self.model, adapters_off=True)
        if reference_model is None:
            # Frozen: no master copy needed, so it is kept in the compute dtype (half the memory in bf16).
            reference_model = copy.deepcopy(self.model).to(self.compute_dtype)
        return Reference(reference_model)

    def _build_critic(self) -> tuple[ValueHead | None, Critic | None, torch.optim.Optimizer | None]:
        """(shared value head, separate critic, its optimizer); all None when the estimator needs no values."""
        settings = self.config.algorithm.critic
        if not get_estimator(self.config.algorithm.estimator).needs_values:
            return None, None, None
        if settings.model == "shared":
            return ValueHead(_hidden_size(self.model)).to(self.device), None, None
        backbone, _ = split_causal_lm(self.model)
        critic = Critic(copy.deepcopy(backbone), _hidden_size(self.model)).to(self.device)
        opt = self.config.optimizer
        params = [p for p in critic.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=settings.lr, betas=opt.betas, eps=opt.eps,
                                      weight_decay=opt.weight_decay)
        return None, critic, optimizer

    def _build_optimizer(self) -> torch.optim.Optimizer:
        opt = self.config.optimizer
        groups = [{"params": [p for p in self.model.parameters() if p.requires_grad], "lr": opt.lr}]
        if self.value_head is not None:
            groups.append({"params": list(self.value_head.parameters()), "lr": self.config.algorithm.critic.lr})
        return torch.optim.AdamW(groups, lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay)

    def engines(self) -> dict[str, Any]:
        """The run's engines by role; validation's only when it is a different object."""
        found = {"train": self.engine}
        if self.val_engine is not self.engine:
            found["val"] = self.val_engine
        return found

    # ------------------------------------------------------------------ resume

    def resume(self, checkpoint: str | Path) -> None:
        """Load weights, optimizer, scheduler, data order, RNG and step from ``checkpoint``."""
        checkpoint = Path(checkpoint)
        state = load_trainer_state(checkpoint)
        self._load_policy_weights(checkpoint / POLICY_DIR)
        if self.value_head is not None:
            self.value_head.load_state_dict(torch.load(checkpoint / VALUE_HEAD_FILE, map_location=self.device))
        if self.critic is not None and self.critic_optimizer is not None:
            self.critic.load_state_dict(torch.load(checkpoint / CRITIC_FILE, map_location=self.device))
            self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        for role, engine in self.engines().items():
            saved = state.get("engines", {}).get(role)
            if saved is not None and hasattr(engine, "load_state_dict"):
                engine.load_state_dict(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        self.step = int(state["step"])
        self._resumed_from = self.step

    def _load_policy_weights(self, policy_dir: Path) -> None:
        from safetensors.torch import load_file

        if hasattr(self.model, "peft_config"):
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.model, load_file(str(policy_dir / "adapter_model.safetensors")))
            return
        from transformers import AutoModelForCausalLM

        saved = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=next(self.model.parameters()).dtype)
        missing, unexpected = self.model.load_state_dict(saved.state_dict(), strict=False)
        if missing or unexpected:
            raise ValueError(f"checkpoint {policy_dir} does not fit the model: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")

    # ------------------------------------------------------------------ the loop

    def rollout_seed(self, step: int) -> int:
        """Sampling seed of ``step``: fixed by the run seed and the step alone (resume-safe)."""
        return (self.config.seed * 1_000_003 + step) % (2**31 - 1)

    def train_step(self) -> tuple[dict[str, float], list[Any]]:
        """One rollout + update at ``self.step``; returns its metrics and episodes (step not advanced)."""
        examples = self.sampler.next_batch()
        noise = self.config.curriculum.probability(self.step)
        lr = self.optimizer.param_groups[0]["lr"]  # the lr this step's update applies
        start = time.perf_counter()
        with autocast(self.device, self.compute_dtype):
            episodes = run_rollout(self.generator, self.engine, examples, self.config.rollout,
                                   noise_probability=noise, seed=self.rollout_seed(self.step))
        score_episodes(episodes, self.reward_config)
        rollout_s = time.perf_counter() - start
        shadow = self._shadow(episodes)
        batch = collate_episodes(episodes, self.tokenizer.pad_token_id).to(self.device)
        start = time.perf_counter()
        prepared, metrics = self.updater.prepare(batch)
        metrics.update(self.updater.update(prepared))
        self.scheduler.step()
        update_s = time.perf_counter() - start
        generated = float(batch.response_mask.sum())
        metrics.update(episode_metrics(episodes))
        metrics.update(shadow)
        metrics.update({
            "noise_probability": noise,
            "actor/lr": lr,
            "time/rollout_s": rollout_s,
            "time/update_s": update_s,
            "throughput/rollout_tokens_per_s": generated / max(rollout_s, 1e-9),
            "throughput/update_tokens_per_s": float(batch.attention_mask.sum()) / max(update_s, 1e-9),
        })
        return metrics, episodes

    def _shadow(self, episodes: list[Any]) -> dict[str, float]:
        """The shadow engine's figures on the scored episodes (read only; empty without a shadow engine)."""
        if self.shadow_engine is None:
            return {}
        start = time.perf_counter()
        figures = shadow_metrics(self.shadow_engine, episodes, self.config.rollout.top_k_documents)
        figures["time/shadow_s"] = time.perf_counter() - start
        return figures

    def validate(self) -> dict[str, float]:
        """Greedy episodes on the held-out questions with the validation engine."""
        with autocast(self.device, self.compute_dtype):
            metrics, _ = validate(self.generator, self.val_engine, self.val_examples, self.config.rollout,
                                  self.reward_config, temperature=self.config.validation.temperature,
                                  seed=self.config.seed)
        return metrics

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def train(self, on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, float]:
        """Run until ``total_steps``; returns the last step's metrics. ``on_step(step, metrics)`` is called
        after each step is logged (a scheduler's progress line, say)."""
        cfg = self.config
        if self._resumed_from is None:
            refuse_mixing_runs(self.output_dir)
        self._write_run_info()
        logger = RunLogger(self.output_dir, tensorboard=cfg.logging.tensorboard,
                           wandb_project=cfg.logging.wandb_project if cfg.logging.wandb else None,
                           config=cfg.model_dump(mode="json"), resume_step=self._resumed_from)
        bar = _progress(cfg.logging.progress, self.step, cfg.total_steps)
        metrics: dict[str, float] = {}
        try:
            if self.step == 0 and cfg.validation.at_start and self.val_examples:
                logger.log(0, self.validate())
            while self.step < cfg.total_steps:
                metrics, episodes = self.train_step()
                self.step += 1
                if self._due(cfg.validation.every):
                    metrics.update(self.validate())
                logger.log(self.step, metrics)
                if self._due(cfg.logging.episodes_every):
                    write_episodes_jsonl(episodes, self.output_dir / "episodes.jsonl", step=self.step)
                if self._due(cfg.checkpoint.every) or (cfg.checkpoint.save_final and self.step == cfg.total_steps):
                    self.save_checkpoint()
                _advance(bar, metrics)
                if on_step is not None:
                    on_step(self.step, metrics)
        finally:
            logger.close()
            if bar is not None:
                bar.close()
        if cfg.logging.plot and logger.jsonl.is_file():
            from zerosearch.train.plot import plot_run_curves

            plot_run_curves(logger.jsonl, self.output_dir / "curves.png")
        return metrics

    # ------------------------------------------------------------------ outputs

    def save_checkpoint(self) -> Path:
        """Write a checkpoint of the current step (atomic; prunes old ones)."""
        parts = CheckpointParts(
            step=self.step, model=self.model, tokenizer=self.tokenizer, optimizer=self.optimizer,
            scheduler=self.scheduler, data_state=self.sampler.state_dict(),
            config_yaml=yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False),
            value_head=self.value_head, critic=self.critic, critic_optimizer=self.critic_optimizer,
            engine_states={role: e.state_dict() for role, e in self.engines().items() if hasattr(e, "state_dict")},
        )
        return save_checkpoint(self.output_dir, parts, self.config.checkpoint.keep_last)

    def _write_run_info(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "config.yaml").write_text(
            yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
        info = {"seed": self.config.seed, "versions": package_versions(), "device": str(self.device),
                "resumed_from_step": self._resumed_from, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        name = "run_info.json" if self._resumed_from is None else f"run_info.resume-{self._resumed_from}.json"
        (self.output_dir / name).write_text(json.dumps(info, indent=2), encoding="utf-8")


SHOWN = {"rollout/reward": "reward", "rollout/f1": "f1", "rollout/searches": "search",
         "actor/kl_loss": "kl", "actor/entropy": "ent", "noise_probability": "p",
         "shadow/train_hit_real_miss": "hit_real_miss"}


def _progress(enabled: bool, initial: int, total: int) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)


def _advance(bar: Any, metrics: dict[str, float]) -> None:
    if bar is None:
        return
    bar.set_postfix({short: f"{metrics[key]:.3g}" for key, short in SHOWN.items() if key in metrics})
    bar.update(1)
