"""The TRL SFT wrapper (``zerosearch.sft``) on a tiny Llama built from a config: completion-only labels
for text pairs and for pre-tokenized rows with holes in the mask, loss going down, the saved layout
loading through a real backend, LoRA merged into plain weights, seeding, and bad input refused."""

from __future__ import annotations

import json

import pytest

from zerosearch.llm.base import SamplingParams
from zerosearch.sft import LoRASettings, SFTDataError, SFTRunConfig, rows_from_pairs, run_sft
from zerosearch.sft.data import to_rows
from zerosearch.sft.trainer import RECORD_NAME, make_trainer
from zerosearch.toyworld.model import TinyModelConfig, build_tiny_llama
from zerosearch.toyworld.tokenizer import build_spaced_tokenizer

PAIRS = [{"prompt": f"Search query: name{i}\nResults:\nDoc 1:", "completion": f" name{i} lives in city{i % 3}."}
         for i in range(12)]
SHAPE = TinyModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)


@pytest.fixture
def tokenizer():
    return build_spaced_tokenizer([p["prompt"] + p["completion"] for p in PAIRS])


def _config(tmp_path, name="out", **kw):
    base = {"output_dir": tmp_path / name, "max_steps": 120, "batch_size": 6, "learning_rate": 3e-3,
            "logging_steps": 10, "use_cpu": True}
    return SFTRunConfig(**(base | kw))


def test_pairs_train_on_the_completion_and_save_a_loadable_model(tmp_path, tokenizer):
    from zerosearch.llm.transformers_backend import TransformersGenerator

    result = run_sft(_config(tmp_path), PAIRS, model=build_tiny_llama(tokenizer, SHAPE), tokenizer=tokenizer,
                     log=lambda _: None)
    assert result.loss_after < 0.6 * result.loss_before, (result.loss_before, result.loss_after)
    assert [c["step"] for c in result.curve] == list(range(10, 130, 10))
    record = json.loads((tmp_path / "out" / RECORD_NAME).read_text())
    assert record["config"]["max_steps"] == 120 and record["seed"] == 0 and record["rows"] == len(PAIRS)
    assert {"trl", "transformers", "torch", "peft"} <= set(record["versions"])
    generator = TransformersGenerator.from_pretrained(str(tmp_path / "out"), device="cpu", dtype="float32")
    out = generator.generate([PAIRS[4]["prompt"]], SamplingParams(max_new_tokens=8, temperature=0.0))
    assert "name4" in out[0].text  # learned from the completion, read back through a real backend


def test_prompt_is_tokenized_alone_and_only_completion_and_eos_are_labelled(tmp_path, tokenizer):
    rows = rows_from_pairs(tokenizer, PAIRS[:2])
    prompt_ids = tokenizer(PAIRS[0]["prompt"])["input_ids"]
    assert rows[0]["input_ids"][: len(prompt_ids)] == prompt_ids
    assert rows[0]["input_ids"][-1] == tokenizer.eos_token_id
    assert rows[0]["completion_mask"] == [0] * len(prompt_ids) + [1] * (len(rows[0]["input_ids"]) - len(prompt_ids))
    trainer = make_trainer(_config(tmp_path), rows, build_tiny_llama(tokenizer, SHAPE), tokenizer, str(tmp_path))
    for row, labels in zip(rows, trainer.train_dataset["labels"], strict=True):
        assert labels == [t if m else -100 for t, m in zip(row["input_ids"], row["completion_mask"], strict=True)]


def test_pre_tokenized_rows_keep_holes_in_the_completion_mask(tmp_path, tokenizer):
    """A policy warm-start masks injected blocks *inside* the completion; TRL must keep those holes."""
    ids = tokenizer(PAIRS[0]["prompt"] + PAIRS[0]["completion"])["input_ids"]
    mask = [0, 0, 1, 1, 0, 0, 1, 0, 1] + [1] * (len(ids) - 9)
    trainer = make_trainer(_config(tmp_path), [{"input_ids": ids, "completion_mask": mask}],
                           build_tiny_llama(tokenizer, SHAPE), tokenizer, str(tmp_path))
    assert trainer.train_dataset["labels"][0] == [t if m else -100 for t, m in zip(ids, mask, strict=True)]


