"""The RL update on a real tiny Llama: masked tokens get exactly zero gradient, micro-batching is exact.

For every registered estimator (parametrized), garbage put where the mask is 0 — in the final hidden
states that predict injected/prompt/padding tokens, in the value head's output there, and in every prepared tensor
(old and reference log-probs, advantages, returns, old values) — leaves the loss and every parameter's
gradient bit-for-bit unchanged, while the same garbage at a policy token does change them.
"""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
import torch
from train_tiny import tiny_model

from zerosearch.train.batch import collate_episodes
from zerosearch.train.config import AlgorithmSettings
from zerosearch.train.estimators import ESTIMATORS, get_estimator
from zerosearch.train.forward import ValueHead
from zerosearch.train.losses import Normalizer
from zerosearch.train.update import PolicyUpdater, Reference

VOCAB = 40



def _episodes() -> list[NS]:
    # Two groups of two; responses interleave policy (1) and injected (0) tokens; lengths differ (padding).
    specs = [
        ([3, 4, 5], [6, 7, 8, 9, 10, 11], [1, 1, 0, 0, 1, 1], 1.0, 0),
        ([3, 4, 5], [6, 12, 13, 14], [1, 0, 0, 1], 0.0, 0),
        ([3, 15], [16, 17, 18, 19, 20, 21, 22], [1, 1, 1, 0, 0, 1, 1], 0.5, 1),
        ([3, 15], [23, 24], [1, 1], 0.0, 1),
    ]
    return [NS(prompt_ids=p, response_ids=r, response_mask=m, sampling_logprobs=[0.0] * len(r), reward=w, group=g)
            for p, r, m, w, g in specs]


def _updater(estimator: str, micro: int = 4, model_seed: int = 0) -> PolicyUpdater:
    torch.manual_seed(model_seed)
    model = tiny_model(VOCAB, seed=model_seed)
    reference = Reference(tiny_model(VOCAB, seed=model_seed + 1))
    settings = AlgorithmSettings(estimator=estimator, micro_batch_size=micro, entropy_coef=0.01,
                                 kl={"placement": "loss", "coef": 0.1})
    head = ValueHead(64) if get_estimator(estimator).needs_values else None
    params = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
    optimizer = torch.optim.SGD(params, lr=1.0)
    return PolicyUpdater(model, settings, optimizer, reference=reference, value_head=head, max_grad_norm=None)


def _grads(updater: PolicyUpdater, prepared, noise_rows: torch.Tensor | None) -> tuple[float, list[torch.Tensor]]:
    """Loss and parameter gradients, with optional noise added to logits/values at ``noise_rows`` (B, T)."""
    hooks = []
    if noise_rows is not None:
        gen = torch.Generator().manual_seed(1)

        def hidden_hook(_module, _inp, out):  # the final norm's (B, T, H) output feeds the head at p -> p + 1
            noise = 50.0 * torch.randn(out.shape, generator=gen)
            return out + noise * noise_rows[..., None]

        hooks.append(updater.model.model.norm.register_forward_hook(hidden_hook))
        if updater.value_head is not None:
            hooks.append(updater.value_head.register_forward_hook(
                lambda _m, _i, out: out + 1e3 * noise_rows[:, : out.shape[1]]))
    updater.model.zero_grad(set_to_none=True)
    if updater.value_head is not None:
        updater.value_head.zero_grad(set_to_none=True)
    norm = Normalizer(tokens=float(prepared.batch.response_mask.sum()), sequences=float(prepared.batch.size),
                      scale=float(prepared.batch.input_ids.shape[1]))
    loss, _ = updater.micro_loss(prepared, norm)
    loss.backward()
    for h in hooks:
        h.remove()
    params = list(updater.model.parameters()) + list(updater.value_head.parameters() if updater.value_head else [])
    return float(loss.detach()), [p.grad.clone() for p in params]


