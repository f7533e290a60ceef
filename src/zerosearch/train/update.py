"""One RL update on a collated batch: old/reference log-probs, advantages, then clipped-loss steps.

The order follows verl's PPO step: (1) recompute the old log-probs with the current policy (the sampler's
log-probs are kept for diagnostics only: ``rollout/logprob_diff``), (2) reference log-probs when a KL is
used, (3) values when the estimator needs them, (4) token rewards = scores - coef * KL when the KL sits
in the reward, (5) advantages from the registered estimator, (6) ``ppo_epochs`` x mini-batches of
optimizer steps, each accumulated over micro-batches whose losses are normalised by mini-batch counts,
so the accumulated gradient equals the gradient of the whole mini-batch in one pass.

Nothing here looks at the algorithm's name: the estimator spec says whether values are needed.

Values come from a separate :class:`Critic` (its own weights, optimizer, learning rate and gradient
clip; the default for GAE) or, opt-in, from a ``value_head`` on the policy's backbone (the value loss
then flows into the policy at the policy's lr, weighted by ``critic.vf_coef``). Every forward pass runs
under autocast in ``compute_dtype``; parameters and optimizer state stay float32 (``precision.py``).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from zerosearch.train.batch import TrainBatch
from zerosearch.train.config import AlgorithmSettings, KLPlacement
from zerosearch.train.estimators import AdvantageInputs, get_estimator
from zerosearch.train.forward import DEFAULT_CHUNK, Critic, ValueHead, forward_batch, forward_no_grad
from zerosearch.train.losses import (
    AggMode,
    Normalizer,
    agg_loss,
    get_policy_loss,
    kl_penalty,
    masked_mean,
    value_loss,
)
from zerosearch.train.precision import autocast

logger = logging.getLogger(__name__)
Tensor = torch.Tensor


class Reference:
    """The frozen reference policy: a separate model, or the LoRA base with adapters switched off."""

    def __init__(self, model: Any, *, adapters_off: bool = False) -> None:
        self.model = model
        self.adapters_off = adapters_off
        if not adapters_off:
            model.requires_grad_(False)
            model.eval()

    def log_probs(self, batch: TrainBatch, micro_batch_size: int, temperature: float,
                  chunk_size: int = DEFAULT_CHUNK) -> Tensor:
        """(B, T) reference log-probs of the batch's tokens."""
        ctx = self.model.disable_adapter() if self.adapters_off else contextlib.nullcontext()
        with ctx:
            return forward_no_grad(self.model, batch, micro_batch_size, temperature=temperature,
                                   chunk_size=chunk_size).log_probs


