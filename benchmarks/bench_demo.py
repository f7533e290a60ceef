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
    .venv/bin/python benchmarks/bench_demo.py --finished runs/demo   # judge a finished fresh run (make demo's)
    .venv/bin/python benchmarks/bench_demo.py --world hotpotqa --config configs/demo-hotpotqa-zerosearch.yaml \
        --simulator-report tuned=runs/sim-hotpotqa/report   # + the simulator's quality per split and curve

``--simulator-report NAME=DIR`` adds a simulator tuned before the run (a ``zerosearch simulator pipeline`` or
``simulator evaluate --heldout-queries ...`` report directory): its figures per split beside the real engine's
(``reference`` and ``simulators``) and its quality-per-epoch curve (``curves``).

``--finished DIR`` runs nothing: it reads a demo that already ran in DIR (for example the one ``/usr/bin/time
-v make demo`` timed on a fresh clone) and writes the same figures, provided DIR was built by a single
invocation that ran every task (a resumed or partly reused demo is refused: it is not a fresh run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", default="toy", help="toy, hotpotqa or a world YAML file")
    p.add_argument("--out", type=Path, default=None, help="demo output directory (default runs/demo-bench-<world>)")
    p.add_argument("--config", type=Path, default=None, help="YAML of DemoConfig fields merged into the world's")
    p.add_argument("--finished", type=Path, default=None,
                   help="a demo output directory built by one fresh invocation: report it instead of running")
    p.add_argument("--time-file", type=Path, default=None,
                   help="with --finished: the `/usr/bin/time -v` output of the command that ran it (make demo)")
    p.add_argument("--result", type=Path, default=None,
                   help="where to write the figures (default: demo.json, or real_text.json for hotpotqa)")
    p.add_argument("--simulator-report", action="append", default=[], metavar="NAME=DIR",
                   help="a simulator's report directory with splits (simulator pipeline/evaluate); repeatable")
    args = p.parse_args(argv)
    if args.finished is not None and args.out is not None:
        p.error("--finished DIR reads DIR; drop --out")
    if args.time_file is not None and args.finished is None:
        p.error("--time-file describes a finished run: give --finished DIR too")
    args.out = args.finished or args.out
    name = Path(args.world).stem
    args.out = args.out or Path(f"runs/demo-bench-{name}")
    default = {"toy": "demo.json", "hotpotqa": "real_text.json"}.get(name, f"demo_{name}.json")
    args.result = args.result or RESULTS / default
    return args


QUALITY_KEYS = ("useful_hit", "format_valid", "noisy_leak", "leniency", "reference_leniency",
                "hit_when_reference_misses", "mean_words", "queries")
REFERENCE_KEYS = ("useful_hit", "format_valid", "leniency", "mean_words", "queries")


def json_safe(value):
    """``value`` with NaN floats as None: strict JSON (a figure with no data, e.g. the engine's noisy leak).

    >>> json_safe({"a": [float("nan"), 1.0]})
    {'a': [None, 1.0]}
    """
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def simulator_reports(specs: list[str]) -> dict:
    """``reference``, ``simulators`` and ``curves`` blocks from ``NAME=DIR`` report directories with splits."""
    reference: dict = {}
    simulators: dict = {}
    curves: dict = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        report_path = Path(path) / "report.json"
        if not sep or not report_path.is_file():
            raise SystemExit(f"--simulator-report {spec!r}: expected NAME=DIR with DIR/report.json")
        report = json.loads(report_path.read_text("utf-8"))
        if "splits" not in report:
            raise SystemExit(f"{report_path} has one table, no splits: evaluate with --heldout-queries/-questions")
        simulators[name] = {"report": path}
        for split, body in report["splits"].items():
            tuned = [row for engine, row in body["table"].items() if engine != "reference"]
            simulators[name][split] = {k: tuned[0].get(k) for k in QUALITY_KEYS}
            reference.setdefault(split, {k: body["table"]["reference"].get(k) for k in REFERENCE_KEYS})
            reference[split]["description"] = body.get("description", split)
        if "curve" in report:
            curves[name] = {"points": report["curve"], "reference": {
                k: report["curve_reference"].get(k) for k in REFERENCE_KEYS}}
    return {"reference": reference, "simulators": simulators, "curves": curves}


def per_seed(arm, decodings: list[str]) -> dict:
    """An arm's scores as lists over its seeds, per metric, for the first decoding (the issue's shape)."""
    first = decodings[0]
    return {"f1": [s.scores[first].f1 for s in arm.seeds], "em": [s.scores[first].em for s in arm.seeds],
            "answered": [s.scores[first].answered for s in arm.seeds],
            "searches": [s.scores[first].searches for s in arm.seeds], "decoding": first,
            "by_decoding": {d: [s.scores[d].model_dump() for s in arm.seeds] for d in decodings}}


def finished_run(out: Path):
    """The results of a demo that one invocation built from nothing in ``out``; ValueError otherwise."""
    from zerosearch.demo.results import DemoResults

    results = DemoResults.read(out)
    timings = json.loads((out / "timings.json").read_text("utf-8"))
    runs = timings["invocations"]
    if len(runs) != 1 or set(runs[0]["ran"]) != set(timings["stages"]):
        raise ValueError(f"{out} was built by {len(runs)} invocations ({[r['ran'] for r in runs]}): not one fresh "
                         "run; rerun the demo into an empty directory, or drop --finished to run it here")
    return results


def gnu_time(path: Path) -> dict:
    """The figures of a ``/usr/bin/time -v`` report: command, wall and CPU seconds, peak RSS, exit status."""
    fields = {}
    for line in path.read_text("utf-8").splitlines():
        key, sep, value = line.strip().rpartition(": ")
        if sep:
            fields[key] = value
    try:
        h_m_s = [float(x) for x in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")]
        return {"command": fields["Command being timed"].strip('"'),
                "wall_seconds": sum(x * 60 ** i for i, x in enumerate(reversed(h_m_s))),
                "cpu_seconds": float(fields["User time (seconds)"]) + float(fields["System time (seconds)"]),
                "peak_rss_mib": int(fields["Maximum resident set size (kbytes)"]) / 1024,
                "exit_status": int(fields["Exit status"])}
    except KeyError as err:
        raise ValueError(f"{path} is not a `/usr/bin/time -v` report (no {err})") from err


def main(argv: list[str] | None = None) -> dict:
    from zerosearch.demo.config import load_demo_config
    from zerosearch.demo.report import terminal_summary
    from zerosearch.demo.runner import run_demo
    from zerosearch.provenance import package_versions

    args = parse_args(argv)
    from zerosearch.demo.claims import judge_claims

    load_start = os.getloadavg()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    if args.finished is not None:
        results = finished_run(args.finished)
    else:
        results = run_demo(load_demo_config(args.config, world=args.world, out=args.out), log=log)
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
        "timed_command": gnu_time(args.time_file) if args.time_file else None,
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
        "curves": {},
        "config": results.config,
    }
    if args.simulator_report:
        result.update(simulator_reports(args.simulator_report))
    if "rl_real" in result["arms"]:
        result["arms"]["bm25"] = result["arms"]["rl_real"]  # issue 19's name for the real-engine arm
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(json_safe(result), indent=2), encoding="utf-8")
    print(terminal_summary(results))
    print(f"wrote {args.result}")
    return result


if __name__ == "__main__":
    main()
