"""The stage graph: independent cached stages run side by side, on this machine or a Dask cluster.

A graph is ``{name: Task}``: each :class:`Task` a picklable callable with its arguments and
the names of the tasks it needs first. :func:`run_graph` hands every task whose needs have
finished to a ``concurrent.futures``-style executor:

- ``local`` (the default): a pool of ``workers`` processes on this machine, started with
  ``spawn`` (no OpenMP state is inherited), or this process when ``workers == 1``;
- ``dask``: Dask distributed's executor (``Client.get_executor``), on a ``LocalCluster`` of
  one single-threaded worker process per core, or on a running cluster joined at a
  scheduler address (for example one started by ``dask-jobqueue``'s ``SLURMCluster``;
  ``book/reproduce.md`` shows how);
- any ``concurrent.futures.Executor`` a caller passes.

The executor and the worker count are run settings (:mod:`costeff_same.foundations.runtime`).
Every task runs on one intra-op thread (:mod:`costeff_same.engine.threads`), so a stage's
result is the same whichever executor, worker or core count ran it. Tasks communicate
only through the results cache (:func:`costeff_same.engine.results.load_or_run`), never
through return values, so the results folder must be one that every worker sees: each task
first checks a marker that :func:`run_graph` left there and fails at once, naming the
folder, on a worker that cannot see it.

A chapter is a graph of its stages: :func:`stage_task` makes one cached stage a task,
:func:`run_stages` runs a chapter's graph and then its own stage in this process, and a
study of seeds x chapters is the union of their graphs (:mod:`costeff_same.study`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from costeff_same.engine.results import entry_dir, is_cached, load_or_run
from costeff_same.engine.threads import available_cores, one_thread
from costeff_same.foundations import runtime
from costeff_same.foundations.config import StageConfig
from costeff_same.foundations.paths import results_dir

#: seconds to wait for a Dask scheduler before giving up
CONNECT_TIMEOUT_S = 10
#: the results cache's environment variable, passed to every worker with the run settings
RESULTS_ENV = "COSTEFF_SAME_RESULTS"


class SchedulerError(ConnectionError):
    """The Dask scheduler named by the run settings cannot be reached."""


class ResultsFolderError(OSError):
    """A worker cannot see the results folder through which the graph's stages communicate."""


@dataclass(frozen=True)
class Task:
    """One unit of work of a graph.

    Attributes:
        fn: a module-level (picklable) callable; its return value is discarded.
        args: its positional arguments (picklable).
        needs: names of the tasks that must finish first.
        entry: ``(stage name, config, stage function)`` of the cache entry the task
            computes, when it is known before the task runs: a task whose entry is cached
            counts as finished without running (:func:`stage_task`).
        exclusive: the task runs alone, nothing beside it: it measures wall-clock time
            (a chapter record's timings), which another task on the other cores would skew.
            It starts once no other task is running or ready to run.
    """

    fn: Callable[..., Any]
    args: tuple = ()
    needs: tuple[str, ...] = field(default_factory=tuple)
    entry: tuple[str, StageConfig, Callable] | None = None
    exclusive: bool = False


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


def _quiet() -> None:
    """A worker's set-up: no progress bars or info logs of ``datasets``/``transformers``
    (from several processes at once they interleave into noise, in a notebook as stderr)."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def check_results_folder(folder: str, marker: str) -> None:
    """Fail unless this worker sees ``folder`` as the graph's caller left it (its ``marker`` file).

    Raises:
        ResultsFolderError: naming the folder and this worker's host.
    """
    if not (Path(folder) / marker).is_file():
        raise ResultsFolderError(
            f"the results folder {folder} is not visible from worker {socket.gethostname()} (pid {os.getpid()}): "
            f"the stages of a graph communicate through it, so it must be on a filesystem every worker mounts at "
            f"the same path (set {RESULTS_ENV} to such a folder)")


def _run_task(fn: Callable[..., Any], args: tuple, settings: dict[str, str], marker: str | None) -> None:
    """Run one task in a worker: the caller's run settings and results folder, quiet, one thread."""
    os.environ.update(settings)
    if marker is not None:
        check_results_folder(settings[RESULTS_ENV], marker)
        _quiet()
    with one_thread():
        fn(*args)


