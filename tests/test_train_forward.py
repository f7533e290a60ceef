"""Chunked log-probs and entropy (``train/forward.py``) on a real tiny Llama: equal to the full-logits
computation, at policy tokens only, in bounded chunks, and with no entropy graph unless trained."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
import torch
from train_tiny import tiny_model

from zerosearch.train.batch import collate_episodes
from zerosearch.train.forward import forward_batch, forward_no_grad

VOCAB = 40


def _batch():
    specs = [([3, 4, 5], [6, 7, 8, 9, 10, 11], [1, 1, 0, 0, 1, 1]), ([3, 15], [16, 17, 18, 19], [1, 0, 1, 1])]
    eps = [NS(prompt_ids=p, response_ids=r, response_mask=m, sampling_logprobs=[0.0] * len(r), reward=1.0, group=0)
           for p, r, m in specs]
    return collate_episodes(eps, pad_token_id=0)


def _naive(model, batch, temperature):
    """What the trainer did before: full (B, T, V) fp32 logits, log-softmax and entropy everywhere."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1].float()
    logits = logits / temperature
    logp = torch.log_softmax(logits, -1)
    token = logp.gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    pad = torch.nn.functional.pad
    return pad(token, (1, 0)), pad(entropy, (1, 0))


@pytest.mark.parametrize("chunk", [1, 3, 512])
def test_chunked_log_probs_and_entropy_equal_the_full_computation(chunk):
    model = tiny_model(VOCAB)
    batch = _batch()
    mask = batch.response_mask
    want_lp, want_ent = _naive(model, batch, 0.7)
    out = forward_batch(model, batch, temperature=0.7, with_entropy=True, entropy_grad=True, chunk_size=chunk)
    torch.testing.assert_close(out.log_probs * mask, want_lp * mask, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.entropy * mask, want_ent * mask, atol=1e-5, rtol=1e-5)
    assert (out.log_probs[mask == 0] == 0).all()  # nothing is computed where no policy token is predicted

    # Gradients of a masked loss equal the full computation's.
    (out.log_probs * mask).sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    (want_lp * mask).sum().backward()
    for g, w in zip(got, (p.grad for p in model.parameters()), strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_head_sees_only_policy_positions_in_bounded_chunks():
    """Before: the head ran on every (B, T) position and the full fp32 logits were kept per micro-batch."""
    model = tiny_model(VOCAB)
    batch = _batch()
    rows: list[int] = []
    hook = model.lm_head.register_forward_hook(lambda _m, inp, _o: rows.append(inp[0].shape[0]))
    forward_batch(model, batch, chunk_size=3)
    hook.remove()
    assert sum(rows) == int(batch.response_mask.sum()) and max(rows) <= 3 and all(r > 0 for r in rows)


def test_entropy_has_no_graph_unless_trained_and_is_skipped_when_not_asked():
    model = tiny_model(VOCAB)
    batch = _batch()
    out = forward_batch(model, batch, with_entropy=True, entropy_grad=False)
    assert out.log_probs.requires_grad and not out.entropy.requires_grad
    assert forward_batch(model, batch, with_entropy=True, entropy_grad=True).entropy.requires_grad
    assert forward_batch(model, batch).entropy is None
    no_grad = forward_no_grad(model, batch, micro_batch_size=1)
    torch.testing.assert_close(no_grad.log_probs, forward_batch(model, batch).log_probs.detach())
