"""Rollout throughput against raw batched ``model.generate`` (same model, batch and generated tokens).

Why: the multi-turn loop (stop strings, per-row parsing, one engine call per round, re-feeding the
growing context each turn) must not cost much more than plain sampling. Target: at most 25% overhead.

Workload: ``--questions`` NQ test questions x ``--samples`` = the batch (16 by default), BM25 over the
1,000-passage wiki-18 sample, ``--turns`` search rounds then a final answer turn. A raw model never
writes search tags reliably, so the policy is *steered*: the real TransformersGenerator decodes every
token, but a logits processor suppresses EOS for the first ``--free-tokens`` of each turn and then
forces ``<search> question </search>`` (``<answer> … </answer>`` in the last turn). Every token is
decoded by the model, so the turn lengths are fixed and both sides do identical decoding work. The
steering reads each row's question and round from its context (``input_ids``), so it works the same
with and without ``--reuse-kv-cache``.

``--reuse-kv-cache on`` runs the rollout with ``RolloutConfig.reuse_kv_cache=True`` (each row's KV
cache kept across turns, ``llm/continuation.py``); ``both`` runs the uncached and the cached rollout
interleaved with the baseline in every repeat and reports both overheads (``*_kv_compare.json``).

Baselines, both ``model.generate`` with the same batch and sampling settings, generating exactly the
rollout's mean number of generated tokens per row (min = max new tokens), with a KV cache:

* *pure generation*: the prompts alone (the issue's target: the loop costs at most 25% over this). The
  rollout also prefills every injected ``<information>`` block and decodes over the longer contexts,
  work this baseline never does, so when injected tokens outnumber generated ones the target measures
  the workload more than the loop;
* *equal work*: each row's prompt followed by all the ids the rollout injected into it, prefilled at
  once, then the same decode. Same tokens prefilled, same tokens decoded: the difference is the loop's
  own cost (turn-by-turn prefill, stop checks, cache splicing, engine calls, Python). Its decode runs
  over the full context from the first token, slightly more attention work than the rollout's, so the
  overhead against it is, if anything, a slight underestimate.

Where the time goes is measured with forward hooks on the model: prefill (calls feeding >1 token per
row, i.e. the prompt and every re-fed context) vs decode (1 token per row), the engine, and the rest
(HF generate bookkeeping, stop-string checks, logprob recording, the rollout's own Python).

    .venv/bin/python benchmarks/bench_rollout.py                    # SmolLM2-135M, batch 16
    .venv/bin/python benchmarks/bench_rollout.py --model tiny       # random 2-layer Llama, quick
    .venv/bin/python benchmarks/bench_rollout.py --model tiny --threads 1 --reuse-kv-cache both
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

from zerosearch.data.types import QAExample
from zerosearch.llm.models import resolve_model
from zerosearch.llm.transformers_backend import TransformersGenerator
from zerosearch.protocol import render_prompt
from zerosearch.rollout import RolloutConfig, run_rollout
from zerosearch.search.bm25 import BM25SearchEngine

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


class ModelTimer:
    """Forward hooks adding up model time, split into prefill (T > 1) and decode (T == 1) calls."""

    def __init__(self, model) -> None:
        self.totals = {"prefill_s": 0.0, "decode_s": 0.0, "prefill_tokens": 0, "decode_steps": 0}
        self._start = 0.0
        self._shape: tuple[int, int] = (0, 0)
        model.register_forward_pre_hook(self._pre, with_kwargs=True)
        model.register_forward_hook(self._post, with_kwargs=True)

    def _pre(self, module, args, kwargs):
        ids = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]
        self._shape = tuple(ids.shape)  # (B, T)
        self._start = time.perf_counter()

    def _post(self, module, args, kwargs, output):
        elapsed = time.perf_counter() - self._start
        batch, length = self._shape
        if length > 1:
            self.totals["prefill_s"] += elapsed
            self.totals["prefill_tokens"] += batch * length
        else:
            self.totals["decode_s"] += elapsed
            self.totals["decode_steps"] += 1

    def reset(self) -> None:
        self.totals = dict.fromkeys(self.totals, 0)


class SteerTurn:
    """Logits processor: no EOS for ``free`` tokens, then force each row's suffix token by token.

    The suffixes are built at the first step from each row's context (``suffix_of``), so the processor
    does not depend on how the backend orders, pads or caches the rows.
    """

    def __init__(self, suffix_of, free: int, eos_ids: list[int]) -> None:
        self.suffix_of, self.free, self.eos_ids = suffix_of, free, eos_ids
        self.suffixes: list[list[int]] | None = None
        self.step = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.suffixes is None:
            self.suffixes = [self.suffix_of(row.tolist()) for row in input_ids]
        step = self.step
        self.step += 1
        if step < self.free:
            scores[:, self.eos_ids] = -float("inf")
            return scores
        forced = torch.full_like(scores, -float("inf"))  # (B, V)
        for row, suffix in enumerate(self.suffixes):
            forced[row, suffix[min(step - self.free, len(suffix) - 1)]] = 0.0
        return forced


class SteeredGenerator(TransformersGenerator):
    """The real generator plus :class:`SteerTurn` (see the module docstring); times its model.generate calls.

    Only backend hooks are overridden (``_warpers``, ``_complete``), not ``generate_ids``, so the rollout
    may take the cached path (``reuse_kv_cache``) and both paths are steered and timed alike.
    """

    def __init__(self, model, tokenizer, free_tokens: int, max_turns: int) -> None:
        super().__init__(model, tokenizer, batch_size=64)
        self.free_tokens, self.max_turns = free_tokens, max_turns
        self.generate_s = 0.0

    def _complete(self, input_ids, attention_mask, params, cache=None):
        start = time.perf_counter()
        try:
            return super()._complete(input_ids, attention_mask, params, cache=cache)
        finally:
            self.generate_s += time.perf_counter() - start

    def _suffix(self, context: list[int]) -> list[int]:
        text = self.tokenizer.decode(context)
        if text.count("<information>Doc") + text.count("<information>No results") >= self.max_turns:
            text = "\n<answer> unknown </answer>"
        else:
            question = text.split("Question: ")[-1].split("<|im_end|>")[0].strip()
            text = f"\n<search> {question} </search>"
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _warpers(self, params):
        return [*super()._warpers(params), SteerTurn(self._suffix, self.free_tokens, sorted(self._eos_ids()))]


def load_model(name: str):
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))
    if name == "tiny":
        torch.manual_seed(0)
        config = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                             vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
        return LlamaForCausalLM(config).eval(), tokenizer
    path = resolve_model(name)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)


def load_questions(n: int) -> list[QAExample]:
    with (SHARED / "qa" / "nq_test_1000.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(n), f, strict=False)]
    return [QAExample(r["id"], r["question"], tuple(r["golden_answers"]), "nq") for r in rows]


def raw_generate(model, tokenizer, prompts: list[list[int]], new_tokens: int, seed: int) -> float:
    """Seconds for one left-padded batched model.generate of exactly ``new_tokens`` per row."""
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # (B, P)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])  # (B, P)
    config = GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True,
                              temperature=1.0, top_k=0, top_p=1.0, pad_token_id=pad,
                              eos_token_id=tokenizer.eos_token_id, use_cache=True)
    torch.manual_seed(seed)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    elapsed = time.perf_counter() - start
    assert out.shape[1] == width + new_tokens
    return elapsed


class TimedEngine(BM25SearchEngine):
    """The real BM25 engine, timing its calls."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.search_s = 0.0
        self.calls = 0

    def search(self, requests):
        start = time.perf_counter()
        try:
            return super().search(requests)
        finally:
            self.search_s += time.perf_counter() - start
            self.calls += 1


