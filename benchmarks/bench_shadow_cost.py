"""What a BM25 shadow engine adds to a toy RL step: one batched search of the step's queries + hit checks.

Why: ``shadow_engine`` (zerosearch.train.shadow) asks a real engine every step's queries again. This
script times :func:`shadow_metrics` on one step's worth of episodes of the toy config
(configs/toy-reinforce_pp-simulated.yaml: 16 questions x 8 samples, one search each, top-1) over the
toy world's corpus, and sets it beside the measured seconds per RL step of that arm
(benchmarks/results/toy_learning_seed1_simulated.json). Only the time is measured: the episodes'
documents are BM25's own, so the agreement figures are 1.0 by construction.

    .venv/bin/python benchmarks/bench_shadow_cost.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STEP_RESULT = RESULTS / "toy_learning_seed1_simulated.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0, help="toy world seed")
    p.add_argument("--prompts", type=int, default=16, help="questions per step")
    p.add_argument("--samples", type=int, default=8, help="episodes per question")
    p.add_argument("--top-k", type=int, default=1, help="documents per search")
    p.add_argument("--repeats", type=int, default=20, help="timed steps (the median is reported)")
    p.add_argument("--out", type=Path, default=RESULTS / "shadow_cost.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    import torch

    from zerosearch.provenance import package_versions
    from zerosearch.rollout import Episode
    from zerosearch.search.base import SearchRequest
    from zerosearch.search.factory import BM25EngineConfig, build_engine
    from zerosearch.toyworld.world import WorldConfig, generate_world
    from zerosearch.train.shadow import shadow_metrics

    args = parse_args(argv)
    torch.set_num_threads(1)
    world = generate_world(WorldConfig(seed=args.seed))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("".join(json.dumps(p) + "\n" for p in world.passages()), encoding="utf-8")
        start = time.perf_counter()
        engine = build_engine(BM25EngineConfig(corpus=corpus, index_dir=Path(tmp) / "index", progress=False))
        index_s = time.perf_counter() - start
        examples = world.questions("train")[: args.prompts]
        queries = [ex.question for ex in examples for _ in range(args.samples)]
        own = engine.search([SearchRequest(q, top_k=args.top_k) for q in queries])
        episodes = [Episode(example=examples[i // args.samples], group=i // args.samples, sample=i % args.samples,
                            prompt_ids=[0], queries=[q], documents=[[d.as_passage() for d in r.documents]])
                    for i, (q, r) in enumerate(zip(queries, own, strict=True))]
        times, figures = [], {}
        for _ in range(args.repeats):
            start = time.perf_counter()
            figures = shadow_metrics(engine, episodes, top_k=args.top_k)
            times.append(time.perf_counter() - start)
    step_s = None
    if STEP_RESULT.is_file():
        runs = json.loads(STEP_RESULT.read_text(encoding="utf-8"))["runs"]
        step_s = next((r["seconds_per_step"] for r in runs if r["algo"] == "reinforce_pp-simulated"), None)
    median = statistics.median(times)
    result = {
        "command": " ".join(["python", "benchmarks/bench_shadow_cost.py", *(sys.argv[1:] if argv is None else argv)]),
        "config": {k: str(v) for k, v in vars(args).items()},
        "corpus_passages": len(world.passages()),
        "searches_per_step": len(queries),
        "index_build_s": index_s,
        "shadow_s_per_step_median": median,
        "shadow_s_per_step_max": max(times),
        "rl_step_s_reference": step_s,
        "share_of_rl_step": None if step_s is None else median / step_s,
        "figures": figures,
        "versions": package_versions(),
    }
    print(f"{len(queries)} searches over {len(world.passages())} passages: shadow {median * 1000:.1f} ms/step "
          f"(median of {args.repeats}; max {max(times) * 1000:.1f} ms); index build {index_s:.2f} s"
          + ("" if step_s is None else f"; {100 * median / step_s:.2f}% of a {step_s:.2f} s RL step"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
