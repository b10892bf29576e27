"""Chapter 2's models as a stage graph: independent stages train side by side.

:func:`training_graph` lists every model of a :class:`~costeff_same.compression.experiment.CostEffExperimentConfig`-like
comparison but the teacher as a :class:`costeff_same.engine.parallel.Task`; :func:`train_models`
trains the teacher first (chapter 1's model), then the rest, ``workers`` independent
stages at a time, each on one thread (its result does not depend on the machine's core
count or the number of workers); :func:`model_graph` gives the same tasks to a study's graph.
"""

from __future__ import annotations

import dataclasses

from costeff_same.compression.pipeline import depth_model, is_trained, recovered_model, ta_model
from costeff_same.compression.stages import DepthConfig, RecoverConfig
from costeff_same.engine.parallel import Task, run_graph
from costeff_same.foundations.config import StageConfig
from costeff_same.zoo import model_task, trained_model


def stage_model(name: str, kind: str, cfg: StageConfig):
    """``(model, record)`` of one model of the comparison, trained or read from the cache."""
    if name == "teacher":
        return trained_model(cfg)
    if name == "ta":
        return ta_model(cfg)
    if isinstance(cfg, DepthConfig):
        return depth_model(cfg)
    return recovered_model(cfg)


def _learns_from_ta(stage: StageConfig) -> bool:
    return isinstance(stage, RecoverConfig) and stage.slenderize.ta is not None


def model_graph(cfg) -> dict[str, Task]:
    """Every model of ``cfg`` as a task of a larger graph (a study's): the teacher's training
    (chapter 1's, :func:`costeff_same.zoo.model_task`) first, then :func:`training_graph`'s
    tasks, named ``costeff/<model>-<config hash>`` so that they are unique across seeds."""
    teacher = model_task(cfg.teacher)
    graph, models = training_graph(cfg), cfg.models()
    names = {name: f"costeff/{name}-{models[name][1].config_hash()}" for name in graph}
    return teacher | {names[name]: Task(task.fn, task.args, (*teacher, *(names[n] for n in task.needs)))
                      for name, task in graph.items()}


def training_graph(cfg) -> dict[str, Task]:
    """Every model of ``cfg`` but the teacher as a :class:`costeff_same.engine.parallel.Task`.

    The models that learn from the TA need it first; the TA leads (it is the longest
    chain), then the models that learn from the teacher, then those that learn from the TA.
    """
    models = cfg.models()
    names = [n for n in models if n != "teacher"]
    ordered = [n for n in names if not _learns_from_ta(models[n][1])] + \
              [n for n in names if _learns_from_ta(models[n][1])]
    return {name: Task(stage_model, (name, *models[name]), ("ta",) if _learns_from_ta(models[name][1]) else ())
            for name in ordered}


def train_models(cfg, workers: int | None = None) -> list[str]:
    """Train (or find cached) every model of ``cfg``, ``workers`` independent stages at a time.

    The teacher comes first, in this process (it is chapter 1's model, usually cached);
    every other stage then trains in one of ``workers`` processes
    (:func:`costeff_same.engine.parallel.run_graph`). Every stage runs on one thread.

    Args:
        cfg: the comparison.
        workers: processes side by side (None: the run setting, else one per available core).

    Returns:
        The model names in the order they finished.

    Raises:
        ValueError: for ``workers < 1``.
    """
    trained_model(cfg.teacher)
    graph = training_graph(cfg)
    models = cfg.models()
    missing = {name: task for name, task in graph.items() if not is_trained(models[name][1])}
    for name, task in missing.items():      # a cached need is already met
        missing[name] = dataclasses.replace(task, needs=tuple(n for n in task.needs if n in missing))
    finished = run_graph(missing, workers) if missing else []
    return ["teacher"] + [n for n in graph if n not in missing] + finished
