"""PPO's critic (item 3 of issue 12): by default a separate model with its own optimizer, learning rate
and gradient clip, so the value loss never reaches the policy; the shared head stays as an opt-in."""

from __future__ import annotations

import copy
from types import SimpleNamespace as NS

import torch
from train_tiny import QUESTIONS, tiny_model, word_tokenizer

from zerosearch.train.batch import collate_episodes
from zerosearch.train.config import AlgorithmSettings, parse_config
from zerosearch.train.forward import Critic, split_causal_lm
from zerosearch.train.trainer import Trainer
from zerosearch.train.update import PolicyUpdater, Reference

VOCAB = 40


def _batch():
    specs = [([3, 4, 5], [6, 7, 8, 9], [1, 1, 0, 1], 1.0, 0), ([3, 4, 5], [10, 11, 12], [1, 1, 1], 0.0, 0),
             ([3, 15], [16, 17], [1, 1], 0.5, 1), ([3, 15], [18, 19, 20], [1, 0, 1], 0.0, 1)]
    eps = [NS(prompt_ids=p, response_ids=r, response_mask=m, sampling_logprobs=[0.0] * len(r), reward=w, group=g)
           for p, r, m, w, g in specs]
    return collate_episodes(eps, pad_token_id=0)


def _policy_step(vf_lr: float):
    """One GAE update; returns the policy's weight change and the critic's (None without one)."""
    torch.manual_seed(0)
    model = tiny_model(VOCAB)
    before = [p.detach().clone() for p in model.parameters()]
    settings = AlgorithmSettings(estimator="gae", micro_batch_size=2, kl={"coef": 0.0},
                                 critic={"lr": vf_lr, "cliprange_value": None})
    critic = Critic(copy.deepcopy(split_causal_lm(model)[0]), 64)
    critic_before = [p.detach().clone() for p in critic.parameters()]
    critic_opt = torch.optim.SGD(critic.parameters(), lr=vf_lr)
    updater = PolicyUpdater(model, settings, torch.optim.SGD(model.parameters(), lr=0.1), reference=None,
                            critic=critic, critic_optimizer=critic_opt, max_grad_norm=None)
    prepared, _ = updater.prepare(_batch())
    metrics = updater.update(prepared)
    policy_delta = [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]
    critic_delta = [p.detach() - b for p, b in zip(critic.parameters(), critic_before, strict=True)]
    return policy_delta, critic_delta, metrics


def test_value_loss_never_reaches_the_policy():
    """The policy's update is the same whatever the critic's learning rate (so no value gradient in it),
    while the critic itself moves with its own optimizer."""
    slow_policy, _, metrics = _policy_step(1e-5)
    fast_policy, fast_critic, _ = _policy_step(1.0)
    for a, b in zip(slow_policy, fast_policy, strict=True):
        assert torch.equal(a, b)
    assert any(d.abs().sum() > 0 for d in fast_critic)
    assert metrics["critic/grad_norm"] > 0 and "critic/vf_loss" in metrics


def _trainer(tmp_path, **algorithm):
    tokenizer = word_tokenizer()
    config = parse_config({
        "output_dir": str(tmp_path / "run"), "model": {"name_or_path": "tiny"},
        "algorithm": {"estimator": "gae", **algorithm}, "engine": {"kind": "bm25", "corpus": "unused.jsonl"},
        "data": {"train": "unused.jsonl"},
    })
    return Trainer(config, model=tiny_model(len(tokenizer)), tokenizer=tokenizer, engine=None,
                   train_examples=QUESTIONS)


def test_gae_trainer_builds_a_separate_critic_with_its_own_optimizer(tmp_path):
    trainer = _trainer(tmp_path)
    assert trainer.value_head is None and trainer.critic is not None
    policy_ptrs = {p.data_ptr() for p in trainer.model.parameters()}
    critic_params = list(trainer.critic.parameters())
    assert not policy_ptrs & {p.data_ptr() for p in critic_params}  # its own weights, not the policy's
    (group,) = trainer.critic_optimizer.param_groups
    assert group["lr"] == 1e-5 and len(group["params"]) == len(critic_params)
    optimized = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not optimized & {id(p) for p in critic_params}
    assert trainer.updater.kl_placement.value == "reward" and trainer.updater.kl_type.value == "k1"


def test_shared_critic_is_still_available(tmp_path):
    trainer = _trainer(tmp_path, critic={"model": "shared"})
    assert trainer.critic is None and trainer.value_head is not None
    assert isinstance(trainer.updater.reference, Reference)
