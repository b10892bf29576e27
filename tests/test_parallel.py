"""The stage graph: tasks after their needs, on a local pool or a Dask cluster, one thread each."""

import json
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from costeff_same.engine.parallel import (
    ResultsFolderError,
    SchedulerError,
    Task,
    run_graph,
    stage_task,
)
from costeff_same.engine.threads import TASK_THREADS, available_cores, one_thread
from costeff_same.foundations import runtime
from costeff_same.foundations.config import ConfigError, TrainConfig, load_profile


def write_marker(folder: str, name: str, needs: tuple[str, ...]) -> None:
    """A task: fails unless its needs left their markers; leaves its own with its thread count."""
    for need in needs:
        if not (Path(folder) / need).exists():
            raise RuntimeError(f"{name} ran before {need}")
    (Path(folder) / name).write_text(str(torch.get_num_threads()))


def fail(message: str) -> None:
    raise RuntimeError(message)


def graph(folder: Path) -> dict[str, Task]:
    needs = {"ta": (), "static": (), "costeff": ("ta",), "ablation": ("ta",), "summary": ("costeff", "static")}
    return {name: Task(write_marker, (str(folder), name, deps), deps) for name, deps in needs.items()}


@pytest.mark.parametrize("workers", [1, 2])
def test_run_graph_runs_each_task_once_after_its_needs_on_one_thread(tmp_path, workers):
    tasks = graph(tmp_path)
    before = torch.get_num_threads()
    finished = run_graph(tasks, workers)
    assert sorted(finished) == sorted(tasks)
    for name, task in tasks.items():
        assert all(finished.index(need) < finished.index(name) for need in task.needs)
        assert (tmp_path / name).read_text() == str(TASK_THREADS)
    assert torch.get_num_threads() == before


def record_span(folder: str, name: str, seconds: float) -> None:
    """A task: sleeps ``seconds`` and leaves its ``[start, end]`` (wall clock) in a file."""
    start = time.time()
    time.sleep(seconds)
    (Path(folder) / name).write_text(json.dumps([start, time.time()]))


def test_an_exclusive_task_runs_with_nothing_beside_it(tmp_path):
    """A task that times something (a chapter's record) starts once the others are done and
    nothing starts beside it; the other tasks still run side by side."""
    # long enough that two workers' start-up skew (importing torch in each) cannot hide the overlap
    spans = {"a": (3.0, (), False), "timing": (0.5, (), True), "b": (3.0, (), False), "c": (2.0, ("timing",), False),
             "d": (2.0, ("timing",), False)}
    tasks = {n: Task(record_span, (str(tmp_path), n, sec), needs, exclusive=alone)
             for n, (sec, needs, alone) in spans.items()}
    run_graph(tasks, 2)
    got = {n: json.loads((tmp_path / n).read_text()) for n in tasks}
    t0, t1 = got["timing"]
    for name in ("a", "b", "c", "d"):
        start, end = got[name]
        assert end <= t0 or start >= t1, (name, got[name], got["timing"])
    overlap = lambda x, y: min(got[x][1], got[y][1]) > max(got[x][0], got[y][0])  # noqa: E731
    assert overlap("a", "b") and overlap("c", "d")


def test_run_graph_rejects_bad_graphs_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"task 'a' needs unknown task\(s\) \['b'\]"):
        run_graph({"a": Task(write_marker, (str(tmp_path), "a", ()), ("b",))}, 2)
    cycle = {"a": Task(write_marker, needs=("b",)), "b": Task(write_marker, needs=("a",))}
    with pytest.raises(ValueError, match=r"\['a', 'b'\] need each other"):
        run_graph(cycle, 1)
    with pytest.raises(ValueError, match="workers=0 must be >= 1"):
        run_graph(graph(tmp_path), 0)


def test_a_task_error_reaches_the_caller(tmp_path):
    tasks = {"ok": Task(write_marker, (str(tmp_path), "ok", ())), "bad": Task(fail, ("stage broke",))}
    with pytest.raises(RuntimeError, match="stage broke"):
        run_graph(tasks, 2)


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == TASK_THREADS
    assert torch.get_num_threads() == before


