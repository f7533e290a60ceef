"""Mixed precision (``train/precision.py``): fp32 master weights with bf16 autocast compute apply the
small updates that bf16 weights round away; float16 and bf16 trainable weights are refused clearly.

Runs on CPU (torch's CPU autocast supports bfloat16); ``benchmarks/gpu_check.sh`` repeats the check on CUDA.
"""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
import torch
from train_tiny import QUESTIONS, tiny_model, word_tokenizer

from zerosearch.train.batch import collate_episodes
from zerosearch.train.build import load_policy
from zerosearch.train.config import AlgorithmSettings, ConfigError, parse_config
from zerosearch.train.update import PolicyUpdater

VOCAB = 40


def _batch():
    specs = [([3, 4, 5], [6, 7, 8, 9], [1, 1, 0, 1], 1.0, 0), ([3, 4, 5], [10, 11, 12], [1, 1, 1], 0.0, 0)]
    eps = [NS(prompt_ids=p, response_ids=r, response_mask=m, sampling_logprobs=[0.0] * len(r), reward=w, group=g)
           for p, r, m, w, g in specs]
    return collate_episodes(eps, pad_token_id=0)


def _changed_fraction(model, before) -> float:
    changed = total = 0
    for p, b in zip(model.parameters(), before, strict=True):
        changed += int((p.detach().float() != b.float()).sum())
        total += p.numel()
    return changed / total


def test_bf16_compute_with_fp32_master_weights_applies_tiny_updates():
    """lr 1e-6 AdamW: every fp32 master weight moves; the same steps on bf16 weights barely move any."""
    settings = AlgorithmSettings(estimator="grpo", micro_batch_size=2, kl={"coef": 0.0})
    batch = _batch()
    fractions = {}
    for label, weights_dtype in (("master", torch.float32), ("bf16_weights", torch.bfloat16)):
        model = tiny_model(VOCAB).to(weights_dtype)
        before = [p.detach().clone() for p in model.parameters()]
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.0)
        updater = PolicyUpdater(model, settings, optimizer, compute_dtype=torch.bfloat16)
        for _ in range(3):
            prepared, _ = updater.prepare(batch)
            updater.update(prepared)
        fractions[label] = _changed_fraction(model, before)
        assert all(p.dtype == weights_dtype for p in model.parameters())
    assert fractions["master"] > 0.9, fractions
    assert fractions["bf16_weights"] < 0.5, fractions  # the defect the master weights fix


def test_autocast_really_computes_in_bf16():
    model = tiny_model(VOCAB)
    batch = _batch()
    settings = AlgorithmSettings(estimator="grpo", kl={"coef": 0.0})
    fp32, _ = PolicyUpdater(model, settings, torch.optim.SGD(model.parameters(), lr=0.0)).prepare(batch)
    bf16, _ = PolicyUpdater(model, settings, torch.optim.SGD(model.parameters(), lr=0.0),
                            compute_dtype=torch.bfloat16).prepare(batch)
    mask = batch.response_mask.bool()
    diff = (fp32.old_log_probs - bf16.old_log_probs)[mask].abs()
    assert diff.max() > 0 and diff.max() < 0.1  # bf16 rounding, not a different model


def _config(tmp_path, **model):
    return {
        "output_dir": str(tmp_path / "run"), "model": {"name_or_path": str(tmp_path / "m"), **model},
        "engine": {"kind": "bm25", "corpus": "unused.jsonl"}, "data": {"train": "unused.jsonl"},
    }


def test_float16_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ConfigError, match=r"float16 needs a gradient scaler.*use bfloat16"):
        parse_config(_config(tmp_path, dtype="float16"))


def test_bfloat16_config_loads_float32_master_weights(tmp_path):
    tokenizer = word_tokenizer()
    tiny_model(len(tokenizer)).save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    model, _ = load_policy(parse_config(_config(tmp_path, dtype="bfloat16")))
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_trainer_refuses_bf16_trainable_weights(tmp_path):
    from zerosearch.train.trainer import Trainer

    tokenizer = word_tokenizer()
    config = parse_config(_config(tmp_path, dtype="bfloat16"))
    model = tiny_model(len(tokenizer)).to(torch.bfloat16)
    with pytest.raises(ValueError, match="float32 master weights"):
        Trainer(config, model=model, tokenizer=tokenizer, engine=None, train_examples=QUESTIONS)


def test_trainer_step_in_bf16_rollout_and_update_on_cpu(tmp_path):
    """One real trainer step with ``model.dtype: bfloat16``: the rollout and the update run under autocast
    (CPU here; gpu_check.sh does the same on CUDA) and the fp32 weights move."""
    import copy

    from train_tiny import warm_start, write_world

    from zerosearch.search.factory import BM25EngineConfig, build_engine
    from zerosearch.train.trainer import Trainer

    files = write_world(tmp_path / "world")
    tokenizer = word_tokenizer()
    model = tiny_model(len(tokenizer))
    warm_start(model, tokenizer, steps=20)
    before = copy.deepcopy(model)
    config = parse_config({
        "seed": 0, "total_steps": 1, "output_dir": str(tmp_path / "run"),
        "model": {"name_or_path": "tiny", "dtype": "bfloat16"},
        "algorithm": {"estimator": "grpo", "micro_batch_size": 8}, "optimizer": {"lr": 1e-6},
        "rollout": {"max_turns": 1, "max_new_tokens": 8, "n_samples": 4, "use_chat_template": False,
                    "template_path": str(files["template"])},
        "engine": {"kind": "bm25", "corpus": str(files["corpus"])},
        "data": {"train": str(files["questions"]), "prompts_per_step": 2},
        "checkpoint": {"save_final": False}, "logging": {"tensorboard": False, "progress": False, "plot": False},
    })
    engine = build_engine(BM25EngineConfig(corpus=files["corpus"], index_dir=tmp_path / "index", progress=False))
    trainer = Trainer(config, model=model, tokenizer=tokenizer, engine=engine, train_examples=QUESTIONS)
    metrics = trainer.train()
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert metrics["actor/grad_norm"] > 0 and metrics["rollout/logprob_diff"] < 0.1
    assert _changed_fraction(model, [p.detach() for p in before.parameters()]) > 0.9
