"""Run named tasks on worker processes, each as soon as the tasks it needs are done.

Why: the demo and the real-model RL benchmark are both a handful of long CPU jobs (warm-start, simulator,
RL runs, evaluations) with a few dependencies between them. On a 2-core machine two one-thread processes
get more work done than one two-thread process (SmolLM2 scales ~1.6x from 1 to 2 threads), so both run
their jobs through this one scheduler instead of each keeping its own.

Workers are *spawned*, not forked (a forked process would inherit torch's thread pools). ``work`` must
therefore be picklable: a module-level function, or a ``functools.partial`` of one. It is called as
``work(task_name)`` in a worker and returns a JSON-able record of that task (timings, say).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Task:
    """One unit of work: its name and the names of the tasks that must finish first."""

    name: str
    deps: tuple[str, ...] = ()


class TaskGraphError(RuntimeError):
    """The tasks cannot all run: a dependency is neither planned nor done."""


def die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to SIGTERM this worker when the scheduling process dies.

    Why: ``kill <pid>`` of the main process (not Ctrl-C, which signals the whole process group) would
    otherwise leave its workers running their task to the end, writing into a directory a rerun may be
    using. Elsewhere (no ``prctl``) this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def check_graph(tasks: Iterable[Task], done: Iterable[str] = ()) -> None:
    """Refuse a plan in which some task waits on a name that is neither another task nor already done."""
    tasks = list(tasks)
    known = {t.name for t in tasks} | set(done)
    missing = {f"{t.name} -> {d}" for t in tasks for d in t.deps if d not in known}
    if missing:
        raise TaskGraphError(f"tasks wait on tasks that are not planned: {', '.join(sorted(missing))}")


def run_task_graph(tasks: list[Task], work: Callable[[str], dict[str, Any]], workers: int,
                   log: Callable[[str], None] = print, done: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Run ``tasks`` (in list order among the ready ones) on ``workers`` spawned processes.

    ``done`` names tasks finished earlier (their dependants may start at once). Returns each task's record
    from ``work``. A task that raises stops the run: its exception is raised here after the running tasks
    end, so nothing is left half-written by a killed worker.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    finished = set(done)
    check_graph(tasks, finished)
    pending = [t for t in tasks if t.name not in finished]
    records: dict[str, dict[str, Any]] = {}
    if not pending:
        return records
    running: dict[Future, Task] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent) as pool:
        while pending or running:
            for task in [t for t in pending if set(t.deps) <= finished][: workers - len(running)]:
                pending.remove(task)
                log(f"start {task.name}")
                running[pool.submit(work, task.name)] = task
            if not running:  # unreachable after check_graph unless a dependency cycle exists
                raise TaskGraphError(f"tasks {[t.name for t in pending]} wait on each other (a cycle)")
            ended, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in ended:
                task = running.pop(future)
                records[task.name] = future.result()  # a failed task raises here, naming its error
                finished.add(task.name)
                log(f"done {task.name}")
    return records
