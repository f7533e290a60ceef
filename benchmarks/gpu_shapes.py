"""Model shapes and the batch shape that ``gpu_check.py`` measures, and the random-weight models it builds.

Why random weights: the GPU machine has no network and the device tool carries at most 64 MiB per call, so no
checkpoint (not even SmolLM2's 98 MB file) reaches it. Speed and memory depend on the shapes, not the values,
so each model is built from its published config with ``AutoModelForCausalLM.from_config``.

The tokenizer is a word-level one over the fixture corpus and questions (``toyworld.tokenizer``), padded with
filler words to exactly the model's vocabulary, so every id a random model samples decodes to a word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "wiki18_sample_200.jsonl"
QUESTIONS = ROOT / "tests" / "fixtures" / "qa" / "nq_test_40.jsonl"

# Qwen2.5 base models, from their published config.json files (huggingface.co/Qwen/Qwen2.5-0.5B, -1.5B and -3B,
# files config.json): all three share the 151,936-token vocabulary, tied input/output embeddings, rope theta 1e6,
# RMSNorm eps 1e-6, SiLU MLPs, 32,768 positions and 2 key/value heads (grouped-query attention).
QWEN25_COMMON: dict[str, Any] = {
    "vocab_size": 151936, "tie_word_embeddings": True, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
    "hidden_act": "silu", "max_position_embeddings": 32768, "num_key_value_heads": 2, "attention_dropout": 0.0,
    "use_sliding_window": False, "bos_token_id": 151643, "eos_token_id": 151643,
}
QWEN25_SHAPES: dict[str, dict[str, int]] = {
    "qwen2.5-0.5b": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                     "num_attention_heads": 14, "max_window_layers": 24},
    "qwen2.5-1.5b": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                     "num_attention_heads": 12, "max_window_layers": 21},
    "qwen2.5-3b": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                   "num_attention_heads": 16, "max_window_layers": 36},
}
#: --quick (the CPU dry run): same architecture, tiny sizes, a small padded vocabulary.
TINY_SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "max_window_layers": 2}
TINY_VOCAB = 8192

# The batch a step measures, scaled down from the paper's (64 prompts x 5 samples, <= 500 new tokens a turn, up to
# 5 search turns): 8 prompts x 5 samples keeps the group size 5 and is 1/8 of the paper's batch, so three models x
# two steps fit the 8-minute budget; a random policy never writes a search tag, so each episode is ONE policy
# turn of 500 new tokens (the paper's per-turn limit), ended by that limit. ``LONG`` is an update alone on the
# longest response the verl configs allow (max_response_length 4096), for the memory a full 5-turn episode needs.
BATCH = {"prompts": 8, "samples": 5, "max_new_tokens": 500, "max_turns": 5, "micro_batch_size": 8}
QUICK_BATCH = {"prompts": 2, "samples": 2, "max_new_tokens": 12, "max_turns": 1, "micro_batch_size": 4}
LONG = {"episodes": 8, "prompt_tokens": 512, "response_tokens": 3584, "micro_batch_size": 2}
QUICK_LONG = {"episodes": 4, "prompt_tokens": 32, "response_tokens": 48, "micro_batch_size": 2}


def model_config(name: str, quick: bool) -> Any:
    """The transformers config of ``name`` (a key of :data:`QWEN25_SHAPES`), or its tiny stand-in."""
    from transformers import AutoConfig

    shape = TINY_SHAPE if quick else QWEN25_SHAPES[name]
    values = {**QWEN25_COMMON, **shape}
    if quick:  # the published bos/eos ids lie outside the tiny vocabulary
        values.update(vocab_size=TINY_VOCAB, bos_token_id=None, eos_token_id=None)
    return AutoConfig.for_model("qwen2", **values)


def random_model(name: str, device: str, quick: bool, seed: int = 0) -> Any:
    """A float32 (master-weight) model of ``name``'s shape with random weights, built on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_config(name, quick), dtype=torch.float32)
    return model


def padded_tokenizer(vocab_size: int) -> Any:
    """A word-level tokenizer over the fixture corpus, questions and instruction, with exactly ``vocab_size``
    ids (filler words ``zsfill<i>`` after the real ones)."""
    import json

    from zerosearch.protocol import load_template
    from zerosearch.toyworld.tokenizer import build_tokenizer

    texts = [json.loads(line)["contents"] for line in CORPUS.read_text("utf-8").splitlines() if line.strip()]
    texts += [json.loads(line)["question"] for line in QUESTIONS.read_text("utf-8").splitlines() if line.strip()]
    texts.append(load_template())
    base = len(build_tokenizer(texts))
    if base > vocab_size:
        raise ValueError(f"the fixture vocabulary has {base} words, more than the model's {vocab_size}")
    tokenizer = build_tokenizer([*texts, " ".join(f"zsfill{i}" for i in range(vocab_size - base))])
    if len(tokenizer) != vocab_size:
        raise RuntimeError(f"padded tokenizer has {len(tokenizer)} ids, expected {vocab_size}")
    return tokenizer


def parameters(model: Any) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())
