"""Does the protocol warm-start make a real LM (SmolLM2-135M-Instruct) a working search agent?

Why: before it, SmolLM2 never writes ``<answer>``, so every real-model number is 0 and RL has no signal.
This runs the product path end to end on real data, on CPU with one torch thread:

1. ``zerosearch sft``'s pipeline (:func:`zerosearch.warmstart.run_warmstart`) with
   ``configs/sft-smollm2-hotpotqa.yaml``: the 100 aligned HotpotQA questions' paragraphs pooled into a
   corpus, a seeded 70/30 split by question, demonstrations whose searches BM25 answers for real, TRL SFT
   with loss on policy tokens only;
2. ``zerosearch eval``'s code path (:func:`zerosearch.evaluation.runner.evaluate`) on the 30 held-out
   questions with BM25 over that corpus, methods direct, RAG and agent, greedy, for the base model and
   for the warm-started one.

It reports the share of questions answered in format (``<answer>…</answer>``; target >= 90% for the agent
after the warm-start), EM, cover-EM and F1, searches per question, and the warm-start's time, and writes
``benchmarks/results/policy_warmstart.json`` (command, versions, config, tables, one full episode).
Evaluation directories resume (done questions are skipped), so an interrupted run continues.

    .venv/bin/python benchmarks/bench_policy_warmstart.py                   # ~66 min measured on a busy 2-core machine
    .venv/bin/python benchmarks/bench_policy_warmstart.py --stages before   # only the base model's evaluation
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CONFIG = ROOT / "configs" / "sft-smollm2-hotpotqa.yaml"
BASE_MODEL = "smollm2-135m-instruct"
DATASET = "hotpotqa_heldout"
METHODS = ["direct", "rag", "agent"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-warmstart", help="work directory")
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--stages", default="before,sft,after", help="comma-separated: before, sft, after")
    p.add_argument("--max-steps", type=int, default=None, help="override sft.max_steps")
    p.add_argument("--probe-rows", type=int, default=8,
                   help="rows of the SFT wrapper's before/after loss probe (its default 64 costs ~15 min here)")
    p.add_argument("--answer-tokens", type=int, default=128, help="direct/RAG: new tokens for the answer")
    p.add_argument("--agent-tokens", type=int, default=256, help="agent: new tokens per turn")
    p.add_argument("--max-turns", type=int, default=2, help="agent: search rounds before the last turn")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--result", type=Path, default=RESULTS / "policy_warmstart.json")
    return p.parse_args(argv)


def warmstart_config(args):
    from zerosearch.warmstart import load_warmstart_config

    overrides = {"output_dir": str(args.out / "sft"), "sft.num_threads": args.threads}
    if args.max_steps is not None:
        overrides["sft.max_steps"] = args.max_steps
    return load_warmstart_config(args.config, overrides)


def evaluate_policy(args, config, policy: str, name: str) -> dict:
    """The `zerosearch eval` code path on the held-out split with BM25 over the pooled corpus."""
    from zerosearch.evaluation.runner import EvalConfig, evaluate
    from zerosearch.llm.factory import GeneratorConfig
    from zerosearch.rollout import RolloutConfig
    from zerosearch.search.factory import BM25EngineConfig

    eval_config = EvalConfig(
        policy=GeneratorConfig(model=policy, device="cpu"),
        engine=BM25EngineConfig(corpus=config.corpus_path, progress=False),
        methods=METHODS, datasets=[f"{DATASET}={config.output_dir / 'split' / 'test.jsonl'}"],
        max_new_tokens=args.answer_tokens, top_k=config.demos.top_k_documents,
        rollout=RolloutConfig(temperature=0.0, n_samples=1, max_new_tokens=args.agent_tokens, max_turns=args.max_turns),
        out_dir=args.out / f"eval-{name}", progress=True, plot_metric=None,
    )
    start = time.perf_counter()
    summary = evaluate(eval_config)
    print(summary.table.to_markdown(), flush=True)
    return {"policy": policy, "seconds_this_invocation": time.perf_counter() - start, "new_records": summary.total_new,
            "out_dir": str(eval_config.out_dir), "table": summary.table.to_dict()}


def run_sft(args, config) -> dict:
    import zerosearch.sft.trainer as sft_trainer
    from zerosearch.warmstart import run_warmstart

    # The wrapper's before/after loss probe runs 64 rows forward twice (~15 min at one thread on ~900-token
    # rows); a few rows prove the same thing (training moved the loss). Recorded in the JSON.
    sft_trainer.PROBE_ROWS = args.probe_rows
    start = time.perf_counter()
    result = run_warmstart(config)
    return {"seconds": time.perf_counter() - start, "record": json.loads(result.record_path.read_text())}


def cell(run: dict, method: str) -> dict:
    """Scores, answered share and searches of one method on the held-out set."""
    table = run["table"]
    scores = table["results"][method][DATASET]
    usage = table["usage"][method]
    return {"n": scores["n"], "answered": usage["answered"], "em": scores["em"], "cover_em": scores["cover_em"],
            "f1": scores["f1"], "searches_per_question": usage["searches_per_question"]}


def example_episode(out: Path) -> dict | None:
    """The first correct agent episode of the warm-started model (else the first answered one)."""
    path = out / "eval-after" / "records.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    agent = [r for r in records if r["method"] == "agent"]
    chosen = next((r for r in agent if r["metrics"]["em"] == 1.0), None) or next(
        (r for r in agent if r["prediction"] is not None), None)
    if chosen is None:
        return None
    return {k: chosen[k] for k in ("question", "golds", "prediction", "metrics", "queries", "generated_text")}


def print_table(results: dict) -> None:
    print("| model | method | answered | EM | cover-EM | F1 | searches/q |")
    print("|---|---|---|---|---|---|---|")
    for name in ("before", "after"):
        for method in METHODS:
            c = results[name][method]
            print(f"| {name} | {method} | {c['answered']:.2f} | {c['em']:.3f} | {c['cover_em']:.3f} | {c['f1']:.3f} | "
                  f"{c['searches_per_question']:.2f} |")


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    from zerosearch.provenance import package_versions
    from zerosearch.warmstart.run import training_questions

    torch.set_num_threads(args.threads)
    stages = {s.strip() for s in args.stages.split(",") if s.strip()}
    config = warmstart_config(args)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    training_questions(config)  # corpus + split, deterministic: the before-evaluation needs them
    state_path = args.out / "bench_state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    if "before" in stages:
        state["before"] = {**evaluate_policy(args, config, BASE_MODEL, "before"), "command": command}
    if "sft" in stages:
        state["sft"] = {**run_sft(args, config), "command": command}
    if "after" in stages:
        state["after"] = {**evaluate_policy(args, config, str(config.sft.output_dir), "after"), "command": command}
    state_path.write_text(json.dumps(state, indent=1))
    if not {"before", "sft", "after"} <= set(state):
        print(f"stages so far: {sorted(state)}; run the others to write {args.result}")
        return
    results = {name: {m: cell(state[name], m) for m in METHODS} for name in ("before", "after")}
    print_table(results)
    payload = {
        "benchmark": "policy_warmstart", "command": command,
        "stage_commands": {n: state[n].get("command") for n in ("before", "sft", "after")},
        "versions": package_versions(),
        "threads": args.threads, "probe_rows": args.probe_rows,
        "config": config.model_dump(mode="json"),
        "eval_settings": {"methods": METHODS, "answer_tokens": args.answer_tokens, "agent_tokens": args.agent_tokens,
                          "max_turns": args.max_turns, "top_k": config.demos.top_k_documents, "greedy": True},
        "results": results, "warmstart": state["sft"],
        "evaluation_seconds": {n: state[n]["seconds_this_invocation"] for n in ("before", "after")},
        "example_episode": example_episode(args.out),
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.result}")


if __name__ == "__main__":
    main()