@dataclass
class Prepared:
    """A batch with everything the losses need, all (B, T)."""

    batch: TrainBatch
    old_log_probs: Tensor
    advantages: Tensor
    returns: Tensor
    ref_log_probs: Tensor | None = None
    old_values: Tensor | None = None

    def rows(self, index: list[int]) -> Prepared:
        """Micro-batch ``index``, trimmed to its longest row."""
        micro = self.batch.select(index)
        width = micro.input_ids.shape[1]

        def cut(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[index, :width]

        return Prepared(micro, cut(self.old_log_probs), cut(self.advantages), cut(self.returns),
                        cut(self.ref_log_probs), cut(self.old_values))


class _Mean:
    """Weighted running sums of scalar metrics, averaged over updates at the end."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.updates = 0

    def add(self, metrics: dict[str, Tensor | float], weight: float) -> None:
        for key, value in metrics.items():
            self.sums[key] += float(value) * weight

    def result(self) -> dict[str, float]:
        return {k: v / max(self.updates, 1) for k, v in self.sums.items()}


class PolicyUpdater:
    """Owns the policy's optimisation: given a batch, prepare it and run the optimizer steps."""

    def __init__(
        self,
        model: Any,
        config: AlgorithmSettings,
        optimizer: torch.optim.Optimizer,
        *,
        temperature: float = 1.0,
        reference: Reference | None = None,
        value_head: ValueHead | None = None,
        max_grad_norm: float | None = 1.0,
        critic: Critic | None = None,
        critic_optimizer: torch.optim.Optimizer | None = None,
        compute_dtype: torch.dtype = torch.float32,
        loss_scale: float | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.optimizer = optimizer
        self.temperature = temperature
        self.reference = reference
        self.value_head = value_head
        self.critic = critic
        self.critic_optimizer = critic_optimizer
        self.max_grad_norm = max_grad_norm
        self.compute_dtype = compute_dtype
        self.loss_scale = loss_scale
        self.estimator = get_estimator(config.estimator)
        self.policy_loss = get_policy_loss(config.policy_loss.name)
        self.kl_placement = config.kl.resolved_placement(config.estimator)
        self.kl_type = config.kl.resolved_type(config.estimator)
        if self.estimator.needs_values and value_head is None and critic is None:
            raise ValueError(f"estimator {config.estimator!r} needs values: pass a critic (or a shared value_head)")
        if critic is not None and (value_head is not None or critic_optimizer is None):
            raise ValueError("a separate critic needs its own critic_optimizer and no shared value_head")
        if self.kl_placement is not KLPlacement.NONE and reference is None:
            raise ValueError(f"KL placement {self.kl_placement.value!r} needs a reference model")
        if config.policy_loss.loss_agg_mode is AggMode.SEQ_MEAN_TOKEN_SUM_NORM and loss_scale is None:
            raise ValueError(
                "loss_agg_mode seq-mean-token-sum-norm divides by a constant: set "
                "algorithm.policy_loss.loss_scale_factor (or rollout.max_response_tokens, its default)"
            )

    def _autocast(self) -> Any:
        return autocast(next(self.model.parameters()).device, self.compute_dtype)

    # ------------------------------------------------------------------ preparation

    def prepare(self, batch: TrainBatch) -> tuple[Prepared, dict[str, float]]:
        """Old/ref log-probs, values, token rewards and advantages for ``batch``."""
        with self._autocast():
            return self._prepare(batch)

    def _prepare(self, batch: TrainBatch) -> tuple[Prepared, dict[str, float]]:
        micro, chunk = self.config.micro_batch_size, self.config.logits_chunk_size
        mask = batch.response_mask
        old = forward_no_grad(self.model, batch, micro, temperature=self.temperature, chunk_size=chunk,
                              value_head=self.value_head, critic=self.critic)
        metrics = {"rollout/logprob_diff": float(masked_mean((old.log_probs - batch.sampling_logprobs).abs(), mask))}
        ref = None
        rewards = batch.token_scores
        if self.reference is not None and self.kl_placement is not KLPlacement.NONE:
            ref = self.reference.log_probs(batch, micro, self.temperature, chunk)
            kld = kl_penalty(old.log_probs, ref, self.kl_type) * mask  # (B, T)
            metrics["kl/rollout_kl"] = float(masked_mean(kld, mask))
            if self.kl_placement is KLPlacement.REWARD:
                rewards = rewards - self.config.kl.coef * kld
        inputs = AdvantageInputs(
            token_rewards=rewards, mask=mask, group_ids=batch.group_ids, values=old.values,
            gamma=self.config.gamma, lam=self.config.lam, epsilon=self.config.epsilon,
            norm_adv_by_std=self.config.norm_adv_by_std,
        )
        advantages, returns = self.estimator.fn(inputs)
        metrics["advantage/mean"] = float(masked_mean(advantages, mask))
        metrics["advantage/abs_max"] = float((advantages * mask).abs().max())
        metrics["returns/mean"] = float(masked_mean(returns, mask))
        if old.values is not None:
            metrics["critic/values_mean"] = float(masked_mean(old.values, mask))
        return Prepared(batch, old.log_probs, advantages, returns, ref, old.values), metrics

    # ------------------------------------------------------------------ optimisation

    def _mini_batches(self, size: int) -> Iterator[list[int]]:
        step = self.config.mini_batch_size or size
        for start in range(0, size, step):
            yield list(range(start, min(start + step, size)))

    def update(self, prepared: Prepared) -> dict[str, float]:
        """``ppo_epochs`` passes of optimizer steps over ``prepared``; returns averaged metrics."""
        self.model.train()
        if self.critic is not None:
            self.critic.train()
        acc = _Mean()
        for _ in range(self.config.ppo_epochs):
            for mini in self._mini_batches(prepared.batch.size):
                tokens = float(prepared.batch.response_mask[mini].sum())
                norm = Normalizer(tokens=max(tokens, 1.0), sequences=float(len(mini)), scale=self.loss_scale)
                self.optimizer.zero_grad(set_to_none=True)
                if self.critic_optimizer is not None:
                    self.critic_optimizer.zero_grad(set_to_none=True)
                for start in range(0, len(mini), self.config.micro_batch_size):
                    rows = mini[start : start + self.config.micro_batch_size]
                    micro = prepared.rows(rows)
                    weight = float(micro.batch.response_mask.sum()) / max(tokens, 1.0)
                    with self._autocast():
                        loss, metrics = self.micro_loss(micro, norm)
                    loss.backward()
                    if self.critic is not None:
                        with self._autocast():
                            critic_loss, critic_metrics = self.critic_loss(micro, norm)
                        critic_loss.backward()
                        metrics.update(critic_metrics)
                    # Losses are already normalised by mini-batch counts (they add up); rates are
                    # per-micro-batch token means (weighted by the micro-batch's share of tokens).
                    acc.add({k: v for k, v in metrics.items() if k.endswith("_loss")}, 1.0)
                    acc.add({k: v for k, v in metrics.items() if not k.endswith("_loss")}, weight)
                acc.add({"actor/grad_norm": self._step(self.optimizer, self.max_grad_norm)}, 1.0)
                if self.critic_optimizer is not None:
                    critic_clip = self.config.critic.max_grad_norm
                    acc.add({"critic/grad_norm": self._step(self.critic_optimizer, critic_clip)}, 1.0)
                acc.updates += 1
        return acc.result()

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, max_grad_norm: float | None) -> float:
        """Clip, then step unless the gradient is not finite (the step is skipped and logged)."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        max_norm = max_grad_norm if max_grad_norm is not None else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        if not math.isfinite(grad_norm):
            logger.warning("gradient norm is %s: optimizer step skipped", grad_norm)
            optimizer.zero_grad(set_to_none=True)
            return grad_norm
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)  # no gradient memory held through the next rollout
        return grad_norm

    def micro_loss(self, micro: Prepared, norm: Normalizer) -> tuple[Tensor, dict[str, Tensor]]:
        """Policy loss of one micro-batch (normalised by mini-batch counts) and its metrics; with a shared
        value head the weighted value loss is included."""
        cfg = self.config
        batch, mask = micro.batch, micro.batch.response_mask
        out = forward_batch(
            self.model, batch, temperature=self.temperature, with_entropy=True,
            entropy_grad=cfg.entropy_coef > 0, chunk_size=cfg.logits_chunk_size, value_head=self.value_head,
            detach_value_features=cfg.critic.detach_backbone,
        )
        loss, pg = self.policy_loss(out.log_probs, micro.old_log_probs, micro.advantages, mask, cfg.policy_loss, norm)
        metrics: dict[str, Tensor] = {f"actor/{k}": v for k, v in pg.items()}
        metrics["actor/pg_loss"] = loss.detach()
        metrics["actor/entropy"] = masked_mean(out.entropy, mask).detach()
        if cfg.entropy_coef > 0:
            loss = loss - cfg.entropy_coef * agg_loss(out.entropy, mask, cfg.policy_loss.loss_agg_mode, norm)
        if micro.ref_log_probs is not None and self.kl_placement is KLPlacement.LOSS:
            kld = kl_penalty(out.log_probs, micro.ref_log_probs, self.kl_type)  # (b, t)
            kl_loss = agg_loss(kld, mask, cfg.policy_loss.loss_agg_mode, norm)
            loss = loss + cfg.kl.coef * kl_loss
            metrics["actor/kl_loss"] = kl_loss.detach()
        if out.values is not None and micro.old_values is not None:
            vf, vf_metrics = self._value_loss(out.values, micro, norm)
            loss = loss + cfg.critic.vf_coef * vf
            metrics["critic/vf_loss"] = vf.detach()
            metrics.update(vf_metrics)
        return loss, metrics

    def critic_loss(self, micro: Prepared, norm: Normalizer) -> tuple[Tensor, dict[str, Tensor]]:
        """The separate critic's value loss on one micro-batch (its own graph and optimizer)."""
        if self.critic is None:
            raise ValueError("critic_loss needs a separate critic")
        vf, metrics = self._value_loss(self.critic.values(micro.batch), micro, norm)
        metrics["critic/vf_loss"] = vf.detach()
        return vf, metrics

    def _value_loss(self, values: Tensor, micro: Prepared, norm: Normalizer) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.config
        if micro.old_values is None:
            raise ValueError("the value loss needs old values from prepare()")
        vf, vf_metrics = value_loss(values.float(), micro.old_values, micro.returns, micro.batch.response_mask,
                                    cfg.critic.cliprange_value, cfg.policy_loss.loss_agg_mode, norm)
        return vf, {f"critic/{k}": v for k, v in vf_metrics.items()}