def test_lora_is_merged_into_plain_weights(tmp_path, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    base = build_tiny_llama(tokenizer, SHAPE)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    config = _config(tmp_path, lora=LoRASettings(r=4, alpha=8), max_steps=10, learning_rate=1e-2)
    run_sft(config, PAIRS, model=base, tokenizer=tokenizer, log=lambda _: None)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert not any("lora" in k for k in loaded.state_dict())
    changed = [k for k, v in loaded.state_dict().items() if k in before and not torch.equal(v, before[k])]
    assert any("q_proj" in k for k in changed), changed


def test_lora_on_top_layers_only_leaves_the_lower_layers_alone(tmp_path, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    base = build_tiny_llama(tokenizer, SHAPE)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    config = _config(tmp_path, lora=LoRASettings(r=4, alpha=8, layers=[1]), max_steps=10, learning_rate=1e-2)
    run_sft(config, PAIRS, model=base, tokenizer=tokenizer, log=lambda _: None)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    changed = {k for k, v in loaded.state_dict().items() if k in before and not torch.equal(v, before[k])}
    assert changed and all(k.startswith("model.layers.1.") for k in changed), changed


def test_same_seed_same_weights(tmp_path, tokenizer):
    for name in ("a", "b"):
        run_sft(_config(tmp_path, name, max_steps=5), PAIRS, model=build_tiny_llama(tokenizer, SHAPE),
                tokenizer=tokenizer, log=lambda _: None)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


@pytest.mark.parametrize(("data", "message"), [
    ([], "empty"),
    ([{"text": "x"}], "expected 'prompt' \\+ 'completion'"),
    ([{"input_ids": [1, 2, 3], "completion_mask": [0, 1]}], "completion_mask 2"),
    ([{"input_ids": [1, 2], "completion_mask": [0, 0]}], "at least one 1"),
    ([{"input_ids": [1, 99999], "completion_mask": [0, 1]}], "outside the model's vocabulary"),
])
def test_bad_data_is_refused_with_the_reason(tokenizer, data, message):
    with pytest.raises(SFTDataError, match=message):
        to_rows(data, tokenizer)


def test_bad_config_and_busy_output_are_refused(tmp_path, tokenizer):
    with pytest.raises(ValueError, match="warmup_steps"):
        _config(tmp_path, warmup_steps=500)
    with pytest.raises(ValueError, match="extra"):
        SFTRunConfig(output_dir=tmp_path, steps=3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        run_sft(_config(tmp_path), PAIRS, model=build_tiny_llama(tokenizer, SHAPE), tokenizer=tokenizer)


def test_bf16_mixed_precision_keeps_float32_weights_and_learns(tmp_path, tokenizer):
    """``mixed_precision: bf16`` runs TRL with bf16 autocast (``bf16=True``) on float32 weights; it still learns
    and saves float32 weights. Gradient checkpointing follows the config (TRL's default is on)."""
    import torch

    from zerosearch.sft.trainer import _trl_args

    config = _config(tmp_path, mixed_precision="bf16", gradient_checkpointing=False, max_steps=60)
    args = _trl_args(config, str(tmp_path / "scratch"))
    assert args.bf16 and not args.fp16 and not args.gradient_checkpointing and args.use_cpu
    assert _trl_args(_config(tmp_path), str(tmp_path / "scratch")).gradient_checkpointing
    result = run_sft(config, PAIRS, model=build_tiny_llama(tokenizer, SHAPE), tokenizer=tokenizer, log=lambda _: None)
    assert result.loss_after < 0.8 * result.loss_before, (result.loss_before, result.loss_after)
    assert {p.dtype for p in result.model.parameters()} == {torch.float32}


def test_mixed_precision_is_checked(tmp_path):
    with pytest.raises(ValueError, match="mixed_precision must be 'no' or 'bf16'"):
        SFTRunConfig(output_dir=tmp_path, mixed_precision="fp8")
    with pytest.raises(ValueError, match="keeps float32 weights; set dtype: float32"):
        SFTRunConfig(output_dir=tmp_path, mixed_precision="bf16", dtype="bfloat16")


def test_length_buckets_batch_rows_of_similar_length_in_a_shuffled_order(tmp_path, tokenizer):
    """``length_buckets``: every batch holds rows of similar length, an epoch covers every row once, and the run
    trains and is seeded like the default order."""
    from zerosearch.sft.data import SFTDataError, length_bucketed_order

    lengths = [5 + (i % 4) * 40 for i in range(64)]  # four length classes, interleaved
    order = length_bucketed_order(lengths, batch_size=8, batches=16, seed=1, window=8)
    batches = [order[i : i + 8] for i in range(0, len(order), 8)]
    assert all(len({lengths[i] for i in b}) == 1 for b in batches)  # one length class per batch
    assert sorted(order[:64]) == list(range(64)) and sorted(order[64:]) == list(range(64))
    assert order[:64] != order[64:]  # each epoch is reshuffled
    with pytest.raises(SFTDataError, match="cannot fill one batch"):
        length_bucketed_order([3, 4], batch_size=8, batches=1)
    with pytest.raises(ValueError, match="at most one"):
        _config(tmp_path, group_by_length=True, length_buckets=True)
    for name in ("a", "b"):
        result = run_sft(_config(tmp_path, name, max_steps=20, length_buckets=True), PAIRS,
                         model=build_tiny_llama(tokenizer, SHAPE), tokenizer=tokenizer, log=lambda _: None)
        assert result.steps == 20 and result.loss_after < result.loss_before
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
