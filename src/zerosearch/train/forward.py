"""Teacher-forced passes of a causal LM over a :class:`TrainBatch`: per-token log-probs, entropy, values.

Everything returned is aligned to positions of ``input_ids`` (see ``batch.py``): ``log_probs[b, p]`` is
log pi(token_p | tokens_<p) computed from the logits at ``p - 1``, and ``values[b, p]`` is the value head
on the hidden state at ``p - 1``, i.e. the value of the state in which token ``p`` is chosen (verl's
alignment). Logits are divided by the rollout temperature, as verl's actor does, so the log-probs are
those of the distribution the tokens were sampled from.

Memory. The full ``(B, T, V)`` logits are never built: the backbone's last hidden states are taken at
the policy's own tokens only (``response_mask`` 1; prompt, injected and padding positions get 0, and
every consumer masks them), and the output head, the fp32 log-softmax and the entropy run over chunks
of ``chunk_size`` positions. Under a gradient each chunk is checkpointed, so backward recomputes one
chunk's logits at a time instead of keeping them all (verl's "fused" log-prob kernels have the same
goal). The entropy is computed without a graph unless ``entropy_grad``, and not at all unless asked.

Mixed precision: callers run these passes under :func:`zerosearch.train.precision.autocast`; the head
output is upcast to fp32 before the softmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from zerosearch.train.batch import TrainBatch

Tensor = torch.Tensor

#: Positions per chunk of the output head / log-softmax (about chunk x vocab x 4 bytes per live copy; the
#: backward of a chunk holds about four such copies: 128 x 49k vocabulary x 4 bytes x 4 = 100 MB).
DEFAULT_CHUNK = 128


class ValueHead(nn.Module):
    """Scalar value from a backbone's last hidden state."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden_size, 1)
        nn.init.normal_(self.proj.weight, std=1.0 / (hidden_size + 1))
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        """(B, T, H) -> (B, T)."""
        return self.proj(hidden.to(self.proj.weight.dtype)).squeeze(-1)


@dataclass
class ForwardOut:
    """Per-position outputs, each (B, T)."""

    log_probs: Tensor
    entropy: Tensor | None = None
    values: Tensor | None = None


