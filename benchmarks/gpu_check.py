"""What one GPU must confirm before a zerosearch run, and the figures to plan one (run by ``gpu_check.sh``).

On one CUDA GPU with no network (models are built from configs with random weights; see ``gpu_shapes.py``):

1. ``bf16_master``: 3 AdamW steps at lr 1e-6 under bf16 autocast change > 90% of a Qwen2.5-0.5B-shaped model's
   fp32 master weights, while the same steps on bf16 weights change fewer (the defect fixed in issue 12).
2. ``trainer``: two real :class:`zerosearch.train.Trainer` steps on the GPU (0.5B shape, ``model.dtype:
   bfloat16``, multi-turn rollout against BM25 over the wiki-18 fixture corpus, REINFORCE update with the
   reference's entropy bonus 0.001, checkpoint): weights changed, metrics finite, checkpoint written.
3. ``plan``: for Qwen2.5-0.5B, -1.5B and -3B shapes, two Trainer steps (one warm-up, one measured) at the
   batch shape of ``gpu_shapes.BATCH`` (8 prompts x 5 samples, one 500-token turn each; the paper's recipe
   otherwise: REINFORCE, low-variance KL 0.001, gradient checkpointing): rollout tokens per second, seconds
   per training step (rollout + update), and peak GPU memory; plus one update alone on 8 x 4,096 tokens
   (``gpu_shapes.LONG``) for the memory of the longest response the verl configs allow.

Prints a table and writes ``gpu_check.json`` (figures, versions, command, and which distributions the run
imported: ``tests/test_gpu_check.py`` checks them against the GPU image's package list and the wheel list).
``--device cpu --quick`` runs the same code with tiny shapes (the CPU dry run of the test suite). Exits
non-zero if a check fails.

    bash benchmarks/gpu_check.sh             # on the GPU machine (installs .whl/ first)
    bash benchmarks/gpu_check.sh --dry-run   # anywhere: CPU, tiny shapes
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gpu_shapes as shapes

RESULTS = shapes.ROOT / "benchmarks" / "results"


# ---------------------------------------------------------------- helpers


def synthetic_batch(vocab: int, episodes: int, prompt_len: int, response_len: int):
    """Random ids, the middle third of each response an injected block (mask 0), rewards in [0, 1]."""
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


def cuda_sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None


def trainer_config(tmp: str, device: str, batch: dict, steps: int, save: bool) -> Any:
    """The paper's recipe on one machine (configs/zerosearch_reinforce_paper.yaml), at ``batch``'s shape."""
    from zerosearch.train.config import parse_config

    return parse_config({
        "seed": 0, "total_steps": steps, "output_dir": f"{tmp}/run",
        "model": {"name_or_path": "random-qwen2.5-shape", "dtype": "bfloat16", "device": device,
                  "gradient_checkpointing": True},
        "algorithm": {"estimator": "reinforce", "entropy_coef": 0.001,
                      "kl": {"placement": "loss", "coef": 0.001, "type": "k3"},
                      "micro_batch_size": batch["micro_batch_size"]},
        "optimizer": {"lr": 1e-6},
        "rollout": {"max_turns": batch["max_turns"], "max_new_tokens": batch["max_new_tokens"],
                    "n_samples": batch["samples"], "top_k_documents": 5, "max_information_tokens": 500,
                    "temperature": 1.0},
        "engine": {"kind": "bm25", "corpus": str(shapes.CORPUS), "index_dir": f"{tmp}/index", "progress": False},
        "data": {"train": str(shapes.QUESTIONS), "prompts_per_step": batch["prompts"]},
        "checkpoint": {"save_final": save},
        "logging": {"tensorboard": False, "progress": False, "plot": False},
    })


def build_trainer(config: Any, model: Any, tokenizer: Any) -> Any:
    from zerosearch.search.factory import build_engine
    from zerosearch.train.data import load_examples
    from zerosearch.train.trainer import Trainer

    return Trainer(config, model=model, tokenizer=tokenizer, engine=build_engine(config.engine),
                   train_examples=load_examples(str(shapes.QUESTIONS), limit=40, seed=0))


# ---------------------------------------------------------------- checks


def check_bf16_master(device: str, quick: bool) -> dict:
    import torch

    model = shapes.random_model("qwen2.5-0.5b", device, quick)
    batch = synthetic_batch(model.config.vocab_size, 4, 32 if quick else 160, 24 if quick else 192).to(device)
    fractions = {}
    for label, weights in (("fp32_master", torch.float32), ("bf16_weights", torch.bfloat16)):
        policy = copy.deepcopy(model).to(weights)
        before = [p.detach().clone() for p in policy.parameters()]
        updater = updater_for(policy, torch.bfloat16, micro=4)
        for _ in range(3):
            prepared, _ = updater.prepare(batch)
            updater.update(prepared)
        changed = sum(int((p.detach() != b).sum()) for p, b in zip(policy.parameters(), before, strict=True))
        fractions[label] = changed / shapes.parameters(policy)
        del policy, updater, before
    ok = fractions["fp32_master"] > 0.9 and fractions["bf16_weights"] < fractions["fp32_master"]
    return {"ok": ok, "changed_fraction": fractions}


def check_trainer(device: str, quick: bool) -> dict:
    import torch

    model = shapes.random_model("qwen2.5-0.5b", device, quick)
    tokenizer = shapes.padded_tokenizer(model.config.vocab_size)
    before = [p.detach().clone() for p in model.parameters()]
    batch = {"prompts": 2, "samples": 2, "max_new_tokens": 16 if quick else 64, "max_turns": 1, "micro_batch_size": 4}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(trainer_config(tmp, device, batch, steps=2, save=True), model, tokenizer)
        start = time.perf_counter()
        metrics = trainer.train()
        seconds = time.perf_counter() - start
        saved = any((Path(tmp) / "run" / "checkpoints").glob("step-*"))
    changed = any(not torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before, strict=True))
    finite = all(math.isfinite(v) for v in metrics.values())
    on_device = next(model.parameters()).device.type == torch.device(device).type
    return {"ok": changed and finite and saved and on_device, "seconds": seconds, "weights_changed": changed,
            "checkpoint": saved, "metrics": {k: v for k, v in metrics.items() if k.startswith(("rollout/", "actor/"))}}


def measure_model(name: str, device: str, quick: bool) -> dict:
    """Two Trainer steps at the plan's batch shape (the second one timed) and one long update alone."""
    import torch

    batch = shapes.QUICK_BATCH if quick else shapes.BATCH
    long = shapes.QUICK_LONG if quick else shapes.LONG
    model = shapes.random_model(name, device, quick)
    tokenizer = shapes.padded_tokenizer(model.config.vocab_size)
    row: dict[str, Any] = {"parameters": shapes.parameters(model)}
    reset_peak(device)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(trainer_config(tmp, device, batch, steps=2, save=False), model, tokenizer)
        for _ in range(2):  # the first step warms up (CUDA kernels, allocator); the second is reported
            start = time.perf_counter()
            metrics, episodes = trainer.train_step()
            trainer.step += 1
            cuda_sync(device)
            wall = time.perf_counter() - start
        row.update({
            "episodes": len(episodes), "prompt_tokens_mean": sum(len(e.prompt_ids) for e in episodes) / len(episodes),
            "generated_tokens": sum(sum(e.response_mask) for e in episodes),
            "rollout_s": metrics["time/rollout_s"], "update_s": metrics["time/update_s"], "step_s": wall,
            "rollout_tokens_per_s": metrics["throughput/rollout_tokens_per_s"],
            "update_tokens_per_s": metrics["throughput/update_tokens_per_s"], "steps_run": trainer.step,
            "peak_gpu_gib": peak_gib(device),
        })
        del trainer, episodes
    reset_peak(device)
    updater = updater_for(model, torch.bfloat16, micro=long["micro_batch_size"])
    model.gradient_checkpointing_enable()
    data = synthetic_batch(model.config.vocab_size, long["episodes"], long["prompt_tokens"],
                           long["response_tokens"]).to(device)
    start = time.perf_counter()
    prepared, _ = updater.prepare(data)
    updater.update(prepared)
    cuda_sync(device)
    row["long_update"] = {**long, "update_s": time.perf_counter() - start, "peak_gpu_gib": peak_gib(device)}
    del updater, model, data, prepared
    reset_peak(device)
    return row


