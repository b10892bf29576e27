"""Chapter 2's models as a stage graph: independent stages train side by side.

:func:`training_graph` lists every model of a :class:`~costeff_same.compression.experiment.CostEffExperimentConfig`-like
comparison but the teacher as a :class:`costeff_same.engine.parallel.Task`; :func:`train_models`
trains the teacher first (chapter 1's model), then the rest, ``workers`` independent
stages at a time, each on one thread (its result does not depend on the machine's core
count or the number of workers), and evaluates each model (:class:`EvaluationConfig`, a
stage of its own) as soon as it is trained, beside the others' training; :func:`model_graph`
gives the same tasks to a study's graph.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from costeff_same.compression.evaluate import evaluate_model
from costeff_same.compression.pipeline import depth_model, is_trained, recovered_model, stage_data, ta_model
from costeff_same.compression.stages import DepthConfig, RecoverConfig, TAConfig
from costeff_same.engine.parallel import Task, run_graph, stage_task
from costeff_same.engine.results import load_or_run, stage, without_entry
from costeff_same.foundations.config import StageConfig, TrainedModelConfig, choice
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


def _learns_from_ta(stage_cfg: StageConfig) -> bool:
    return isinstance(stage_cfg, RecoverConfig) and stage_cfg.slenderize.ta is not None


@dataclasses.dataclass(frozen=True)
class EvaluationConfig(StageConfig):
    """One model of chapter 2 measured on the teacher's validation and test splits
    (:func:`~costeff_same.compression.evaluate.evaluate_model`).

    Attributes:
        name: the model's name in the comparison (``teacher``, ``ta``, ``costeff``, ...).
        kind: ``multi_exit`` or ``static`` (measured at its last exit only).
        model: the model's stage config.
        teacher: the teacher's config (its task's splits are the ones measured on).
        entropy_thresholds: the sweep (nats).
        tolerance: an operating point may lose at most this much validation metric against
            the model's last exit.

    Raises:
        ConfigError: for a kind other than ``multi_exit`` or ``static``.
    """

    name: str
    kind: str
    model: TrainedModelConfig | TAConfig | RecoverConfig | DepthConfig
    teacher: TrainedModelConfig
    entropy_thresholds: tuple[float, ...]
    tolerance: float

    def __post_init__(self):
        choice("kind", self.kind, ("multi_exit", "static"))

    def label(self) -> str:
        return f"evaluate {self.name}"


@stage("costeff_evaluation")
def _run_evaluation(cfg: EvaluationConfig, workdir: Path) -> dict[str, Any]:
    task, data = stage_data(cfg.teacher)
    model, _ = stage_model(cfg.name, cfg.kind, cfg.model)
    return evaluate_model(model, data, task.metric, cfg.entropy_thresholds, cfg.kind == "static", cfg.tolerance)


def evaluation_configs(cfg) -> dict[str, EvaluationConfig]:
    """``{model name: EvaluationConfig}`` of every model of ``cfg``, in display order."""
    return {name: EvaluationConfig(name, kind, stage_cfg, cfg.teacher, tuple(cfg.entropy_thresholds), cfg.tolerance)
            for name, (kind, stage_cfg) in cfg.models().items()}


def evaluated_model(cfg: EvaluationConfig) -> dict[str, Any]:
    """The measurements of one model (cached: :func:`_run_evaluation`)."""
    record = load_or_run("costeff_evaluation", cfg, _run_evaluation, seed=cfg.teacher.train.seed)
    return without_entry(record)


def _evaluation_tasks(cfg, model_tasks: dict[str, str]) -> dict[str, Task]:
    """One task per model's :class:`EvaluationConfig`, after ``model_tasks[name]`` (when listed)."""
    tasks: dict[str, Task] = {}
    for name, ev in evaluation_configs(cfg).items():
        needs = (model_tasks[name],) if name in model_tasks else ()
        tasks |= stage_task("costeff_evaluation", ev, _run_evaluation, seed=cfg.teacher.train.seed, needs=needs)
    return tasks


def model_graph(cfg) -> dict[str, Task]:
    """Every model of ``cfg`` as a task of a larger graph (a study's): the teacher's training
    (chapter 1's, :func:`costeff_same.zoo.model_task`) first, then :func:`training_graph`'s
    tasks, named ``costeff/<model>-<config hash>`` so that they are unique across seeds."""
    teacher = model_task(cfg.teacher)
    graph, models = training_graph(cfg), cfg.models()
    names = {name: f"costeff/{name}-{models[name][1].config_hash()}" for name in graph}
    trained = {names[name]: Task(task.fn, task.args, (*teacher, *(names[n] for n in task.needs)))
               for name, task in graph.items()}
    return teacher | trained | _evaluation_tasks(cfg, {**names, "teacher": next(iter(teacher))})


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
    """Train (or find cached) every model of ``cfg``, ``workers`` independent stages at a time,
    and evaluate each (:func:`evaluated_model`) once it is trained.

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
    finished = run_graph(missing | _evaluation_tasks(cfg, {name: name for name in missing}), workers)
    return ["teacher"] + [n for n in graph if n not in missing] + [n for n in finished if n in graph]