def one_rollout(policy, engine, timer, examples, config, seed: int) -> tuple[dict, list[list[int]]]:
    """Timings of one rollout, and each row's prompt + injected ids (the equal-work baseline's prompts)."""
    policy.generate_s, engine.search_s, engine.calls = 0.0, 0.0, 0
    timer.reset()
    start = time.perf_counter()
    episodes = run_rollout(policy, engine, examples, config, seed=seed)
    wall = time.perf_counter() - start
    generated = sum(e.num_generated_tokens for e in episodes)
    # Tokens fed again in later turns that a KV cache kept across turns would not recompute: at turn k
    # everything up to the end of turn k-1's generated ids (the injected block after it is new).
    refed = sum(len(e.prompt_ids) + t.end for e in episodes for t in e.turns[:-1])
    injected = sum(len(e.response_ids) for e in episodes) - generated
    contexts = [e.prompt_ids + [i for i, m in zip(e.response_ids, e.response_mask, strict=True) if not m]
                for e in episodes]
    return {
        "wall_s": wall, "generated_tokens": generated, "injected_tokens": injected,
        "refed_tokens": refed,
        "searches": sum(e.num_searches for e in episodes), "engine_calls": engine.calls,
        "engine_s": engine.search_s, "model_generate_s": policy.generate_s,
        "rollout_python_s": wall - policy.generate_s - engine.search_s, **timer.totals,  # incl. cache moves
        "turns_per_episode": statistics.mean(len(e.turns) for e in episodes),
        # equal digests across modes of one repeat (same seed) = identical sampled token ids
        "response_ids_sha1": hashlib.sha1(json.dumps([e.response_ids for e in episodes]).encode()).hexdigest(),
        "stop_reasons": sorted({e.stop_reason for e in episodes}),
    }, contexts