def count_epochs(cfg: TrainConfig, workdir: Path) -> dict:
    """A toy stage: its record holds the thread count it ran on."""
    return {"epochs": cfg.epochs, "threads": torch.get_num_threads()}


def test_a_cached_stage_counts_as_finished_and_does_not_run():
    tasks = stage_task("toy", TrainConfig(epochs=3), count_epochs)
    assert run_graph(tasks, 1) == list(tasks)
    assert run_graph(tasks, 2) == []            # cached: nothing is submitted
    tasks |= {"after": Task(fail, ("ran after the cached stage",), tuple(tasks))}
    with pytest.raises(RuntimeError, match="ran after the cached stage"):
        run_graph(tasks, 2)                     # its dependants still run


# -- errors a user can meet --------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_named(monkeypatch):
    monkeypatch.setattr("costeff_same.engine.parallel.CONNECT_TIMEOUT_S", 2)
    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setenv("COSTEFF_SAME_SCHEDULER", address)
    assert runtime.executor_name() == "dask"            # a scheduler address implies Dask
    with pytest.raises(SchedulerError, match=f"cannot reach the Dask scheduler at '{address}'"):
        run_graph({"a": Task(print, ("never",))}, 2)


class Elsewhere(ThreadPoolExecutor):
    """An executor whose worker sees another filesystem: the caller's marker is not there."""

    def __init__(self, folder: Path):
        super().__init__(1)
        self.folder = folder

    def submit(self, fn, *args, **kwargs):
        shutil.rmtree(self.folder / ".graph", ignore_errors=True)
        return super().submit(fn, *args, **kwargs)


def test_a_worker_that_cannot_see_the_results_folder_fails_at_once(private_results, tmp_path):
    with pytest.raises(ResultsFolderError, match=f"results folder {private_results} is not visible from worker"):
        run_graph({"a": Task(write_marker, (str(tmp_path), "a", ()))}, executor=Elsewhere(private_results))
    assert not (tmp_path / "a").exists()                # the task never ran


def test_unknown_run_settings_are_refused_with_the_accepted_ones(monkeypatch):
    with pytest.raises(ConfigError, match="unknown device 'tpu'; accepted: auto, cpu, cuda"):
        runtime.resolve_device("tpu")
    monkeypatch.setenv("COSTEFF_SAME_EXECUTOR", "ray")
    with pytest.raises(ConfigError, match="unknown executor 'ray'; accepted: local, dask"):
        run_graph({"a": Task(print)}, 2)
    monkeypatch.setenv("COSTEFF_SAME_WORKERS", "two")
    with pytest.raises(ConfigError, match=r"workers=two must be >= 1, a whole number \(COSTEFF_SAME_WORKERS='two'\)"):
        runtime.workers()
    with pytest.raises(ConfigError, match=r"unknown run setting\(s\) \['gpus'\]"):
        runtime.apply(gpus=2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_on_a_machine_without_one_is_refused_and_auto_means_the_cpu(monkeypatch):
    monkeypatch.delenv("COSTEFF_SAME_DEVICE", raising=False)
    with pytest.raises(runtime.DeviceError, match="device 'cuda' was asked for, but torch .* sees no CUDA device"):
        runtime.apply(device="cuda")
    assert runtime.setting("device") is None            # the refused value is not left behind
    assert runtime.resolve_device("auto") == runtime.resolve_device() == "cpu"


# -- the same results whatever runs them -------------------------------------------------------

def test_a_stage_trained_in_a_worker_equals_the_stage_trained_here(tmp_path, monkeypatch):
    """Chapter 2's results do not depend on how many stages train side by side."""
    from costeff_same.chapters.costeff import costeff_config
    from costeff_same.compression.graph import train_models, training_graph
    from costeff_same.compression.pipeline import recovered_model

    params = {**load_profile("smoke")["02_costeff"], "ablations": False, "static_heads": [1], "depth_layers": [1]}
    cfg = costeff_config(**params)
    weights = {}
    for workers in (2, 1):
        monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(tmp_path / f"workers{workers}"))
        finished = train_models(cfg, workers)
        assert finished[0] == "teacher" and sorted(finished) == sorted(cfg.models())
        assert finished.index("ta") < finished.index("costeff")
        weights[workers] = recovered_model(cfg.costeff)[0].state_dict()
        assert train_models(cfg, workers) == ["teacher", *training_graph(cfg)]   # all cached: nothing trains
    assert weights[1].keys() == weights[2].keys()
    for key, value in weights[1].items():
        assert torch.equal(value, weights[2][key]), key