def check_plan(device: str, quick: bool) -> dict:
    rows = {name: measure_model(name, device, quick) for name in shapes.QWEN25_SHAPES}
    ok = all(r["generated_tokens"] > 0 and math.isfinite(r["step_s"]) for r in rows.values())
    return {"ok": ok, "batch": shapes.QUICK_BATCH if quick else shapes.BATCH, "models": rows}


# ---------------------------------------------------------------- report


def imported_distributions() -> dict[str, list[str]]:
    """Distributions behind every top-level module this process imported (``stdlib`` / ``local`` apart)."""
    from importlib import metadata

    by_module = metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for name in sorted({m.split(".")[0] for m in list(sys.modules)}):
        if name in sys.stdlib_module_names or (name.startswith("_") and name[1:] in sys.stdlib_module_names):
            continue
        found.setdefault(name, set()).update(by_module.get(name, ()))
    return {module: sorted(dists) for module, dists in found.items()}


def print_table(plan: dict) -> None:
    batch = plan["batch"]
    print(f"\nplan: {batch['prompts']} prompts x {batch['samples']} samples, "
          f"{batch['max_new_tokens']} new tokens a turn")
    print(f"{'model':<14} {'params':>7} {'rollout tok/s':>13} {'rollout s':>9} {'update s':>8} {'step s':>7} "
          f"{'peak GiB':>8} {'8x4096 upd s':>12} {'8x4096 GiB':>10}")
    for name, r in plan["models"].items():
        long = r["long_update"]
        gib = "-" if r["peak_gpu_gib"] is None else f"{r['peak_gpu_gib']:.1f}"
        long_gib = "-" if long["peak_gpu_gib"] is None else f"{long['peak_gpu_gib']:.1f}"
        print(f"{name:<14} {r['parameters'] / 1e9:>6.2f}B {r['rollout_tokens_per_s']:>13.0f} {r['rollout_s']:>9.1f} "
              f"{r['update_s']:>8.1f} {r['step_s']:>7.1f} {gib:>8} {long['update_s']:>12.1f} {long_gib:>10}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny shapes: the CPU dry run of this script")
    parser.add_argument("--output", type=Path, default=RESULTS / "gpu_check.json")
    parser.add_argument("--checks", default="bf16_master,trainer,plan", help="comma-separated subset")
    args = parser.parse_args()
    started, cpu_started = time.perf_counter(), time.process_time()
    import torch
    import transformers

    from zerosearch.provenance import package_versions

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible: this check needs a GPU (or run it with --dry-run)", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    report: dict[str, Any] = {
        "benchmark": "gpu_check", "command": " ".join(sys.argv), "machine": platform.platform(),
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu", "quick": args.quick,
        "torch": torch.__version__, "transformers": transformers.__version__, "versions": package_versions(),
        "shapes": {"common": shapes.QWEN25_COMMON, **shapes.QWEN25_SHAPES} if not args.quick else shapes.TINY_SHAPE,
    }
    checks = {"bf16_master": check_bf16_master, "trainer": check_trainer, "plan": check_plan}
    failed = []
    for name in args.checks.split(","):
        start = time.perf_counter()
        result = checks[name](args.device, args.quick)
        result["seconds_total"] = time.perf_counter() - start
        report[name] = result
        print(f"{name}: {'ok' if result['ok'] else 'FAILED'} ({result['seconds_total']:.1f} s) "
              f"{json.dumps(result, default=str)[:400]}", flush=True)
        if not result["ok"]:
            failed.append(name)
        write_report(report, args.output, started, cpu_started)  # after every check: a timeout keeps the rest
    if "plan" in report:
        print_table(report["plan"])
    write_report(report, args.output, started, cpu_started)
    print(f"wrote {args.output} in {report['seconds_total']:.1f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


def write_report(report: dict, output: Path, started: float, cpu_started: float) -> None:
    """The JSON so far, with the run's times and what it imported."""
    report["seconds_total"] = time.perf_counter() - started
    report["cpu_seconds_total"] = time.process_time() - cpu_started
    report["imported_distributions"] = imported_distributions()
    report["local_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("zerosearch", "gpu_shapes"))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    raise SystemExit(main())
