"""Run named tasks on worker processes, each as soon as the tasks it needs are done.

Why: the demo and the real-model RL benchmark are both a handful of long CPU jobs (warm-start, simulator,
RL runs, evaluations) with a few dependencies between them. On a 2-core machine two one-thread processes
get more work done than one two-thread process (SmolLM2 scales ~1.6x from 1 to 2 threads), so both run
their jobs through this one scheduler instead of each keeping its own.

Workers are *spawned*, not forked (a forked process would inherit torch's thread pools). ``work`` must
therefore be picklable: a module-level function, or a ``functools.partial`` of one. It is called as
``work(task_name)`` in a worker and returns a JSON-able record of that task (timings, say).

Inside a task, :func:`report_progress` sends ``(done, total)`` to the scheduler, which prints one line per
task as it passes each quarter, with an ETA (instead of each library's own bars and per-step dictionaries);
:func:`spare_workers` says how many workers sit idle because nothing else is ready, so a long task on the
critical path may take their cores (``torch.set_num_threads(1 + spare_workers())``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import queue
import signal
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

#: Seconds between the scheduler's looks at the progress queue.
POLL_SECONDS = 2.0
#: A task's progress is printed when it passes each of these shares of its total.
MILESTONES = (0.25, 0.5, 0.75)



@dataclass
class _WorkerState:
    """Set in each worker by the pool's initializer (None outside a worker: reporting is then a no-op)."""

    progress: Any = None  # multiprocessing Queue of (task, done, total, unit)
    idle: Any = None  # multiprocessing Value: workers with nothing ready to run
    task: str | None = None  # the task this worker is running


_WORKER = _WorkerState()


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


def _init_worker(progress: Any, idle: Any) -> None:
    """Worker initializer: die with the parent, and keep the channels to the scheduler."""
    die_with_parent()
    _WORKER.progress, _WORKER.idle = progress, idle


def _run(work: Callable[[str], dict[str, Any]], name: str) -> dict[str, Any]:
    """Run ``work(name)`` in a worker with ``name`` as the task that :func:`report_progress` reports on."""
    _WORKER.task = name
    try:
        return work(name)
    finally:
        _WORKER.task = None


def report_progress(done: float, total: float, unit: str = "steps") -> None:
    """Tell the scheduler how far the running task is (``done`` of ``total`` ``unit``); a no-op outside a
    worker of :func:`run_task_graph`, so library code may call it unconditionally."""
    if _WORKER.progress is None or _WORKER.task is None:
        return
    _WORKER.progress.put((_WORKER.task, float(done), float(total), unit))


def spare_workers() -> int:
    """Workers idle right now because no other task is ready (0 outside a worker)."""
    return 0 if _WORKER.idle is None else max(0, int(_WORKER.idle.value))


@dataclass
class _Progress:
    """What the scheduler knows of one running task's progress."""

    started: float
    printed: set[float] = field(default_factory=set)


def format_seconds(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a progress line.

    >>> format_seconds(75), format_seconds(3725)
    ('1:15', '1:02:05')
    """
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_line(task: str, done: float, total: float, unit: str, elapsed: float) -> str:
    """One task's progress with an ETA from its rate so far.

    >>> progress_line("arm:rl_real:0", 5, 20, "steps", 50.0)
    'arm:rl_real:0: 5/20 steps (25%), 0:50 elapsed, ETA 2:30'
    """
    share = done / total if total else 0.0
    eta = f", ETA {format_seconds(elapsed / done * (total - done))}" if 0 < done < total else ""
    return f"{task}: {done:g}/{total:g} {unit} ({share:.0%}), {format_seconds(elapsed)} elapsed{eta}"


def _drain(progress: Any, seen: dict[str, _Progress], log: Callable[[str], None]) -> None:
    """Print the milestones the running tasks passed since the last look."""
    while True:
        try:
            task, done, total, unit = progress.get_nowait()
        except queue.Empty:
            return
        state = seen.get(task)
        if state is None or total <= 0:
            continue
        passed = [m for m in MILESTONES if done / total >= m and m not in state.printed]
        if passed:
            state.printed.update(passed)
            log("  " + progress_line(task, done, total, unit, time.perf_counter() - state.started))


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
    progress, idle = context.Queue(), context.Value("i", 0)
    seen: dict[str, _Progress] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(progress, idle)) as pool:
        while pending or running:
            for task in [t for t in pending if set(t.deps) <= finished][: workers - len(running)]:
                pending.remove(task)
                log(f"start {task.name}")
                seen[task.name] = _Progress(time.perf_counter())
                running[pool.submit(_run, work, task.name)] = task
            if not running:  # unreachable after check_graph unless a dependency cycle exists
                raise TaskGraphError(f"tasks {[t.name for t in pending]} wait on each other (a cycle)")
            idle.value = workers - len(running)  # nothing else is ready: the running tasks may use these cores
            ended, _ = wait(list(running), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            _drain(progress, seen, log)
            for future in ended:
                task = running.pop(future)
                records[task.name] = future.result()  # a failed task raises here, naming its error
                finished.add(task.name)
                seen.pop(task.name, None)
                log(f"done {task.name}")
    return records
