"""``zs_algo=reinforce``: the reference's REINFORCE recipe composed with verl 0.9.1's own Hydra, and the plain
REINFORCE estimator registered through verl's ``register_adv_est``, run by verl's own ``compute_advantage`` on
a verl ``DataProto`` batch.

The reference values checked here come from github.com/Alibaba-NLP/ZeroSearch at
2d4cdca033ee2c11b1fcfc7fc448b902d7cf8bf5: ``train_reinforce.sh`` (adv_estimator=reinforce, lr_warmup_steps_ratio
0.95, use_kl_loss, kl_loss_coef 0.001, kl_loss_type low_var_kl) and its verl fork's ``ppo_trainer.yaml``
(actor.entropy_coeff 0.001), whose ``compute_reinforce_outcome_advantage`` is the summed reward times the mask.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

pytest.importorskip("verl")  # collected only where verl is installed (see conftest.py)
from verl import DataProto
from verl.trainer.ppo.ray_trainer import compute_advantage
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import omega_conf_to_dataclass, validate_config
from verl.utils.import_utils import import_external_libs

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "configs" / "verl"
REQUIRED = ["data.train_files=train.parquet", "data.val_files=test.parquet",
            "zerosearch.service_url=http://127.0.0.1:8000/retrieve"]
MODULE = "zerosearch.integrations.verl.estimators"


def compose_algo(algo: str | None):
    overrides = [*REQUIRED, *([f"zs_algo={algo}"] if algo else [])]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="zerosearch", overrides=overrides)
    OmegaConf.resolve(cfg)
    return cfg


def _recipe(cfg) -> tuple:
    actor = cfg.actor_rollout_ref.actor
    return (cfg.algorithm.adv_estimator, actor.optim.lr_warmup_steps_ratio, actor.entropy_coeff)


def test_reinforce_is_the_default_and_has_the_references_values():
    cfg = compose_algo(None)
    assert cfg == compose_algo("reinforce")
    actor = cfg.actor_rollout_ref.actor
    assert _recipe(cfg) == ("reinforce", 0.95, 0.001)
    assert actor.use_kl_loss and (actor.kl_loss_coef, actor.kl_loss_type) == (0.001, "low_var_kl")
    assert not cfg.algorithm.use_kl_in_reward
    assert actor.optim.lr == 1e-6 and (cfg.data.train_batch_size, cfg.actor_rollout_ref.rollout.n) == (64, 5)
    assert cfg.ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES == MODULE
    assert not need_critic(cfg) and need_reference_policy(cfg)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    assert omega_conf_to_dataclass(cfg.algorithm).adv_estimator == "reinforce"
    optim = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor).optim
    assert optim.lr_warmup_steps_ratio == 0.95 and optim.lr_warmup_steps == -1  # -1: the ratio decides


def test_reinforce_pp_stays_its_own_choice():
    """The three values the issue named (and the import hook) are what set the two recipes apart."""
    reinforce, pp = compose_algo("reinforce"), compose_algo("reinforce_pp")
    assert _recipe(pp) == ("reinforce_plus_plus", 0.0, 0.0)
    plain = []
    for cfg in (reinforce, pp):
        tree = OmegaConf.to_container(cfg)
        tree["algorithm"]["adv_estimator"] = None
        tree["actor_rollout_ref"]["actor"]["optim"]["lr_warmup_steps_ratio"] = None
        tree["actor_rollout_ref"]["actor"]["entropy_coeff"] = None
        tree["ray_kwargs"]["ray_init"]["runtime_env"].pop("env_vars", None)
        plain.append(tree)
    assert "env_vars" not in OmegaConf.to_container(pp)["ray_kwargs"]["ray_init"]["runtime_env"]
    assert plain[0] == plain[1]


def _verl_batch() -> DataProto:
    """Four episodes of two prompts (verl's uid groups), rewards on each response's last token, an injected
    block (mask 0) in the middle of the first."""
    rewards = torch.zeros(4, 6)
    rewards[0, 5], rewards[1, 3], rewards[2, 4], rewards[3, 5] = 1.0, 0.25, 0.0, 0.5
    mask = torch.tensor([[1, 1, 0, 0, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    responses = torch.randint(0, 100, (4, 6))
    return DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask, "responses": responses,
                 "attention_mask": torch.ones(4, 9, dtype=torch.long)},
        non_tensors={"uid": np.array(["a", "a", "b", "b"], dtype=object)},
    )


def test_registered_estimator_runs_in_verls_compute_advantage():
    cfg = compose_algo("reinforce")
    import_external_libs(cfg.ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES.split(","))
    data = compute_advantage(_verl_batch(), adv_estimator=cfg.algorithm.adv_estimator,
                             gamma=cfg.algorithm.gamma, lam=cfg.algorithm.lam,
                             config=omega_conf_to_dataclass(cfg.algorithm))
    mask = data.batch["response_mask"].float()
    expected = torch.tensor([1.0, 0.25, 0.0, 0.5]).unsqueeze(-1) * mask
    torch.testing.assert_close(data.batch["advantages"], expected)
    torch.testing.assert_close(data.batch["returns"], expected)
    assert data.batch["advantages"][0, 2:4].abs().sum() == 0  # the injected block carries no advantage
    # REINFORCE++ on the same batch whitens the returns: a different estimator, not a renamed one
    pp = compute_advantage(_verl_batch(), adv_estimator="reinforce_plus_plus",
                           config=omega_conf_to_dataclass(compose_algo("reinforce_pp").algorithm))
    assert not torch.allclose(pp.batch["advantages"], expected)


def test_verls_own_import_hook_registers_it_in_a_fresh_process():
    """What a Ray TaskRunner does: the runtime env sets VERL_USE_EXTERNAL_MODULES, ``import verl`` imports it."""
    env = {**os.environ, "VERL_USE_EXTERNAL_MODULES": MODULE,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    code = ("import verl\nfrom verl.trainer.ppo.core_algos import get_adv_estimator_fn\n"
            "print(get_adv_estimator_fn('reinforce').__module__)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == MODULE
    env.pop("VERL_USE_EXTERNAL_MODULES")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode != 0 and "Unknown advantage estimator" in out.stderr


def test_estimator_docstring_example():
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(MODULE))
    assert result.attempted > 0 and result.failed == 0
