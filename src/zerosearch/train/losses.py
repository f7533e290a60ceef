"""Policy-gradient losses, KL estimators, loss aggregation and the critic's value loss.

The formulas follow verl's ``verl/trainer/ppo/core_algos.py`` so that a run moved to verl optimises the
same objective (read there for facts; nothing is copied). Every per-token tensor is ``(B, T)`` and comes
with a ``mask`` of the same shape: 1 on tokens the policy generated, 0 on prompt, injected
``<information>`` blocks, invalid-action messages and padding. Masked positions never reach a loss:
they are multiplied by 0 *and* never divide anything, so garbage there (even inf/nan-free huge values)
changes neither the loss nor its gradient.

Policy losses live in a registry keyed by name (``register_policy_loss``); every loss has the one
signature ``fn(log_prob, old_log_prob, advantages, mask, config, norm) -> (loss, metrics)`` so the
trainer calls whichever the config names without branching on it.

    >>> import torch
    >>> m = torch.tensor([[1.0, 1.0, 0.0]])
    >>> float(agg_loss(torch.tensor([[1.0, 3.0, 100.0]]), m, "token-mean"))
    2.0
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

Tensor = torch.Tensor


class AggMode(str, Enum):
    """How a ``(B, T)`` loss matrix becomes a scalar (verl's ``loss_agg_mode`` names)."""

    TOKEN_MEAN = "token-mean"  # sum over all policy tokens / number of policy tokens
    SEQ_MEAN_TOKEN_SUM = "seq-mean-token-sum"  # per-sequence sum, mean over sequences
    SEQ_MEAN_TOKEN_MEAN = "seq-mean-token-mean"  # per-sequence mean, mean over sequences
    SEQ_MEAN_TOKEN_SUM_NORM = "seq-mean-token-sum-norm"  # sum over everything / a constant (Dr. GRPO)


class KLType(str, Enum):
    """KL estimators between the policy and the reference (verl names in brackets).

    k1 ("kl"): log p - log q. k2 ("mse"): 0.5 (log p - log q)^2. k3 ("low_var_kl"): exp(log q - log p)
    - (log q - log p) - 1, always >= 0, with verl's clamps. abs: |log p - log q|.
    """

    K1 = "k1"
    K2 = "k2"
    K3 = "k3"
    ABS = "abs"


@dataclass(frozen=True)
class Normalizer:
    """Counts over the whole mini-batch, so micro-batches with gradient accumulation give exactly the
    gradient of one big batch. ``tokens``: policy tokens in the mini-batch; ``sequences``: episodes in it;
    ``scale``: the constant of seq-mean-token-sum-norm (the trainer passes a constant, as verl; None: the
    padded length T of this tensor, for direct calls only).
    """

    tokens: float | None = None
    sequences: float | None = None
    scale: float | None = None


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``values`` where ``mask`` is 1 (0 if the mask is empty)."""
    total = (values * mask).sum() if dim is None else (values * mask).sum(dim)
    count = mask.sum() if dim is None else mask.sum(dim)
    return total / count.clamp(min=1.0)


def masked_var(values: Tensor, mask: Tensor, unbiased: bool = True) -> Tensor:
    """Variance over masked entries, with Bessel's correction like verl's ``masked_var``."""
    mean = masked_mean(values, mask)
    centered = (values - mean) * mask
    count = mask.sum()
    var = (centered**2).sum() / count.clamp(min=1.0)
    if unbiased:
        if count <= 1:
            raise ValueError(
                "cannot whiten advantages over fewer than 2 policy tokens; raise the batch size or the "
                "response length"
            )
        var = var * count / (count - 1)
    return var


def masked_whiten(values: Tensor, mask: Tensor, shift_mean: bool = True) -> Tensor:
    """(values - mean) / sqrt(var + 1e-8) over the masked entries (unmasked entries are garbage)."""
    mean = masked_mean(values, mask)
    var = masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    return whitened if shift_mean else whitened + mean


def agg_loss(
    loss_mat: Tensor, mask: Tensor, mode: AggMode | str, norm: Normalizer | None = None
) -> Tensor:
    """Aggregate a ``(B, T)`` per-token loss to a scalar over masked tokens only.

    ``norm`` replaces the local counts by mini-batch counts for gradient accumulation.
    """
    mode = AggMode(mode)
    norm = norm or Normalizer()
    masked = torch.where(mask.bool(), loss_mat, torch.zeros_like(loss_mat))  # (B, T); garbage-proof
    if mode is AggMode.TOKEN_MEAN:
        tokens = norm.tokens if norm.tokens is not None else mask.sum().clamp(min=1.0)
        return masked.sum() / tokens
    sequences = norm.sequences if norm.sequences is not None else float(loss_mat.shape[0])
    if mode is AggMode.SEQ_MEAN_TOKEN_SUM:
        return masked.sum(-1).sum() / sequences
    if mode is AggMode.SEQ_MEAN_TOKEN_MEAN:
        per_seq = masked.sum(-1) / mask.sum(-1).clamp(min=1.0)  # (B,)
        return per_seq.sum() / sequences
    scale = norm.scale if norm.scale is not None else float(loss_mat.shape[-1])
    return masked.sum() / scale


def kl_penalty(log_prob: Tensor, ref_log_prob: Tensor, kind: KLType | str) -> Tensor:
    """Per-token KL estimate of policy vs reference, ``(B, T)`` (verl's ``kl_penalty``).

    >>> lp, ref = torch.tensor([0.0]), torch.tensor([-1.0])
    >>> float(kl_penalty(lp, ref, "k1")), round(float(kl_penalty(lp, ref, "k3")), 4)  # e^-1 + 1 - 1
    (1.0, 0.3679)
    """
    kind = KLType(kind)
    diff = log_prob - ref_log_prob
    if kind is KLType.K1:
        return diff
    if kind is KLType.ABS:
        return diff.abs()
    if kind is KLType.K2:
        return 0.5 * diff.square()
    # k3 (Schulman's low-variance estimator); verl clamps the log ratio and the result for stability.
    log_ratio = torch.clamp(-diff, min=-20.0, max=20.0)
    return torch.clamp(log_ratio.exp() - log_ratio - 1.0, min=-10.0, max=10.0)


class PolicyLossConfig(BaseModel):
    """The clipped surrogate's knobs (verl actor names)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("vanilla", description="registered policy loss: vanilla = PPO-clip (+ dual clip)")
    clip_ratio_low: float = Field(0.2, ge=0.0, lt=1.0, description="ratio is clipped below at 1 - this")
    clip_ratio_high: float = Field(0.2, ge=0.0, description="ratio is clipped above at 1 + this")
    dual_clip: bool = Field(True, description="dual-clip PPO: bound the loss of negative-advantage tokens")
    clip_ratio_c: float = Field(3.0, gt=1.0, description="dual-clip bound c (> 1); verl default 3")
    loss_agg_mode: AggMode = Field(AggMode.TOKEN_MEAN, description="how token losses become a scalar")
    loss_scale_factor: float | None = Field(
        None, gt=0.0, description="the constant of seq-mean-token-sum-norm (default: rollout.max_response_tokens)"
    )

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in POLICY_LOSSES:
            raise ValueError(f"unknown policy loss {value!r}; registered: {sorted(POLICY_LOSSES)}")
        return value


PolicyLossFn = Callable[[Tensor, Tensor, Tensor, Tensor, PolicyLossConfig, Normalizer | None], tuple[Tensor, dict]]
POLICY_LOSSES: dict[str, PolicyLossFn] = {}


class PolicyLoss(str, Enum):
    """Built-in policy losses."""

    VANILLA = "vanilla"


def register_policy_loss(name: str | PolicyLoss) -> Callable[[PolicyLossFn], PolicyLossFn]:
    """Decorator adding a policy loss under ``name``; registering a name twice is an error."""
    key = PolicyLoss(name).value if name in PolicyLoss._value2member_map_ else str(name)

    def wrap(fn: PolicyLossFn) -> PolicyLossFn:
        if key in POLICY_LOSSES:
            raise ValueError(f"policy loss {key!r} is already registered ({POLICY_LOSSES[key].__name__})")
        POLICY_LOSSES[key] = fn
        return fn

    return wrap


def get_policy_loss(name: str) -> PolicyLossFn:
    """The registered policy loss ``name``."""
    if name not in POLICY_LOSSES:
        raise KeyError(f"unknown policy loss {name!r}; registered: {sorted(POLICY_LOSSES)}")
    return POLICY_LOSSES[name]


@register_policy_loss(PolicyLoss.VANILLA)
def ppo_clip_loss(
    log_prob: Tensor,
    old_log_prob: Tensor,
    advantages: Tensor,
    mask: Tensor,
    config: PolicyLossConfig,
    norm: Normalizer | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO-clip surrogate with optional dual clip; all inputs ``(B, T)``.

    ratio = exp(log_prob - old_log_prob) (log-ratio clamped to ±20);
    loss = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high)), and for A < 0 with dual clip,
    min(that, -A c). Metrics: pg_clipfrac (upper/lower clip active), pg_clipfrac_lower (dual clip
    active), ppo_kl (mean of old - new log-prob).
    """
    mask = mask.to(log_prob.dtype)
    # Zero garbage at masked positions before exp() so it cannot overflow into nan gradients.
    keep = mask.bool()
    log_ratio = torch.where(keep, log_prob - old_log_prob, torch.zeros_like(log_prob))
    log_ratio = torch.clamp(log_ratio, min=-20.0, max=20.0)
    adv = torch.where(keep, advantages, torch.zeros_like(advantages))
    ratio = log_ratio.exp()
    loss_unclipped = -adv * ratio
    loss_clipped = -adv * torch.clamp(ratio, 1.0 - config.clip_ratio_low, 1.0 + config.clip_ratio_high)
    clip_loss = torch.maximum(loss_unclipped, loss_clipped)
    clipfrac = masked_mean((loss_clipped > loss_unclipped).to(mask.dtype), mask)
    if config.dual_clip:
        bound = -adv * config.clip_ratio_c
        dual = torch.minimum(bound, clip_loss)
        lower = masked_mean(((clip_loss > bound) & (adv < 0)).to(mask.dtype), mask)
        pg_losses = torch.where(adv < 0, dual, clip_loss)
    else:
        lower = torch.zeros((), dtype=mask.dtype)
        pg_losses = clip_loss
    loss = agg_loss(pg_losses, mask, config.loss_agg_mode, norm)
    metrics = {
        "pg_clipfrac": clipfrac.detach(),
        "pg_clipfrac_lower": lower.detach(),
        "ppo_kl": masked_mean(-log_ratio, mask).detach(),
    }
    return loss, metrics


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip_range: float | None,
    mode: AggMode | str = AggMode.TOKEN_MEAN,
    norm: Normalizer | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped critic loss 0.5 * agg(max((v - R)^2, (clip(v, v_old ± c) - R)^2)), verl's form.

    ``clip_range`` None disables the clipped branch.
    """
    mask = mask.to(values.dtype)
    err = (values - returns).square()  # (B, T)
    if clip_range is None:
        losses, clipfrac = err, torch.zeros((), dtype=values.dtype)
    else:
        clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
        err_clipped = (clipped - returns).square()
        losses = torch.maximum(err, err_clipped)
        clipfrac = masked_mean((err_clipped > err).to(values.dtype), mask).detach()
    loss = 0.5 * agg_loss(losses, mask, mode, norm)
    return loss, {"vf_clipfrac": clipfrac, "vpred_mean": masked_mean(values.detach(), mask)}


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the categorical distribution at each position: ``(..., V) -> (...)``."""
    log_z = torch.logsumexp(logits, dim=-1)
    probs = torch.softmax(logits, dim=-1)
    return log_z - (probs * logits).sum(-1)