def smoke_study_graph(seeds=(0, 1)) -> dict[str, Task]:
    """Chapter 1's victims and one attack unit (DeepWordBug on the entropy victim) per seed."""
    from costeff_same.chapters.accuracy_attacks import accuracy_attacks_config, accuracy_attacks_graph
    from costeff_same.study import with_seed

    params = {**load_profile("smoke")["03_accuracy_attacks"], "victims": ["entropy"], "recipes": ["deepwordbug"],
              "num_examples": 4}
    out: dict[str, Task] = {}
    for seed in seeds:
        out |= accuracy_attacks_graph(accuracy_attacks_config(**with_seed(params, seed)))
    return out


def computed(folder: Path) -> dict[str, object]:
    """What a run computed, without its clocks: each model's weights (sha256 of its files) and
    each attack unit's per-sentence results."""
    out = {}
    for entry in sorted(e for e in folder.glob("model-*") if e.is_dir()):
        files = json.loads((entry / "manifest.json").read_text())["files"]
        out[entry.name] = {k: v for k, v in files.items() if k.startswith("work/model/")}
    for entry in sorted(e for e in folder.glob("recipe_attack-*") if e.is_dir()):
        results = json.loads((entry / "result.json").read_text())["results"]
        out[entry.name] = [{k: v for k, v in r.items() if k != "seconds"} for r in results]
    return out


def test_a_smoke_study_on_a_dask_cluster_equals_the_local_pool(tmp_path, monkeypatch):
    runs = {}
    for executor in ("local", "dask"):
        monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(tmp_path / executor))
        monkeypatch.setenv("COSTEFF_SAME_EXECUTOR", executor)
        tasks = smoke_study_graph()
        finished = run_graph(tasks, 2)
        assert sorted(finished) == sorted(tasks)
        runs[executor] = computed(tmp_path / executor)
    assert len([k for k in runs["local"] if k.startswith("model-")]) == 4            # 2 victims x 2 seeds
    assert len([k for k in runs["local"] if k.startswith("recipe_attack-")]) == 2  # 1 unit x 2 seeds
    assert runs["dask"] == runs["local"]


TRAIN_ONE = """
import os, sys
os.sched_setaffinity(0, {cores})
from costeff_same.foundations.config import load_profile
from costeff_same.victims import multi_exit_config
from costeff_same.zoo import trained_model
trained_model(multi_exit_config(**load_profile("smoke")["01_multi_exit"]).victim("entropy"))
"""


@pytest.mark.skipif(available_cores() < 2, reason="needs two cores to compare one with two")
def test_a_victim_trained_on_one_core_equals_the_victim_trained_on_two(tmp_path):
    runs = {}
    for cores in ({0}, {0, 1}):
        folder = tmp_path / f"cores{len(cores)}"
        env = {**__import__("os").environ, "COSTEFF_SAME_RESULTS": str(folder)}
        subprocess.run([sys.executable, "-c", TRAIN_ONE.format(cores=cores)], env=env, check=True,
                       capture_output=True, text=True)
        (entry,) = (e for e in folder.glob("model-*") if e.is_dir())
        assert json.loads((entry / "provenance.json").read_text())["torch_threads"] == TASK_THREADS
        runs[len(cores)] = computed(folder)
    assert runs[1] == runs[2] and runs[1]
