"""The training config: shipped YAMLs load, unknown keys and bad values are errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from zerosearch.train.config import ConfigError, KLPlacement, load_config, parse_config
from zerosearch.train.losses import KLType

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
TRAIN_CONFIGS = [p for p in CONFIGS if "algorithm" in (yaml.safe_load(p.read_text()) or {})]


def _minimal(**extra) -> dict:
    data = {
        "model": {"name_or_path": "smollm2-135m-instruct"},
        "engine": {"kind": "bm25", "corpus": "corpus.jsonl"},
        "data": {"train": "questions.jsonl"},
    }
    data.update(extra)
    return data


def test_every_shipped_training_config_loads():
    assert len(TRAIN_CONFIGS) >= 4, "expected one tiny config per algorithm in configs/"
    estimators = {load_config(p).algorithm.estimator for p in TRAIN_CONFIGS}
    assert estimators >= {"grpo", "gae", "reinforce", "reinforce_plus_plus", "reinforce_plus_plus_baseline"}


def test_unknown_key_is_an_error_naming_its_dotted_path(tmp_path):
    data = _minimal(algorithm={"policy_loss": {"clip_ratoi": 0.2}})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"algorithm\.policy_loss\.clip_ratoi: Extra inputs are not permitted"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"rollout\.max_turnz"):
        parse_config(_minimal(rollout={"max_turnz": 3}))
    with pytest.raises(ConfigError, match=r"engine\.bm25\.corpuss"):
        parse_config(_minimal(engine={"kind": "bm25", "corpus": "c", "corpuss": "x"}))


def test_bad_values_name_the_key():
    with pytest.raises(ConfigError, match=r"algorithm\.estimator"):
        parse_config(_minimal(algorithm={"estimator": "ppo2"}))
    with pytest.raises(ConfigError, match=r"optimizer\.lr"):
        parse_config(_minimal(optimizer={"lr": -1}))
    with pytest.raises(ConfigError, match="mini_batch_size"):
        parse_config(_minimal(algorithm={"mini_batch_size": 3}, data={"train": "q", "prompts_per_step": 2}))
    with pytest.raises(ConfigError, match=r"data\.val"):
        parse_config(_minimal(validation={"every": 5}))
    with pytest.raises(ConfigError, match="top level"):
        parse_config(["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/train.yaml")


def test_curriculum_length_follows_total_steps_unless_set():
    assert parse_config(_minimal(total_steps=50)).curriculum.total_steps == 50
    assert parse_config(_minimal(total_steps=50, curriculum={"total_steps": 10})).curriculum.total_steps == 10


def test_kl_placement_defaults_come_from_the_estimator():
    grpo = parse_config(_minimal()).algorithm
    assert grpo.kl.resolved_placement(grpo.estimator) is KLPlacement.LOSS
    assert grpo.kl.resolved_type(grpo.estimator) is KLType.K3
    rpp = parse_config(_minimal(algorithm={"estimator": "reinforce_plus_plus"})).algorithm
    assert rpp.kl.resolved_placement(rpp.estimator) is KLPlacement.REWARD
    assert rpp.kl.resolved_type(rpp.estimator) is KLType.K1
    off = parse_config(_minimal(algorithm={"kl": {"coef": 0.0}})).algorithm
    assert off.kl.resolved_placement(off.estimator) is KLPlacement.NONE


def test_overrides_use_dotted_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_minimal()))
    config = load_config(path, {"total_steps": 7, "optimizer.lr": 0.5, "rollout.n_samples": 3})
    assert (config.total_steps, config.optimizer.lr, config.rollout.n_samples) == (7, 0.5, 3)


def test_paper_config_is_the_reference_reinforce_recipe():
    """configs/zerosearch_reinforce_paper.yaml: plain REINFORCE, warm-up over 95% of training, entropy
    0.001, low-variance KL 0.001 as a loss term, bf16 compute on fp32 master weights."""
    config = load_config(ROOT / "configs" / "zerosearch_reinforce_paper.yaml")
    algo = config.algorithm
    assert algo.estimator == "reinforce" and algo.entropy_coef == 0.001
    assert algo.kl.resolved_placement(algo.estimator) is KLPlacement.LOSS
    assert algo.kl.resolved_type(algo.estimator) is KLType.K3 and algo.kl.coef == 0.001
    assert config.optimizer.warmup_ratio == 0.95 and config.optimizer.lr == 1e-6
    assert config.model.dtype == "bfloat16"
    from zerosearch.train.trainer import lr_lambda

    factor = lr_lambda(config.optimizer, config.total_steps)
    warmup = int(0.95 * config.total_steps)
    assert factor(warmup - 1) < 1.0 and factor(warmup) == 1.0


def test_paper_config_points_at_a_released_simulator_with_two_overrides():
    """docs/gpu.md: the same recipe against a released ZeroSearch simulator served over a chat API."""
    config = load_config(ROOT / "configs" / "zerosearch_reinforce_paper.yaml",
                         {"engine.mode": "finetuned", "engine.prompt_style": "reference",
                          "engine.generator.model": "Simulation_LLM_google_14B"})
    engine = config.engine
    assert (engine.mode, engine.prompt_style, engine.max_new_tokens) == ("finetuned", "reference", 600)
    assert engine.generator.system_prompt == ""  # the reference's empty system message
    assert load_config(ROOT / "configs" / "zerosearch_reinforce_paper.yaml").engine.prompt_style == "ours"
    with pytest.raises(ConfigError, match="validation never shows the engine the gold answers"):
        load_config(ROOT / "configs" / "zerosearch_reinforce_paper.yaml",
                    {"engine.mode": "finetuned", "engine.prompt_style": "reference", "validation.engine": None})


def test_sum_norm_needs_a_constant_scale():
    """verl divides seq-mean-token-sum-norm by a fixed length; a per-batch padded width changed every step."""
    mode = {"policy_loss": {"loss_agg_mode": "seq-mean-token-sum-norm"}}
    with pytest.raises(ConfigError, match=r"loss_scale_factor or rollout\.max_response_tokens"):
        parse_config(_minimal(algorithm=mode))
    assert parse_config(_minimal(algorithm=mode, rollout={"max_response_tokens": 640})).loss_scale == 640.0
    scaled = {"policy_loss": {**mode["policy_loss"], "loss_scale_factor": 100.0}}
    assert parse_config(_minimal(algorithm=scaled, rollout={"max_response_tokens": 640})).loss_scale == 100.0


def test_gae_defaults_to_a_separate_critic_and_k1_kl_in_the_reward():
    algo = parse_config(_minimal(algorithm={"estimator": "gae"})).algorithm
    assert algo.critic.model == "separate" and algo.critic.lr == 1e-5
    assert algo.kl.resolved_placement(algo.estimator) is KLPlacement.REWARD
    assert algo.kl.resolved_type(algo.estimator) is KLType.K1