@contextmanager
def local_pool(workers: int) -> Iterator[Executor]:
    """A pool of ``workers`` processes on this machine (``spawn``), shut down on leaving."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@contextmanager
def dask_executor(workers: int, scheduler: str | None = None) -> Iterator[Executor]:
    """Dask distributed's ``concurrent.futures`` executor, closed on leaving.

    Args:
        workers: single-threaded worker processes of the ``LocalCluster`` (without ``scheduler``).
        scheduler: the address of a running scheduler to join (``tcp://HOST:PORT``) instead.

    Raises:
        SchedulerError: when ``scheduler`` cannot be reached within :data:`CONNECT_TIMEOUT_S`.
    """
    from distributed import Client, LocalCluster  # the optional engine, loaded when asked for

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as err:
            raise SchedulerError(
                f"cannot reach the Dask scheduler at {scheduler!r} within {CONNECT_TIMEOUT_S} s "
                f"({type(err).__name__}: {err}); start it first (`dask scheduler`, or dask-jobqueue's "
                f"SLURMCluster), or leave the scheduler out for a LocalCluster on this machine") from None
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def configured_executor(workers: int) -> Iterator[Executor]:
    """The executor the run settings name (:func:`costeff_same.foundations.runtime.executor_name`)."""
    if runtime.executor_name() == "dask":
        with dask_executor(workers, runtime.setting("scheduler")) as executor:
            yield executor
    else:
        with local_pool(workers) as executor:
            yield executor


def _submit_all(tasks: dict[str, Task], executor: Executor, settings: dict[str, str], marker: str) -> list[str]:
    """Submit each task once its needs have finished; an exclusive task only once nothing else
    is running or ready, and nothing beside it while it runs."""
    finished: list[str] = []
    pending = dict(tasks)
    running = {}
    while pending or running:
        ready = [n for n, t in pending.items() if all(d in finished for d in t.needs)]
        if not any(tasks[n].exclusive for n in running.values()):
            shared = [n for n in ready if not tasks[n].exclusive]
            alone = [n for n in ready if tasks[n].exclusive]
            for name in shared or (alone[:1] if not running else []):
                task = pending.pop(name)
                running[executor.submit(_run_task, task.fn, task.args, settings, marker)] = name
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            name = running.pop(future)
            future.result()         # re-raises the task's error here
            finished.append(name)
    return finished


def worker_count(workers: int | None = None) -> int:
    """``workers``, or (None) the run setting, else one per available core.

    Raises:
        ValueError: for ``workers < 1``.
    """
    workers = workers if workers is not None else runtime.workers() or available_cores()
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    return workers


def run_graph(tasks: Mapping[str, Task], workers: int | None = None, executor: Executor | None = None) -> list[str]:
    """Run every task once its ``needs`` have finished, ``workers`` at a time.

    Tasks become ready in the order of ``tasks`` (put the longest chain first). A task whose
    :attr:`Task.entry` is cached counts as finished and does not run. Each task runs on one
    intra-op thread, with this process's run settings and results folder.

    Args:
        tasks: ``{name: Task}``.
        workers: tasks side by side (None: the run setting, else one per available core);
            with 1 and no ``executor``, the tasks run in this process, one after another.
        executor: a ``concurrent.futures``-style executor to submit to (None: the one the run
            settings name, :func:`configured_executor`, made for this graph and shut down after).

    Returns:
        The names of the tasks that ran, in the order they finished.

    Raises:
        ValueError: for ``workers < 1``, an unknown need or a cycle.
        SchedulerError: for a Dask scheduler that cannot be reached.
        ResultsFolderError: from a worker that cannot see the results folder.
        Exception: the first error a task raised (the tasks already running finish first;
            the finished ones stay cached).
    """
    workers = worker_count(workers)
    order = _ready_order(tasks)
    done = {n for n in order if tasks[n].entry is not None and is_cached(*tasks[n].entry)}
    todo = {n: dataclasses.replace(tasks[n], needs=tuple(d for d in tasks[n].needs if d not in done))
            for n in order if n not in done}
    if not todo:
        return []
    folder = results_dir()
    settings = {env: value for env in (RESULTS_ENV, *runtime.ENV.values())
                if (value := os.environ.get(env)) is not None}
    settings[RESULTS_ENV] = str(folder)
    if executor is None and workers == 1:
        for name in todo:
            _run_task(todo[name].fn, todo[name].args, settings, None)
        return list(todo)
    marker = Path(".graph") / uuid.uuid4().hex
    (folder / marker).parent.mkdir(exist_ok=True)
    (folder / marker).touch()
    try:
        if executor is not None:
            return _submit_all(todo, executor, settings, str(marker))
        with configured_executor(min(workers, len(todo))) as pool:
            return _submit_all(todo, pool, settings, str(marker))
    finally:
        (folder / marker).unlink(missing_ok=True)


# -- cached stages as tasks -------------------------------------------------------------------

def _load_or_run(name: str, cfg: StageConfig, fn: Callable, seed: int | None) -> None:
    load_or_run(name, cfg, fn, seed=seed)


def stage_name(name: str, cfg: StageConfig, fn: Callable | None = None) -> str:
    """A cached stage's task name: its entry's folder name (``<stage>-<key>``, of ``fn`` or the
    function registered for ``name``), the same in every graph."""
    return entry_dir(name, cfg, fn).name


def stage_task(name: str, cfg: StageConfig, fn: Callable, seed: int | None = None,
               needs: tuple[str, ...] = (), exclusive: bool = False) -> dict[str, Task]:
    """``{task name: Task}`` of one cached stage (:func:`~costeff_same.engine.results.load_or_run`
    of ``name``, ``cfg`` and ``fn``), counted as finished when its entry is cached; ``exclusive``
    for a stage that measures wall-clock time (:attr:`Task.exclusive`)."""
    return {stage_name(name, cfg, fn): Task(_load_or_run, (name, cfg, fn, seed), needs, entry=(name, cfg, fn),
                                            exclusive=exclusive)}


def part_name(name: str, cfg: StageConfig, *parts: str) -> str:
    """The task name of one part of stage ``name``'s work (``<stage>-<key>/<part>/...``): a task
    whose configs are known only once an earlier stage has run (an attack at chapter 1's
    operating point), so it cannot be named by an entry of its own."""
    return "/".join((stage_name(name, cfg), *parts))


def run_stages(name: str, cfg: StageConfig, fn: Callable, graph: Mapping[str, Task],
               seed: int | None = None) -> dict[str, Any]:
    """A chapter's record: the other stages of its ``graph`` first, side by side
    (:func:`run_graph`), then its own stage (``name``, ``cfg``, ``fn``) in this process.

    A cached record needs none of its stages, so nothing else runs then.
    """
    if not is_cached(name, cfg, fn):
        own = stage_name(name, cfg, fn)
        run_graph({n: dataclasses.replace(t, needs=tuple(d for d in t.needs if d != own))
                   for n, t in graph.items() if n != own})
    return load_or_run(name, cfg, fn, seed=seed)