def _prepared(updater: PolicyUpdater):
    batch = collate_episodes(_episodes(), pad_token_id=0)
    prepared, _ = updater.prepare(batch)
    return batch, prepared


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_masked_positions_get_exactly_zero_gradient(name):
    updater = _updater(name)
    batch, prepared = _prepared(updater)
    mask = batch.response_mask
    loss, grads = _grads(updater, prepared, None)
    assert all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)

    # Hidden state at q predicts token q+1; the last position predicts nothing. Noise where q+1 is masked.
    predicts_masked = torch.ones_like(mask)
    predicts_masked[:, :-1] = 1.0 - mask[:, 1:]
    loss_noisy, grads_noisy = _grads(updater, prepared, predicts_masked)
    assert loss_noisy == loss
    for g, gn in zip(grads, grads_noisy, strict=True):
        assert torch.equal(g, gn)

    # Garbage in every prepared tensor at mask-0 positions.
    off = mask == 0
    dirty = type(prepared)(
        prepared.batch,
        prepared.old_log_probs.masked_fill(off, 7.0),
        prepared.advantages.masked_fill(off, -1e3),
        prepared.returns.masked_fill(off, 1e3),
        None if prepared.ref_log_probs is None else prepared.ref_log_probs.masked_fill(off, -30.0),
        None if prepared.old_values is None else prepared.old_values.masked_fill(off, 55.0),
    )
    loss_dirty, grads_dirty = _grads(updater, dirty, None)
    assert loss_dirty == loss
    for g, gd in zip(grads, grads_dirty, strict=True):
        assert torch.equal(g, gd)

    # Control: the same noise on the logits predicting one *policy* token does change the gradient.
    one_policy = torch.zeros_like(mask)
    p = int(torch.nonzero(mask[0]).flatten()[0])
    one_policy[0, p - 1] = 1.0
    loss_control, grads_control = _grads(updater, prepared, one_policy)
    assert loss_control != loss or any(not torch.equal(g, gc) for g, gc in zip(grads, grads_control, strict=True))


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_gradient_accumulation_equals_one_big_batch(name):
    deltas = []
    for micro in (1, 4):
        updater = _updater(name, micro=micro)
        before = [p.detach().clone() for p in updater.model.parameters()]
        _, prepared = _prepared(updater)
        metrics = updater.update(prepared)
        deltas.append([p.detach() - b for p, b in zip(updater.model.parameters(), before, strict=True)])
        assert metrics["actor/grad_norm"] > 0
    for d1, d4 in zip(*deltas, strict=True):
        torch.testing.assert_close(d1, d4, atol=2e-6, rtol=1e-4)


def test_old_log_probs_are_recomputed_and_first_epoch_ratio_is_one():
    updater = _updater("grpo")
    batch, prepared = _prepared(updater)
    # The episodes claim sampling log-probs of 0; the recomputed ones are the model's real ones (< 0).
    assert (prepared.old_log_probs[batch.response_mask == 1] < 0).all()
    norm = Normalizer(tokens=float(batch.response_mask.sum()), sequences=4.0, scale=float(batch.input_ids.shape[1]))
    _, metrics = updater.micro_loss(prepared, norm)
    assert metrics["actor/ppo_kl"].abs() < 1e-6 and metrics["actor/pg_clipfrac"] == 0


def test_several_ppo_epochs_move_the_ratio_and_clip():
    updater = _updater("grpo")
    updater.config = updater.config.model_copy(update={"ppo_epochs": 4})
    _, prepared = _prepared(updater)
    metrics = updater.update(prepared)
    assert metrics["actor/pg_clipfrac"] > 0  # lr 1.0 SGD moves the ratio far past 1 +- 0.2


def test_estimator_without_values_head_is_refused():
    settings = AlgorithmSettings(estimator="gae")
    model = tiny_model(VOCAB)
    with pytest.raises(ValueError, match="needs values"):
        PolicyUpdater(model, settings, torch.optim.SGD(model.parameters(), lr=0.1))