def split_causal_lm(model: Any) -> tuple[nn.Module, nn.Module]:
    """The backbone (ids -> last hidden states, final norm included) and the output head of a causal LM.

    Works for transformers causal LMs and peft wrappers of them (the adapters live inside the modules).
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    get_decoder = getattr(inner, "get_decoder", None)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    backbone = get_decoder() if get_decoder is not None else None
    if backbone is None or head is None or backbone is inner:
        raise TypeError(
            f"{type(inner).__name__} does not expose a decoder and an output head (get_decoder / "
            "get_output_embeddings); the trainer needs a transformers causal LM"
        )
    return backbone, head


def last_hidden(backbone: nn.Module, batch: TrainBatch) -> Tensor:
    """(B, T, H) last hidden states (after the final norm)."""
    out = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def _softcap(model: Any) -> float | None:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    cap = getattr(getattr(inner, "config", None), "final_logit_softcapping", None)
    return float(cap) if cap else None


def _chunk_stats(
    hidden: Tensor, targets: Tensor, head: nn.Module, temperature: float, softcap: float | None, entropy: str
) -> tuple[Tensor, Tensor]:
    """Log-prob of ``targets`` and entropy for one chunk of positions: (N, H), (N,) -> (N,), (N,)."""
    logits = head(hidden).float()  # (N, V)
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    log_z = torch.logsumexp(logits, dim=-1)  # (N,)
    log_prob = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - log_z
    if entropy == "none":
        return log_prob, torch.zeros_like(log_prob)
    source = logits if entropy == "grad" else logits.detach()
    ent = log_z.detach() if entropy != "grad" else log_z
    ent = ent - (torch.softmax(source, dim=-1) * source).sum(-1)
    return log_prob, ent


def token_stats(
    hidden: Tensor,
    targets: Tensor,
    head: nn.Module,
    *,
    temperature: float = 1.0,
    softcap: float | None = None,
    entropy: str = "none",
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[Tensor, Tensor | None]:
    """Log-probs (and entropy) of ``targets`` given ``hidden`` (N, H), chunked; ``entropy``: none/value/grad."""
    log_probs, entropies = [], []
    use_checkpoint = torch.is_grad_enabled() and hidden.requires_grad
    for start in range(0, hidden.shape[0], chunk_size):
        args = (hidden[start : start + chunk_size], targets[start : start + chunk_size], head, temperature,
                softcap, entropy)
        if use_checkpoint:
            lp, ent = checkpoint(_chunk_stats, *args, use_reentrant=False)
        else:
            lp, ent = _chunk_stats(*args)
        log_probs.append(lp)
        entropies.append(ent.detach() if entropy != "grad" else ent)
    empty = hidden.new_zeros(0, dtype=torch.float32)
    lp_all = torch.cat(log_probs) if log_probs else empty
    ent_all = (torch.cat(entropies) if entropies else empty) if entropy != "none" else None
    return lp_all, ent_all


def _scatter(values: Tensor, flat_index: Tensor, shape: torch.Size) -> Tensor:
    """A (B, T) float tensor with ``values`` at ``flat_index`` and 0 elsewhere (differentiable)."""
    out = values.new_zeros(shape.numel())
    return out.index_put((flat_index,), values).view(shape)


def forward_batch(
    model: Any,
    batch: TrainBatch,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    value_head: ValueHead | None = None,
    detach_value_features: bool = False,
) -> ForwardOut:
    """Log-probs (and entropy) at the batch's policy tokens; grad flows unless under no_grad.

    The entropy is computed only ``with_entropy``, and without a graph unless ``entropy_grad`` (an
    entropy bonus is trained). ``value_head``: a critic head on the policy's own backbone (the opt-in
    shared critic); a separate critic model runs :meth:`Critic.values` instead.
    """
    backbone, head = split_causal_lm(model)
    hidden = last_hidden(backbone, batch)  # (B, T, H)
    shape = batch.input_ids.shape
    # Position p's token is predicted from the hidden state at p - 1; only policy tokens are needed.
    wanted = batch.response_mask.clone()
    wanted[:, 0] = 0
    flat = torch.nonzero(wanted.reshape(-1) > 0).squeeze(-1)  # (N,)
    hidden_flat = hidden.reshape(-1, hidden.shape[-1])[flat - 1]  # (N, H): row p - 1 of the same sequence
    targets = batch.input_ids.reshape(-1)[flat]
    mode = "none" if not with_entropy else ("grad" if entropy_grad and torch.is_grad_enabled() else "value")
    lp, ent = token_stats(hidden_flat, targets, head, temperature=temperature, softcap=_softcap(model),
                          entropy=mode, chunk_size=chunk_size)
    result = ForwardOut(log_probs=_scatter(lp, flat, shape))
    if ent is not None:
        result.entropy = _scatter(ent, flat, shape)
    if value_head is not None:
        result.values = values_from_hidden(value_head, hidden.detach() if detach_value_features else hidden)
    return result


def values_from_hidden(head: ValueHead, hidden: Tensor) -> Tensor:
    """(B, T, H) hidden states -> (B, T) values aligned to token positions (value at p from state p - 1)."""
    return F.pad(head(hidden[:, :-1]), (1, 0))


class Critic(nn.Module):
    """PPO's value model: its own backbone (a copy of the policy's at the start) and a value head.

    Trained by its own optimizer at its own learning rate and gradient clip, so the value loss never
    reaches the policy (verl's separate critic worker; ZeroSearch's PPO recipe: critic lr 1e-5).
    """

    def __init__(self, backbone: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = ValueHead(hidden_size)

    def values(self, batch: TrainBatch) -> Tensor:
        """(B, T) values of the batch's positions."""
        return values_from_hidden(self.head, last_hidden(self.backbone, batch))


@torch.no_grad()
def forward_no_grad(
    model: Any,
    batch: TrainBatch,
    micro_batch_size: int,
    *,
    temperature: float = 1.0,
    chunk_size: int = DEFAULT_CHUNK,
    value_head: ValueHead | None = None,
    critic: Critic | None = None,
) -> ForwardOut:
    """Log-probs (and values: shared ``value_head`` or separate ``critic``) of the whole batch in
    micro-batches, without gradients, in eval mode."""
    modules = [m for m in (model, critic) if m is not None]
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        log_probs = torch.zeros_like(batch.response_mask)
        values = torch.zeros_like(batch.response_mask) if (value_head or critic) is not None else None
        for start in range(0, batch.size, micro_batch_size):
            rows = list(range(start, min(start + micro_batch_size, batch.size)))
            micro = batch.select(rows)
            width = micro.input_ids.shape[1]
            out = forward_batch(model, micro, temperature=temperature, chunk_size=chunk_size, value_head=value_head)
            log_probs[rows, :width] = out.log_probs
            if values is not None:
                values[rows, :width] = out.values if critic is None else critic.values(micro)
    finally:
        for m, mode in zip(modules, was_training, strict=True):
            m.train(mode)
    return ForwardOut(log_probs=log_probs, values=values)
