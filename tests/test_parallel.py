"""The task graph that trains chapter 2's independent stages side by side."""

from pathlib import Path

import pytest
import torch

from costeff_same.engine.parallel import TASK_THREADS, Task, one_thread, run_graph


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


def test_a_stage_trained_in_a_worker_equals_the_stage_trained_here(tmp_path, monkeypatch):
    """Chapter 2's results do not depend on how many stages train side by side."""
    from costeff_same.chapters.costeff import costeff_config
    from costeff_same.compression.graph import train_models, training_graph
    from costeff_same.foundations.config import load_profile

    params = {**load_profile("smoke")["02_costeff"], "ablations": False, "static_heads": [1], "depth_layers": [1]}
    cfg = costeff_config(**params)
    weights = {}
    for workers in (2, 1):
        monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(tmp_path / f"workers{workers}"))
        finished = train_models(cfg, workers)
        assert finished[0] == "teacher" and sorted(finished) == sorted(cfg.models())
        assert finished.index("ta") < finished.index("costeff")
        from costeff_same.compression.pipeline import recovered_model

        weights[workers] = recovered_model(cfg.costeff)[0].state_dict()
        assert train_models(cfg, workers) == ["teacher", *training_graph(cfg)]   # all cached: nothing trains
    assert weights[1].keys() == weights[2].keys()
    for key, value in weights[1].items():
        assert torch.equal(value, weights[2][key]), key