def one_raw(model, tokenizer, timer, prompts, new_tokens: int, seed: int) -> dict:
    timer.reset()
    wall = raw_generate(model, tokenizer, prompts, new_tokens, seed)
    return {"wall_s": wall, "generated_tokens": new_tokens * len(prompts), **timer.totals}


def summarize(rollouts: list[dict], best_raw: dict, best_equal: dict) -> dict:
    """Best rollout of a mode, its throughput and its overheads over the best raw and equal-work generates."""
    best = min(rollouts, key=lambda r: r["wall_s"])
    raw_tps = best_raw["generated_tokens"] / best_raw["wall_s"]
    equal_tps = best_equal["generated_tokens"] / best_equal["wall_s"]
    tps = best["generated_tokens"] / best["wall_s"]
    return {"rollout": best, "all_rollouts": rollouts, "rollout_tokens_per_s": tps, "overhead": raw_tps / tps - 1.0,
            "overhead_vs_equal_work": equal_tps / tps - 1.0}


def print_row(name: str, r: dict) -> None:
    print(f"  {name:20s} {r['wall_s']:7.2f} s  {r['generated_tokens'] / r['wall_s']:8.1f} tok/s  "
          f"prefill {r['prefill_s']:6.2f} s ({r['prefill_tokens']} tok)  decode {r['decode_s']:6.2f} s "
          f"({r['decode_steps']} steps)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="'tiny' or a model name/path")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--turns", type=int, default=2, help="search rounds (then one answer turn)")
    parser.add_argument("--free-tokens", type=int, default=48, help="sampled tokens per turn before the tag")
    parser.add_argument("--top-k-documents", type=int, default=3)
    parser.add_argument("--max-information-tokens", type=int, default=None,
                        help="cut each <information> block (e.g. 128 ~ three 30-word simulator documents)")
    parser.add_argument("--reuse-kv-cache", choices=("off", "on", "both"), default="off",
                        help="rollout with RolloutConfig.reuse_kv_cache False, True, or both (interleaved)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    return parser.parse_args(argv)


def print_report(args, result: dict, results: dict, modes: list[bool], batch: int) -> None:
    first = results[modes[0]]["rollout"]
    print(f"model {args.model}, batch {batch}, {args.turns} search rounds + answer, "
          f"{first['generated_tokens'] / batch:.0f} generated + {first['injected_tokens'] / batch:.0f} injected "
          "tokens per row")
    for reuse in modes:
        print_row(f"rollout kv_reuse={'on' if reuse else 'off'}", results[reuse]["rollout"])
    print_row("raw generate", result["raw_generate"])
    print_row("equal-work generate", result["equal_work_generate"])
    for reuse in modes:
        r, mode = results[reuse]["rollout"], "on" if reuse else "off"
        print(f"  kv_reuse={mode}: overhead {results[reuse]['overhead']:+.1%} over pure generation (target <= +25%), "
              f"{results[reuse]['overhead_vs_equal_work']:+.1%} over equal work; engine "
              f"{r['engine_s']:.3f} s in {r['engine_calls']} calls, rollout Python {r['rollout_python_s']:.3f} s")
    if len(modes) == 2:
        print(f"  identical response ids with and without the cache: {result['identical_response_ids']}")
    if not modes[0]:
        saved, estimate = result["estimated_kv_reuse_saving_s"], result["estimated_overhead_with_kv_reuse"]
        print(f"  re-fed context {first['refed_tokens']} tokens = {saved:.1f} s of prefill; estimated overhead "
              f"with a cross-turn KV cache {estimate:+.1%}")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.reuse_kv_cache]

    model, tokenizer = load_model(args.model)
    timer = ModelTimer(model)
    examples = load_questions(args.questions)
    with tempfile.TemporaryDirectory() as index_dir:
        engine = TimedEngine(SHARED / "corpus" / "wiki18_sample_1000.jsonl", index_dir=index_dir, progress=False)
        policy = SteeredGenerator(model, tokenizer, args.free_tokens, args.turns)
        configs = {reuse: RolloutConfig(max_turns=args.turns, max_new_tokens=args.free_tokens + 64,
                                        n_samples=args.samples, top_k_documents=args.top_k_documents,
                                        max_information_tokens=args.max_information_tokens, reuse_kv_cache=reuse)
                   for reuse in modes}
        prompts = [tokenizer(render_prompt(ex.question, tokenizer), add_special_tokens=False)["input_ids"]
                   for ex in examples for _ in range(args.samples)]
        rollouts: dict[bool, list[dict]] = {reuse: [] for reuse in modes}
        raws, equals = [], []
        for rep in range(args.repeats):  # interleaved, so load changes hit every side alike
            for reuse in modes:
                record, contexts = one_rollout(policy, engine, timer, examples, configs[reuse], args.seed + rep)
                rollouts[reuse].append(record)
            per_row = round(rollouts[modes[0]][-1]["generated_tokens"] / len(prompts))
            raws.append(one_raw(model, tokenizer, timer, prompts, per_row, args.seed + rep))
            equals.append(one_raw(model, tokenizer, timer, contexts, per_row, args.seed + rep))
    best_raw = min(raws, key=lambda r: r["wall_s"])
    best_equal = min(equals, key=lambda r: r["wall_s"])
    raw_tps = best_raw["generated_tokens"] / best_raw["wall_s"]
    results = {reuse: summarize(rollouts[reuse], best_raw, best_equal) for reuse in modes}
    first = results[modes[0]]["rollout"]
    # Estimate (not a measurement): the uncached run with the re-fed tokens served from a KV cache.
    prefill_rate = first["prefill_s"] / max(first["prefill_tokens"], 1)
    saved = first["refed_tokens"] * prefill_rate
    est_overhead = (first["wall_s"] - saved) / first["generated_tokens"] * raw_tps - 1.0
    result = {
        "benchmark": "rollout_vs_raw_generate",
        "model": args.model, "batch": len(prompts), "turns": args.turns, "free_tokens": args.free_tokens,
        "top_k_documents": args.top_k_documents, "max_information_tokens": args.max_information_tokens,
        "threads": args.threads, "repeats": args.repeats, "reuse_kv_cache": args.reuse_kv_cache,
        "raw_generate": best_raw, "all_raw": raws, "raw_tokens_per_s": raw_tps, "target_overhead": 0.25,
        "equal_work_generate": best_equal, "all_equal_work": equals,
        **results[modes[0]],
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
        "command": " ".join(["benchmarks/bench_rollout.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    if not modes[0]:
        result.update(estimated_kv_reuse_saving_s=saved, estimated_overhead_with_kv_reuse=est_overhead)
    if len(modes) == 2:
        result["with_kv_reuse"] = results[True]
        result["overhead_without_kv_reuse"] = results[False]["overhead"]
        result["overhead_with_kv_reuse"] = results[True]["overhead"]
        result["overhead_vs_equal_work_with_kv_reuse"] = results[True]["overhead_vs_equal_work"]
        result["speedup_kv_reuse"] = results[False]["rollout"]["wall_s"] / results[True]["rollout"]["wall_s"]
        result["identical_response_ids"] = all(
            off["response_ids_sha1"] == on["response_ids_sha1"] for off, on in zip(*rollouts.values(), strict=True))
    print_report(args, result, results, modes, len(prompts))
    info = f"_info{args.max_information_tokens}" if args.max_information_tokens else ""
    kv = {"off": "", "on": "_kv", "both": "_kv_compare"}[args.reuse_kv_cache]
    out = Path(args.out) if args.out else RESULTS / f"rollout_{Path(args.model).name}{info}{kv}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), "utf-8")
    print(f"  wrote {out}")
    return result


if __name__ == "__main__":
    main()
