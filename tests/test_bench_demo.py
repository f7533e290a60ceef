"""``benchmarks/bench_demo.py --time-file``: the `/usr/bin/time -v` report of a timed ``make demo`` is read into
the benchmark's JSON (the report below is the one of a real fresh-clone run, with pip's warnings before it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPORT = """WARNING: Location 'file:///opt/pypi-more/simple/mpmath/' is ignored: it is neither a file nor a directory.
\tCommand being timed: "make demo"
\tUser time (seconds): 734.66
\tSystem time (seconds): 44.05
\tPercent of CPU this job got: 179%
\tElapsed (wall clock) time (h:mm:ss or m:ss): 7:14.57
\tMaximum resident set size (kbytes): 1942256
\tExit status: 0
"""


def load_bench_demo():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_demo.py"
    spec = importlib.util.spec_from_file_location("bench_demo", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_time_report_gives_wall_cpu_and_peak_memory(tmp_path: Path) -> None:
    path = tmp_path / "time.txt"
    path.write_text(REPORT)
    timed = load_bench_demo().gnu_time(path)
    assert timed["command"] == "make demo" and timed["exit_status"] == 0
    assert timed["wall_seconds"] == pytest.approx(434.57)
    assert timed["cpu_seconds"] == pytest.approx(778.71)
    assert timed["peak_rss_mib"] == pytest.approx(1942256 / 1024)


def test_a_file_that_is_not_a_time_report_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("start warmstart\ndone warmstart\n")
    with pytest.raises(ValueError, match="not a `/usr/bin/time -v` report"):
        load_bench_demo().gnu_time(path)


def test_time_file_needs_a_finished_run() -> None:
    with pytest.raises(SystemExit):
        load_bench_demo().parse_args(["--time-file", "time.txt"])


def _row(useful: float, leak: float) -> dict:
    return {"useful_hit": useful, "format_valid": 0.5, "noisy_leak": leak, "leniency": 0.3, "queries": 10}


def test_simulator_reports_give_each_split_beside_the_engine_and_the_curve(tmp_path: Path) -> None:
    """A hand-written report.json in the layout `simulator pipeline` writes (tested in test_simulator_pipeline)."""
    report = {"splits": {
        "heldout_queries": {"description": "RL's split", "table": {"reference": _row(0.4, float("nan")),
                                                                  "tuned": _row(0.3, 0.1)}},
        "heldout_questions": {"description": "generalisation", "table": {"reference": _row(0.6, float("nan")),
                                                                       "tuned": _row(0.2, 0.2)}}},
        "curve": [{"epoch": 0.5, "useful_hit": 0.1}], "curve_reference": _row(0.4, float("nan"))}
    import json

    (tmp_path / "report.json").write_text(json.dumps(report))
    bench = load_bench_demo()
    blocks = bench.simulator_reports([f"sim={tmp_path}"])
    assert blocks["simulators"]["sim"]["heldout_queries"]["useful_hit"] == 0.3
    assert blocks["simulators"]["sim"]["heldout_questions"]["noisy_leak"] == 0.2
    assert blocks["reference"]["heldout_queries"]["useful_hit"] == 0.4
    assert blocks["reference"]["heldout_questions"]["description"] == "generalisation"
    assert blocks["curves"]["sim"]["points"] == [{"epoch": 0.5, "useful_hit": 0.1}]
    assert json.loads(json.dumps(bench.json_safe({"x": float("nan")}))) == {"x": None}
    (tmp_path / "report.json").write_text(json.dumps({"table": {}}))
    with pytest.raises(SystemExit, match="no splits"):
        bench.simulator_reports([f"sim={tmp_path}"])
