"""Every shipped launch config composes with verl 0.9.1's own Hydra configs and passes verl's own checks.

For each model x algorithm x cluster: Hydra composes ``configs/verl/zerosearch.yaml`` on top of verl's
``ppo_trainer`` (found through the config's ``pkg://verl.trainer.config`` search path), the result resolves,
passes ``verl.utils.config.validate_config`` (batch divisibility, micro-batch settings) as ``main_ppo`` runs
it, its worker sections build verl's config dataclasses, the reward function loads through verl's
``get_custom_reward_fn``, the agent-loop file registers ``zerosearch_agent``, and the ``zerosearch`` section
validates. No GPU is involved; what would need one is listed in docs/verl.md.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

pytest.importorskip("verl")  # collected only where verl is installed (see conftest.py)
from verl.trainer.ppo.reward import get_custom_reward_fn
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import omega_conf_to_dataclass, validate_config

from zerosearch.integrations.verl.settings import ZeroSearchVerlSettings

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "verl"
MODELS = sorted(p.stem for p in (CONFIG_DIR / "zs_model").glob("*.yaml"))
ALGOS = sorted(p.stem for p in (CONFIG_DIR / "zs_algo").glob("*.yaml"))
CLUSTERS = sorted(p.stem for p in (CONFIG_DIR / "zs_cluster").glob("*.yaml"))
REQUIRED = ["data.train_files=train.parquet", "data.val_files=test.parquet",
            "zerosearch.service_url=http://127.0.0.1:8000/retrieve"]


@pytest.fixture(scope="module")
def local_model_dir(tmp_path_factory, smollm2_path) -> str:
    """A config + tokenizer on disk, standing in for the hub model when verl builds the critic's model config
    (HFModelConfig reads them; there is no network here)."""
    from transformers import AutoTokenizer, LlamaConfig

    path = tmp_path_factory.mktemp("critic-model")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                vocab_size=len(tokenizer), architectures=["LlamaForCausalLM"]).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def compose_launch(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="zerosearch", overrides=[*REQUIRED, *overrides])


def test_the_config_groups_are_all_there():
    assert MODELS == ["llama3.2-3b", "llama3.2-3b-instruct", "qwen2.5-3b", "qwen2.5-3b-instruct", "qwen2.5-7b",
                      "qwen2.5-7b-instruct"]
    assert ALGOS == ["grpo", "ppo", "reinforce", "reinforce_pp"]
    assert CLUSTERS == ["1node_8gpu", "2node_8gpu"]


@pytest.mark.parametrize(("model", "algo", "cluster"), list(itertools.product(MODELS, ALGOS, CLUSTERS)))
def test_launch_config_composes_and_passes_verls_checks(model, algo, cluster, local_model_dir):
    cfg = compose_launch(f"zs_model={model}", f"zs_algo={algo}", f"zs_cluster={cluster}")
    OmegaConf.resolve(cfg)  # main_ppo resolves before use; an unknown interpolation fails here
    if algo == "ppo":
        assert need_critic(cfg) and cfg.algorithm.adv_estimator == "gae"
        assert cfg.critic.model.path == cfg.actor_rollout_ref.model.path
        cfg.critic.model.path = local_model_dir  # verl's checks build the critic's model config from its files
    else:
        assert not need_critic(cfg)
        assert cfg.actor_rollout_ref.actor.use_kl_loss and cfg.actor_rollout_ref.actor.kl_loss_type == "low_var_kl"
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    omega_conf_to_dataclass(cfg.algorithm)
    # the paper's recipe, whatever the combination
    assert cfg.actor_rollout_ref.actor.optim.lr == 1e-6
    assert (cfg.data.train_batch_size, cfg.actor_rollout_ref.rollout.n) == (64, 5)
    assert cfg.trainer.total_training_steps == 203
    assert cfg.actor_rollout_ref.rollout.agent.default_agent_loop == "zerosearch_agent"
    assert cfg.trainer.nnodes == (2 if cluster.startswith("2node") else 1)
    settings = ZeroSearchVerlSettings.from_trainer_config(cfg)
    assert (settings.top_k_documents, settings.max_new_tokens, settings.max_turns) == (5, 500, 5)
    assert settings.total_steps == 203


def test_reward_function_loads_through_verl_with_its_kwargs():
    cfg = compose_launch("reward.custom_reward_function.reward_kwargs.metric=em")
    score = get_custom_reward_fn(cfg)
    result = score(data_source="nq", solution_str="<answer> the Paris </answer>",
                   ground_truth={"target": ["Paris"]}, extra_info={})
    assert result["score"] == 1.0 and result["em"] == 1.0
    result = score(data_source="nq", solution_str="<answer> Paris France </answer>",
                   ground_truth={"target": ["Paris"]}, extra_info={})
    assert result["score"] == 0.0 and result["f1"] == pytest.approx(2 / 3)  # em picked, f1 reported


def test_agent_loop_file_registers_zerosearch_agent():
    import hydra

    cfg = compose_launch()
    root = Path(__file__).resolve().parents[2]  # the path is relative to the repository root (run from there)
    entries = OmegaConf.load(root / cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path)
    [entry] = [e for e in entries if e.name == "zerosearch_agent"]
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry

    cls = hydra.utils.get_class(entry._target_)
    assert _agent_loop_registry["zerosearch_agent"] == {"_target_": entry._target_}
    assert cls.__name__ == "ZeroSearchAgentLoop"


def test_missing_service_url_is_a_clear_error():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="zerosearch", overrides=REQUIRED[:2])
    from omegaconf.errors import MissingMandatoryValue

    with pytest.raises(MissingMandatoryValue, match="service_url"):
        ZeroSearchVerlSettings.from_trainer_config(cfg)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="zerosearch", overrides=[*REQUIRED[:2], "zerosearch.service_url=host:8000"])
    with pytest.raises(ValueError, match="service_url must be the http"):
        ZeroSearchVerlSettings.from_trainer_config(cfg)
