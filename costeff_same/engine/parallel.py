"""Independent cached stages trained side by side, one intra-op thread each.

On a small CPU the second intra-op thread buys little for a slender model: measured on the
2-core machine of this project, a training step of the 2-head COST-EFF model takes 258 ms
on two threads and 271 ms on one, and two one-thread processes run side by side at 255 ms
a step each. Training two independent stages at once, one thread each, nearly doubles the
throughput of chapter 2. It also makes each stage's result independent of the machine:
PyTorch's CPU reductions split their work by thread count, so the same stage trained on
one and on two threads differs in the last bits and, after hundreds of steps, in accuracy.

:func:`run_graph` runs a graph of tasks (each a picklable callable with its arguments and
the names of the tasks it needs first) in ``workers`` spawned processes (quiet: no library
progress bars), or in this one when ``workers == 1``; tasks communicate through the
results cache only (:func:`costeff_same.engine.results.load_or_run`), never through return values.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

#: intra-op threads of every task (see the module docstring)
TASK_THREADS = 1


@dataclass(frozen=True)
class Task:
    """One unit of work of a graph.

    Attributes:
        fn: a module-level (picklable) callable; its return value is discarded.
        args: its positional arguments (picklable).
        needs: names of the tasks that must finish first.
    """

    fn: Callable[..., Any]
    args: tuple = ()
    needs: tuple[str, ...] = field(default_factory=tuple)


@contextmanager
def one_thread():
    """Run the block with :data:`TASK_THREADS` intra-op threads, then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(TASK_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:      # not on Linux
        return max(1, os.cpu_count() or 1)


def _ready_order(tasks: Mapping[str, Task]) -> list[str]:
    """The task names in an order that respects ``needs``.

    Raises:
        ValueError: for a need that names no task, or a cycle.
    """
    for name, task in tasks.items():
        unknown = [n for n in task.needs if n not in tasks]
        if unknown:
            raise ValueError(f"task {name!r} needs unknown task(s) {unknown}; known: {', '.join(tasks)}")
    order: list[str] = []
    remaining = dict(tasks)
    while remaining:
        ready = [n for n, t in remaining.items() if all(d in order for d in t.needs)]
        if not ready:
            raise ValueError(f"tasks {sorted(remaining)} need each other (a cycle)")
        order.extend(ready)
        for n in ready:
            del remaining[n]
    return order


def _quiet_worker() -> None:
    """A worker's set-up: no progress bars or info logs of ``datasets``/``transformers``
    (from several processes at once they interleave into noise, in a notebook as stderr)."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _run_task(fn: Callable[..., Any], args: tuple) -> None:
    with one_thread():
        fn(*args)


def run_graph(tasks: Mapping[str, Task], workers: int) -> list[str]:
    """Run every task once its ``needs`` have finished, ``workers`` at a time.

    Tasks become ready in the order of ``tasks`` (put the longest chain first). Each runs
    on :data:`TASK_THREADS` intra-op thread(s), in a process of its own pool
    (``spawn``: no OpenMP state is inherited) or, with ``workers == 1``, in this process.

    Args:
        tasks: ``{name: Task}``.
        workers: processes side by side (>= 1).

    Returns:
        The task names in the order they finished.

    Raises:
        ValueError: for ``workers < 1``, an unknown need or a cycle.
        Exception: the first error a task raised (the tasks already running finish first;
            the finished ones stay cached).
    """
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    order = _ready_order(tasks)
    if workers == 1:
        for name in order:
            _run_task(tasks[name].fn, tasks[name].args)
        return order
    finished: list[str] = []
    pending = dict(tasks)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                             initializer=_quiet_worker) as pool:
        running = {}
        while pending or running:
            for name in [n for n, t in pending.items() if all(d in finished for d in t.needs)]:
                task = pending.pop(name)
                running[pool.submit(_run_task, task.fn, task.args)] = name
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                future.result()         # re-raises the task's error here
                finished.append(name)
    return finished
