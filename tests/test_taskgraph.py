"""The shared scheduler (``zerosearch.taskgraph``) on real spawned worker processes: a task starts only after
the tasks it needs have ended, finished tasks are not run again, a failing task's error reaches the caller,
and a plan that waits on an unplanned task is refused before anything runs."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import pytest

from zerosearch.taskgraph import (
    Task,
    TaskGraphError,
    check_graph,
    report_progress,
    run_task_graph,
    spare_workers,
)


def record_times(name: str, directory: str) -> dict[str, float]:
    """A worker's task: note when it started and ended (module level, so spawned workers can import it)."""
    start = time.time()
    if name == "boom":
        raise ValueError("task boom failed on purpose")
    time.sleep(0.3)
    times = {"start": start, "end": time.time()}
    (Path(directory) / f"{name}.json").write_text(json.dumps(times))
    return times


def reporting(name: str) -> dict[str, int]:
    """A worker's task that reports 8 steps of progress and notes how many workers sat idle meanwhile."""
    spare = []
    for step in range(1, 9):
        time.sleep(0.6 if name == "long" else 0.05)
        report_progress(step, 8)
        spare.append(spare_workers())
    return {"max_spare": max(spare), "last_spare": spare[-1]}


def test_progress_reaches_the_log_once_per_quarter_with_an_eta_and_idle_workers_are_offered() -> None:
    """The long task reports every step; the log shows it at 25/50/75% only, with an ETA; once the short task
    is done and nothing else is ready, the long task sees one spare worker."""
    lines: list[str] = []
    records = run_task_graph([Task("long"), Task("short")], reporting, 2, lines.append)
    shown = [line for line in lines if line.startswith("  long:")]
    assert [line.split("(")[1].split(")")[0] for line in shown] == ["25%", "50%", "75%"], lines
    assert all("ETA" in line and "/8 steps" in line for line in shown)
    assert records["long"]["last_spare"] == 1 and records["short"]["max_spare"] == 0
    report_progress(1, 2)  # outside a worker: nothing to report to, no error
    assert spare_workers() == 0


def test_dependants_start_after_their_dependencies_end_on_two_workers(tmp_path: Path) -> None:
    tasks = [Task("a"), Task("b"), Task("c", ("a", "b")), Task("d", ("c",))]
    lines: list[str] = []
    records = run_task_graph(tasks, partial(record_times, directory=str(tmp_path)), 2, lines.append)
    assert set(records) == {"a", "b", "c", "d"}
    assert records["c"]["start"] >= max(records["a"]["end"], records["b"]["end"])
    assert records["d"]["start"] >= records["c"]["end"]
    assert records["a"]["start"] < records["b"]["end"] and records["b"]["start"] < records["a"]["end"]  # in parallel
    assert lines[:2] == ["start a", "start b"] and lines[-1] == "done d"


def test_finished_tasks_are_not_run_again(tmp_path: Path) -> None:
    records = run_task_graph([Task("a"), Task("b", ("a",))], partial(record_times, directory=str(tmp_path)), 1,
                             lambda _: None, done={"a"})
    assert set(records) == {"b"} and not (tmp_path / "a.json").exists()
    assert run_task_graph([Task("a")], partial(record_times, directory=str(tmp_path)), 1, done={"a"}) == {}


def test_a_failing_task_raises_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="task boom failed on purpose"):
        run_task_graph([Task("boom"), Task("after", ("boom",))], partial(record_times, directory=str(tmp_path)), 2,
                       lambda _: None)
    assert not (tmp_path / "after.json").exists()


def test_unplanned_dependencies_and_bad_worker_counts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TaskGraphError, match="b -> missing"):
        check_graph([Task("a"), Task("b", ("missing",))])
    check_graph([Task("b", ("a",))], done={"a"})  # done elsewhere is fine
    with pytest.raises(TaskGraphError, match="not planned"):
        run_task_graph([Task("b", ("a",))], partial(record_times, directory=str(tmp_path)), 1)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        run_task_graph([Task("a")], partial(record_times, directory=str(tmp_path)), 0)


def test_workers_end_when_the_scheduling_process_is_killed(tmp_path: Path) -> None:
    """``kill`` of the main process (SIGKILL here, so it cannot clean up) takes its workers with it (Linux)."""
    import os
    import signal
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux-only; elsewhere workers finish their task")
    script = (
        "import time, sys\n"
        "from functools import partial\n"
        "from zerosearch.taskgraph import Task, run_task_graph\n"
        "def sleeper(name, directory):\n"
        "    import os, pathlib, time\n"
        "    pathlib.Path(directory, 'worker.pid').write_text(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "    return {}\n"
        "if __name__ == '__main__':\n"
        f"    run_task_graph([Task('a')], partial(sleeper, directory={str(tmp_path)!r}), 1, lambda _: None)\n"
    )
    (tmp_path / "main.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    main = subprocess.Popen([sys.executable, str(tmp_path / "main.py")], cwd=tmp_path, env=env)
    pid_file = tmp_path / "worker.pid"
    deadline = time.time() + 60
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    worker = int(pid_file.read_text())
    main.send_signal(signal.SIGKILL)
    main.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    pytest.fail(f"worker {worker} outlived its killed parent")
