"""What `zerosearch demo` costs and shows: wall time, CPU per stage, peak memory, and the arms' table.

Runs the demo (``zerosearch.demo.run_demo``, the embedded default unless ``--config``) into ``--out`` and
writes ``benchmarks/results/demo.json``: the command, package versions, the machine's load average at the
start and end (on a shared machine the wall time is inflated; the per-task CPU seconds are not), per-task
wall/CPU/RSS, which tasks were reused from an earlier run (a resumed run is not a fresh one) and the
arms' scores. Set-up (``make install``) is not included; time it separately on a fresh clone.

    .venv/bin/python benchmarks/bench_demo.py --out runs/demo-bench
    .venv/bin/python benchmarks/bench_demo.py --config demo.yaml --out runs/demo-small
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
    p.add_argument("--out", type=Path, default=Path("runs/demo-bench"), help="demo output directory")
    p.add_argument("--config", type=Path, default=None, help="YAML of DemoConfig fields (default: embedded)")
    p.add_argument("--result", type=Path, default=RESULTS / "demo.json", help="where to write the figures")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    from zerosearch.demo.config import load_demo_config
    from zerosearch.demo.report import terminal_summary
    from zerosearch.demo.runner import run_demo
    from zerosearch.provenance import package_versions

    args = parse_args(argv)
    config = load_demo_config(args.config, out=args.out)
    load_start = os.getloadavg()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    results = run_demo(config, log=log)
    stages = results.stages
    result = {
        "command": " ".join(["python", "benchmarks/bench_demo.py", *(sys.argv[1:] if argv is None else argv)]),
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
        "arms": {a.name: {"greedy": a.greedy.model_dump(), "sampled": a.sampled.model_dump(),
                          "seeds": [s.model_dump() for s in a.seeds], "cost": a.cost.model_dump(),
                          "shadow": a.shadow.model_dump() if a.shadow else None} for a in results.arms},
        "simulator_quality": results.simulator_quality.get("table", {}),
        "config": results.config,
    }
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(terminal_summary(results))
    print(f"wrote {args.result}")
    return result


if __name__ == "__main__":
    main()
