"""benchmarks/bench_policy_rl.py's stage cache: a finished stage is reused on rerun, a stage run with other
settings is refused (not silently reused), ``redo`` runs it again; and its summaries read metrics rows."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_policy_rl", ROOT / "benchmarks" / "bench_policy_rl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_finished_stage_is_reused_and_not_run_again(bench, tmp_path):
    calls = []

    def run():
        calls.append(1)
        return {"f1": 0.25, "path": tmp_path / "model"}

    first = bench.cached_stage(tmp_path / "eval", {"tokens": 64, "dir": tmp_path}, run)
    second = bench.cached_stage(tmp_path / "eval", {"tokens": 64, "dir": tmp_path}, run)
    assert calls == [1]
    assert not first["cached"] and second["cached"]
    assert second["record"] == {"f1": 0.25, "path": str(tmp_path / "model")} == first["record"]
    assert second["seconds"] == first["seconds"] >= 0
    assert json.loads((tmp_path / "eval" / "stage.json").read_text())["settings"]["tokens"] == 64


def test_other_settings_are_refused_and_redo_runs_again(bench, tmp_path):
    values = iter([1, 2])
    bench.cached_stage(tmp_path / "rl", {"steps": 4}, lambda: {"v": next(values)})
    with pytest.raises(bench.StageSettingsChanged, match=r"differ: steps\); pass --redo rl"):
        bench.cached_stage(tmp_path / "rl", {"steps": 5}, lambda: {"v": 0})
    again = bench.cached_stage(tmp_path / "rl", {"steps": 5}, lambda: {"v": next(values)}, redo=True)
    assert again == {**again, "cached": False, "record": {"v": 2}, "settings": {"steps": 5}}
    assert bench.cached_stage(tmp_path / "rl", {"steps": 5}, lambda: {"v": 9})["record"] == {"v": 2}


def test_a_failed_stage_leaves_no_marker(bench, tmp_path):
    def boom():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        bench.cached_stage(tmp_path / "sim", {}, boom)
    assert not (tmp_path / "sim" / "stage.json").exists()
    assert not bench.cached_stage(tmp_path / "sim", {}, lambda: {"ok": True})["cached"]


def test_step_summary_and_targets(bench):
    rows = [{"step": 1, "rollout/reward": 0.2, "time/rollout_s": 10.0, "time/update_s": 20.0, "shadow/agree": 0.5},
            {"step": 2, "rollout/reward": 0.4, "time/rollout_s": 30.0, "time/update_s": 40.0, "shadow/agree": 1.0,
             "val/f1": 0.3, "val/answer_rate": 1.0}]
    summary = bench.step_summary(rows)
    assert summary["reward"] == [[1, 0.2], [2, 0.4]] and summary["val_f1"] == [[2, 0.3]]
    assert summary["mean_times_s"]["step_s"] == pytest.approx(50.0)
    assert summary["shadow_mean"] == {"shadow/agree": 0.75}
    before = {"agent": {"f1": 0.2}}
    runs = {"bm25-seed0": {"after": {"agent": {"f1": 0.30}}}, "bm25-seed1": {"after": {"agent": {"f1": 0.26}}},
            "simulator-seed0": {"after": {"agent": {"f1": 0.1}}}}
    met = bench.targets(before, runs)
    assert met["bm25_seed_spread"] == pytest.approx(0.04) and met["bm25_min_gain"] == pytest.approx(0.06)
    assert met["rl_gain_beyond_seed_spread"] and met["simulator_arm_reported"]
    runs["bm25-seed1"]["after"]["agent"]["f1"] = 0.21
    assert not bench.targets(before, runs)["rl_gain_beyond_seed_spread"]


def test_a_run_cut_short_is_reported_not_dropped(bench, tmp_path):
    row = {"step": 1, "rollout/reward": 0.1, "time/rollout_s": 1.0, "time/update_s": 2.0}
    for name in ("rl-bm25-seed1", "rl-bm25-seed0"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "rl-bm25-seed0" / "stage.json").write_text("{}")
    found = bench.incomplete_runs(tmp_path, finished={})
    assert list(found) == ["bm25-seed1"] and found["bm25-seed1"]["steps_logged"] == 1
    assert bench.incomplete_runs(tmp_path, finished={"bm25-seed1": {}}) == {}


def test_the_parallel_plan_trains_the_simulator_beside_the_warm_start(bench, tmp_path):
    """``--workers 2`` runs the stages as a task graph: the simulator needs only the split (not the warm-start),
    each RL run needs the warm-start (the simulator arm also the simulator), each evaluation its RL run; the
    simulator arm's long chain is queued first."""
    from zerosearch.taskgraph import Task, check_graph

    args = bench.parse_args(["--out", str(tmp_path), "--rl-seeds", "0,1", "--sim-seeds", "0", "--sampled"])
    ws = bench.warmstart_config(args)  # not prepare(): it would set this test process's torch threads
    specs = bench.stage_specs(args, ws)
    deps = {name: spec[0] for name, spec in specs.items()}
    assert deps["warmstart"] == () and deps["simulator"] == ()
    assert deps["rl-simulator-seed0"] == ("warmstart", "simulator") and deps["rl-bm25-seed1"] == ("warmstart",)
    assert deps["eval-bm25-seed0"] == ("rl-bm25-seed0",) and deps["eval-bm25-seed0-sampled"] == ("rl-bm25-seed0",)
    assert deps["eval-before"] == ("warmstart",)
    check_graph([Task(n, d) for n, d in deps.items()])
    assert bench.run_names(args) == [("simulator", 0), ("bm25", 0), ("bm25", 1)]
    sim_config = specs["rl-simulator-seed0"][1]["config"]
    assert sim_config["engine"]["generator"]["model"] == str(tmp_path / "simulator" / "model")
    assert specs["rl-bm25-seed1"][1]["config"]["seed"] == 1
    assert bench.parse_args([]).workers == 2
