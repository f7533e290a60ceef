"""How fast the toy policy's warm-start reads, and what it leaves for RL: CPU seconds, reading, searching, guessing.

The demo's critical path is the toy policy's warm-start (``toyworld.build.warm_start_policy``: a skills stage
that stops once teacher-forced reading passes, then a habits stage). This builds the demo's world with a given
warm-start config and records, per run: CPU and wall seconds (data, skills, habits, total), the reading check
per question kind at every check, the probability that the first action is a search (after each stage), and
the warm-started policy's direct EM (no search, its own instruction, greedy and sampled) on held-out
questions beside the EM of guessing an entity of the right type (uniform, and the most frequent answer).

    python benchmarks/bench_toy_warmstart.py --name default --out /tmp/tw/default
    python benchmarks/bench_toy_warmstart.py --name lr2e-3 --config variant.yaml --out /tmp/tw/lr
    python benchmarks/bench_toy_warmstart.py --name base-world --world-config demo --out /tmp/tw/old

``--config`` is a YAML mapping of ``ToyBuildConfig`` fields merged into the benchmarked world (key by key);
each run is stored under its ``--name`` in ``--json`` (default ``benchmarks/results/toy_warmstart.json``),
replacing an earlier run of that name. Wall times depend on the machine's load: CPU seconds are the
comparable figure (the load average is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "toy_warmstart.json"
DIRECT_QUESTIONS = 400


def base_config(which: str) -> Any:
    """The world and warm-start benchmarked: the toy world file's ``data.build`` (``which`` = ``default`` or
    ``demo``: both are what ``zerosearch demo`` runs today, ``src/zerosearch/demo/worlds/toy.yaml``)."""
    from zerosearch.demo.world import load_world_data
    from zerosearch.toyworld.build import ToyBuildConfig

    return ToyBuildConfig.model_validate(load_world_data("toy")["data"]["build"])


def load_config(which: str, path: str | None, seed: int) -> Any:
    """``base_config(which)`` with the YAML at ``path`` merged in, seeded."""
    import yaml

    from zerosearch.demo.config import merge
    from zerosearch.toyworld.build import ToyBuildConfig

    data = base_config(which).model_dump(mode="json")
    if path:
        data = merge(data, yaml.safe_load(Path(path).read_text("utf-8")) or {})
    return ToyBuildConfig.model_validate({**data, "seed": seed}).seeded()


def guess_em(test_rows: list[dict[str, Any]], world: Any) -> dict[str, float]:
    """EM of guessing per kind: a uniform draw of the right type, and the most frequent test answer."""
    kinds = sorted({r["kind"] for r in test_rows})
    uniform = sum(1 / len(world.candidates(k)) for k in kinds) / len(kinds)
    hits = 0
    for kind in kinds:
        answers = Counter(r["golden_answers"][0] for r in test_rows if r["kind"] == kind)
        hits += answers.most_common(1)[0][1]
    return {"uniform_guess": uniform, "most_frequent_answer": hits / len(test_rows)}


def direct_em(policy_dir: Path, test_path: Path, out: Path, n: int, max_new_tokens: int = 12) -> dict[str, Any]:
    """The warm-started policy answering at once (no search), greedy and sampled, through the harness."""
    from zerosearch.evaluation.harness import run_evaluation
    from zerosearch.evaluation.methods import MethodSettings, build_methods
    from zerosearch.llm.factory import GeneratorConfig, build_generator
    from zerosearch.toyworld.build import read_template
    from zerosearch.toyworld.evaluate import load_toy_questions

    policy = build_generator(GeneratorConfig(model=str(policy_dir), dtype="float32", device="cpu", batch_size=100))
    examples = load_toy_questions(test_path, limit=n)
    scores: dict[str, Any] = {"questions": len(examples)}
    for decoding, temperature in (("greedy", 0.0), ("sampled", 1.0)):
        settings = MethodSettings(max_new_tokens=max_new_tokens, use_chat_template=False, seed=0,
                                  temperature=temperature, direct_template=read_template())
        methods = build_methods(["direct"], policy, None, settings)
        summary = run_evaluation(methods, {"toyworld": examples}, out / decoding, seed=0, batch_size=100,
                                 progress=False, plot_metric=None)
        scores[decoding] = {"em": summary.table.score("direct", "toyworld", "em"),
                            "answered": summary.table.answered["direct"]}
    return scores


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the world, warm-start with a timestamped log, measure; the run's record."""
    from zerosearch.toyworld.build import warm_start_policy, write_world
    from zerosearch.toyworld.world import generate_world

    config = load_config(args.world_config, args.config, args.seed)
    out = Path(args.out)
    lines: list[str] = []
    start, cpu = time.perf_counter(), time.process_time()

    def log(message: str) -> None:
        line = f"{time.perf_counter() - start:7.1f}s wall {time.process_time() - cpu:7.1f}s cpu  {message}"
        lines.append(line)
        print(line, flush=True)

    load_start = os.getloadavg()
    paths = write_world(out, config, overwrite=True)
    warm_start_policy(paths, config, log=log, num_threads=args.threads)
    wall, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    manifest = json.loads(paths.manifest.read_text("utf-8"))
    warm = manifest["warmstart"]
    test_rows = [json.loads(line) for line in paths.test.read_text("utf-8").splitlines()]
    record: dict[str, Any] = {
        "config": manifest["config"], "sizes": manifest["sizes"], "threads": args.threads,
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
        "wall_seconds": wall, "cpu_seconds": cpu_s, "timings": manifest["timings"],
        "skills_steps": warm["skills"]["steps"], "habits_steps": warm["habits"]["steps"],
        "passed_reading": warm["passed_reading"],
        "reading_checks": [{"step": c["step"], **c["reading"]} for c in warm["skills"]["reading_checks"]],
        "reading_after_skills": warm["skills"]["reading_checks"][-1]["reading"] if warm["skills"]["reading_checks"]
        else None,
        "reading_final": warm["reading"],
        "search_probability_after_skills": warm["skills"]["search_probability"],
        "search_probability_final": warm["search_probability"],
        "held_out_loss": [warm["held_out_loss_before"], warm["held_out_loss_after"]],
        "guess_em": guess_em(test_rows, generate_world(config.world)),
        "log": lines,
    }
    if not args.no_direct:
        record["direct_em"] = direct_em(paths.policy, paths.test, out / "direct", args.direct_questions)
    return record


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, store the record under ``--name`` in ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the run's key in the results file")
    parser.add_argument("--out", required=True, help="directory for the world and policy (replaced)")
    parser.add_argument("--config", default=None, help="YAML of ToyBuildConfig fields merged into the world config")
    parser.add_argument("--world-config", choices=("default", "demo"), default="default",
                        help="default or demo: both the toy world file's data.build (what zerosearch demo runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads of the warm-start")
    parser.add_argument("--direct-questions", type=int, default=DIRECT_QUESTIONS)
    parser.add_argument("--no-direct", action="store_true", help="skip the direct-answer EM")
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args(argv)
    import torch

    from zerosearch.provenance import package_versions

    torch.set_num_threads(args.threads)
    record = run(args)
    path = Path(args.json)
    results = json.loads(path.read_text("utf-8")) if path.is_file() else {"runs": {}}
    results["runs"][args.name] = {"command": "python benchmarks/bench_toy_warmstart.py " + " ".join(
        sys.argv[1:] if argv is None else argv), **record}
    results.update(versions=package_versions(), cpu_count=os.cpu_count())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n", "utf-8")
    summary = {k: record.get(k) for k in ("cpu_seconds", "skills_steps", "passed_reading", "reading_final",
                                          "search_probability_final", "direct_em", "guess_em")}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
