"""Seconds per RL update step and peak memory, for a tiny Llama and for SmolLM2-135M.

Why: the trainer's cost outside generation (old/reference log-prob passes, the clipped loss over
micro-batches, backward, AdamW) decides how far a CPU or single-GPU run can go. The workload is fixed
and synthetic so numbers compare across machines: ``--prompts`` x ``--samples`` episodes, each a
``--prompt-len`` prompt and a ``--response-len`` multi-turn response whose middle third is an injected
``<information>`` block (mask 0), random token ids, rewards in [0, 1]. One step = ``PolicyUpdater``'s
prepare (old + reference log-probs, values for GAE) + update (one optimizer step over micro-batches).
Rollout time is measured separately by ``bench_rollout.py``.

Each (model, estimator) runs in its own process so the peak RSS (``resource.getrusage`` maxrss) is its
own; on CUDA the peak allocated GPU memory is reported too. Prints a table and writes
``benchmarks/results/train_step.json``.

    .venv/bin/python benchmarks/bench_train_step.py                      # tiny + smollm2, grpo + gae
    .venv/bin/python benchmarks/bench_train_step.py --models tiny --steps 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

RESULTS = Path(__file__).resolve().parent / "results"


def build_model(name: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from zerosearch.llm.models import resolve_model

    path = resolve_model("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if name == "tiny":
        torch.manual_seed(0)
        config = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                             intermediate_size=128, vocab_size=len(tokenizer), max_position_embeddings=2048)
        model = LlamaForCausalLM(config)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model.to(device), tokenizer


def episodes(args, vocab: int) -> list[SimpleNamespace]:
    import random

    rng = random.Random(0)
    third = args.response_len // 3
    mask = [1] * third + [0] * third + [1] * (args.response_len - 2 * third)
    out = []
    for group in range(args.prompts):
        prompt = [rng.randrange(vocab) for _ in range(args.prompt_len)]
        for _ in range(args.samples):
            response = [rng.randrange(vocab) for _ in range(args.response_len)]
            out.append(SimpleNamespace(prompt_ids=prompt, response_ids=response, response_mask=mask,
                                       sampling_logprobs=[0.0] * len(response), reward=rng.random(), group=group))
    return out


def run_one(args) -> dict:
    """Time ``args.steps`` update steps (after one warm-up) of one model and estimator in this process."""
    import copy

    import torch

    from zerosearch.train.batch import collate_episodes
    from zerosearch.train.config import AlgorithmSettings
    from zerosearch.train.estimators import get_estimator
    from zerosearch.train.forward import Critic, split_causal_lm
    from zerosearch.train.precision import compute_dtype
    from zerosearch.train.update import PolicyUpdater, Reference

    torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = build_model(args.model, device)
    dtype = compute_dtype(args.dtype)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    reference = Reference(copy.deepcopy(model).to(dtype))  # frozen: kept in the compute dtype, as the trainer does
    settings = AlgorithmSettings(estimator=args.estimator, micro_batch_size=args.micro_batch)
    critic = critic_optimizer = None
    if get_estimator(args.estimator).needs_values:  # the trainer's default: a separate critic
        critic = Critic(copy.deepcopy(split_causal_lm(model)[0]), model.config.hidden_size).to(device)
        critic_optimizer = torch.optim.AdamW(critic.parameters(), lr=1e-5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    updater = PolicyUpdater(model, settings, optimizer, reference=reference, critic=critic,
                            critic_optimizer=critic_optimizer, compute_dtype=dtype)
    batch = collate_episodes(episodes(args, len(tokenizer)), tokenizer.pad_token_id).to(device)
    times = []
    for i in range(args.steps + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        prepared, _ = updater.prepare(batch)
        updater.update(prepared)
        if device == "cuda":
            torch.cuda.synchronize()
        if i > 0:  # the first step pays one-off allocations
            times.append(time.perf_counter() - start)
    result = {
        "model": args.model, "estimator": args.estimator, "device": device, "threads": args.threads,
        "dtype": args.dtype, "gradient_checkpointing": args.gradient_checkpointing,
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        "parameters": sum(p.numel() for p in model.parameters()),
        "episodes": batch.size, "tokens_per_episode": args.prompt_len + args.response_len,
        "policy_tokens": int(batch.response_mask.sum()), "micro_batch": args.micro_batch,
        "step_s_median": statistics.median(times), "step_s_all": times,
        "tokens_per_s": float(batch.attention_mask.sum()) / statistics.median(times),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device == "cuda":
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["tiny", "smollm2"], choices=["tiny", "smollm2"])
    p.add_argument("--estimators", nargs="+", default=["grpo", "gae"])
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--prompt-len", type=int, default=160)
    p.add_argument("--response-len", type=int, default=192)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="compute dtype (weights stay float32; bfloat16 runs under autocast)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="recompute layer activations in backward")
    p.add_argument("--malloc-mmap-threshold", type=int, default=None, metavar="BYTES",
                   help="run the children with glibc's MALLOC_MMAP_THRESHOLD_ (e.g. 65536): tensors above it are "
                   "mmapped and returned to the OS when freed, instead of fragmenting the heap (peak RSS)")
    p.add_argument("--output", type=Path, default=RESULTS / "train_step.json")
    p.add_argument("--child", nargs=2, metavar=("MODEL", "ESTIMATOR"), help=argparse.SUPPRESS)
    return p.parse_args()


def child_argv(args: argparse.Namespace, model: str, estimator: str) -> list[str]:
    argv = [sys.executable, __file__, "--child", model, estimator]
    for flag in ("prompts", "samples", "prompt_len", "response_len", "micro_batch", "steps", "threads", "device",
                 "dtype"):
        argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.gradient_checkpointing:
        argv.append("--gradient-checkpointing")
    return argv


def main() -> None:
    args = parse()
    if args.child:
        args.model, args.estimator = args.child
        print(json.dumps(run_one(args)))
        return
    import torch
    import transformers

    rows = []
    for model in args.models:
        for estimator in args.estimators:
            env = dict(os.environ)
            if args.malloc_mmap_threshold is not None:
                env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
            done = subprocess.run(child_argv(args, model, estimator), capture_output=True, text=True, check=False,
                                  env=env)
            if done.returncode != 0:
                raise SystemExit(f"{model}/{estimator} failed:\n{done.stderr[-3000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            gpu = f"  gpu {row['peak_gpu_mib']:.0f} MiB" if "peak_gpu_mib" in row else ""
            shape = f"{row['episodes']} eps x {row['tokens_per_episode']} tok"
            speed = f"{row['step_s_median']:.3f} s/step  {row['tokens_per_s']:.0f} tok/s"
            print(f"{model:8s} {estimator:28s} {row['device']:5s} {shape}:  {speed}"
                  f"  peak RSS {row['peak_rss_mib']:.0f} MiB{gpu}")
    report = {
        "benchmark": "train_step", "command": " ".join(sys.argv), "machine": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "config": {k: v for k, v in vars(args).items() if k not in ("child", "output")}, "results": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
