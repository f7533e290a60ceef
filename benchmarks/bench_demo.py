"""What `zerosearch demo` costs and shows in a world: wall time, CPU per stage, peak memory, the arms' table.

Runs the demo (``zerosearch.demo.run_demo``) of ``--world`` (toy by default; ``hotpotqa``: ZeroSearch on real
text) into ``--out`` and writes ``--result`` (default ``benchmarks/results/demo.json`` for the toy world,
``real_text.json`` for hotpotqa): the command, package versions, the machine's load average at the start and
end (on a shared machine the wall time is inflated; the per-task CPU seconds are not), per-task
wall/CPU/RSS, which tasks were reused from an earlier run (a resumed run is not a fresh one), the claim
verdicts, the simulators' quality beside the real engine's and every arm's scores per seed. Set-up
(``make install``) is not included; time it separately on a fresh clone.

    .venv/bin/python benchmarks/bench_demo.py --out runs/demo-bench
    .venv/bin/python benchmarks/bench_demo.py --world hotpotqa --out runs/demo-hotpotqa
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", default="toy", help="toy, hotpotqa or a world YAML file")
    p.add_argument("--out", type=Path, default=None, help="demo output directory (default runs/demo-bench-<world>)")
    p.add_argument("--config", type=Path, default=None, help="YAML of DemoConfig fields merged into the world's")
    p.add_argument("--result", type=Path, default=None,
                   help="where to write the figures (default: demo.json, or real_text.json for hotpotqa)")
    args = p.parse_args(argv)
    name = Path(args.world).stem
    args.out = args.out or Path(f"runs/demo-bench-{name}")
    default = {"toy": "demo.json", "hotpotqa": "real_text.json"}.get(name, f"demo_{name}.json")
    args.result = args.result or RESULTS / default
    return args


def per_seed(arm, decodings: list[str]) -> dict:
    """An arm's scores as lists over its seeds, per metric, for the first decoding (the issue's shape)."""
    first = decodings[0]
    return {"f1": [s.scores[first].f1 for s in arm.seeds], "em": [s.scores[first].em for s in arm.seeds],
            "answered": [s.scores[first].answered for s in arm.seeds],
            "searches": [s.scores[first].searches for s in arm.seeds], "decoding": first,
            "by_decoding": {d: [s.scores[d].model_dump() for s in arm.seeds] for d in decodings}}


def main(argv: list[str] | None = None) -> dict:
    from zerosearch.demo.config import load_demo_config
    from zerosearch.demo.report import terminal_summary
    from zerosearch.demo.runner import run_demo
    from zerosearch.provenance import package_versions

    args = parse_args(argv)
    from zerosearch.demo.claims import judge_claims

    config = load_demo_config(args.config, world=args.world, out=args.out)
    load_start = os.getloadavg()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    results = run_demo(config, log=log)
    stages = results.stages
    quality = results.simulator_quality
    result = {
        "command": " ".join(["python", "benchmarks/bench_demo.py", *(sys.argv[1:] if argv is None else argv)]),
        "world": results.world.model_dump(),
        "versions": package_versions(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "wall_seconds": results.wall_seconds,
        "peak_rss_mib": results.peak_rss_mib,
        "cpu_seconds_total": sum(s["cpu_s"] for s in stages.values()),
        "stages": stages,
        "reused": [line.split()[1].rstrip(":") for line in lines if line.startswith("skip ")],
        "table": terminal_summary(results),
        "metric": results.metric, "decodings": results.decodings,
        "claims": {c.key: c.verdict.value for c in judge_claims(results)},
        "claim_details": {c.key: {"title": c.title, "verdict": c.verdict.value, "figures": c.miniature}
                          for c in judge_claims(results)},
        "arms": {a.name: {**per_seed(a, results.decodings), "seeds": [s.model_dump() for s in a.seeds],
                          "cost": a.cost.model_dump(), "shadow": a.shadow.model_dump() if a.shadow else None,
                          "train_engine": a.train_engine} for a in results.arms},
        "reference": quality.get("reference", {}),
        "simulators": quality.get("simulators", {}),
        "simulator_quality": quality,
        "config": results.config,
    }
    if "rl_real" in result["arms"]:
        result["arms"]["bm25"] = result["arms"]["rl_real"]  # issue 19's name for the real-engine arm
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(terminal_summary(results))
    print(f"wrote {args.result}")
    return result


if __name__ == "__main__":
    main()
