"""The COST-EFF pipeline, stage by stage, each a cached and resumable step (Shen et al., 2022).

1. **Teacher**: an ordinary fine-tuned model: the last exit of a cached
   :func:`costeff_same.zoo.trained_model` (with chapter 1's DeeBERT-style config its stage 1
   is exactly a fine-tuned BERT + classifier, and the cache is shared).
2. **Teaching assistant** (:class:`~costeff_same.compression.stages.TAConfig`): a full-width
   multi-exit model (COST-EFF's parameter-free ``tanh(h_CLS)`` exits, gradient equilibrium)
   distilled from the teacher: representation-only distillation first, then prediction
   distillation where every exit imitates the teacher's final soft prediction, averaged with
   the hard-label loss.
3. **Iterative slenderization** (:class:`~costeff_same.compression.stages.SlenderizeConfig`) of
   a copy of the TA, the TA as frozen teacher: ``K = heads - target`` events, each scoring
   heads and neurons by Taylor importance under the all-exit distillation loss, removing one
   head per layer, shrinking the FFN and the embedding rank linearly, then training with a
   fresh optimiser (the first part of the period representation-only, then prediction +
   representation) at a learning rate raised by ``lr_growth`` (about 12%) after each event.
4. **Recovery** (:class:`~costeff_same.compression.stages.RecoverConfig`): representation,
   then prediction + representation distillation from the TA (exit ``i`` to TA exit ``i``),
   keeping the checkpoint with the best mean dev score over all exits.

The same machinery gives the baselines and ablations: slenderizing the teacher directly
(``ta=None``: the no-TA ablation, every exit learning from the teacher's final exit), a
static slender model trained without exits (``exits="final"``), final-exit-only importance
(``importance="final_exit"``), and a depth-truncated model
(:class:`~costeff_same.compression.stages.DepthConfig`). The methods page of the book gives
the equations.

Every stage trains on one intra-op thread (:func:`costeff_same.engine.parallel.one_thread`),
so its result is the same on any machine whatever its core count, through the one trainer
(:func:`costeff_same.engine.trainer.run_segments`: resumable, seeded per segment and epoch).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import numpy as np

from costeff_same.compression.distill import LossSpec, distillation_loss
from costeff_same.compression.importance import taylor_importance
from costeff_same.compression.slenderize import Shape, prune_schedule, shape_of, slenderize, truncate_depth
from costeff_same.compression.stages import (
    STAGE_NAMES,
    DepthConfig,
    DistillConfig,
    RecoverConfig,
    SlenderizeConfig,
    TAConfig,
)
from costeff_same.compression.teacher import TeacherOutputs
from costeff_same.core.backbones import load_backbone
from costeff_same.core.encoding import Encoded, length_sorted_batches
from costeff_same.core.metrics import count_parameters, per_exit_metric
from costeff_same.core.modeling import MultiExitBertForSequenceClassification, from_backbone
from costeff_same.engine.parallel import one_thread
from costeff_same.engine.results import is_cached, load_or_run, stage
from costeff_same.engine.trainer import Segment, epochs_to_steps, run_segments
from costeff_same.engine.training import collect_exit_logits
from costeff_same.foundations.config import StageConfig, TrainedModelConfig
from costeff_same.zoo import encoded_splits, load_entry_model, save_model, trained_model

Model = MultiExitBertForSequenceClassification


def is_trained(cfg: StageConfig) -> bool:
    """True when the stage of ``cfg`` (a TA, slenderization, recovery or depth config) is cached.

    Raises:
        KeyError: for a config of another kind.
    """
    return is_cached(STAGE_NAMES[type(cfg)], cfg)


def stage_data(teacher: TrainedModelConfig):
    """``(task, {"train", "validation", "test": Encoded})`` of the teacher's data (memoised)."""
    return encoded_splits(teacher.data, teacher.train.backbone)


# -- the teachers a stage learns from ----------------------------------------------------------

def load_teacher(source: TrainedModelConfig | TAConfig) -> Model:
    """The cached fine-tuned teacher (a ``TrainedModelConfig``) or teaching assistant (a ``TAConfig``)."""
    return ta_model(source)[0] if isinstance(source, TAConfig) else trained_model(source)[0]


@functools.lru_cache(maxsize=2)
def _precomputed(source: TrainedModelConfig | TAConfig, data: TrainedModelConfig) -> TeacherOutputs:
    return TeacherOutputs(load_teacher(source), stage_data(data)[1]["train"], precompute=True)


def teacher_outputs(source: TrainedModelConfig | TAConfig, data: TrainedModelConfig,
                    precompute: bool) -> TeacherOutputs:
    """The outputs of teacher ``source`` on the training split of ``data``'s task.

    Precomputed outputs are a pure function of the two configs, memoised for the two most
    recent teachers; otherwise the teacher runs on every batch.
    """
    if precompute:
        return _precomputed(source, data)
    return TeacherOutputs(load_teacher(source), stage_data(data)[1]["train"], precompute=False)


# -- losses, evaluation and the prune event ---------------------------------------------------

def batch_loss(student: Model, teacher: TeacherOutputs, data: Encoded, indices, spec: LossSpec,
               batch: dict | None = None) -> tuple[Any, dict[str, float]]:
    """The distillation loss of ``spec`` on the examples ``indices`` of ``data`` (eq. of the methods page)."""
    batch = data.batch(indices) if batch is None else batch
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    out = student(**inputs, output_hidden_states=spec.representation)
    t_logits, t_states = teacher(indices, batch, spec.representation)
    return distillation_loss(out.exit_logits, out.hidden_states, t_logits, t_states, batch["labels"],
                             batch["attention_mask"], spec)


def dev_score(model: Model, dev: Encoded, metric: str, select: str) -> tuple[float, list[float]]:
    """``(score, per-exit dev metric)``: the mean over exits (``all``) or the last exit (``final``)."""
    per_exit = per_exit_metric(metric, collect_exit_logits(model, dev), dev.labels)
    return (float(np.mean(per_exit)) if select == "all" else per_exit[-1]), per_exit


def importance_batches(data: Encoded, examples: int | None, batch_size: int, seed: int) -> list[np.ndarray]:
    """A seeded sample of ``examples`` training indices (None: all), sorted by length, in batches."""
    chosen = np.random.default_rng(seed).permutation(len(data))[: examples or len(data)]
    return length_sorted_batches(data.lengths, batch_size, chosen)


@dataclasses.dataclass(frozen=True)
class Prune:
    """A prune event: score heads and neurons under ``loss`` on a sample, then slenderize to ``shape``.

    Attributes:
        shape: the shape after the event.
        loss: the distillation loss whose Taylor importance ranks the units.
        examples: training examples in the importance pass (None: all).
        seed: seeds the sample.
    """

    shape: Shape
    loss: LossSpec
    examples: int | None
    seed: int


def distill_segment(name: str, steps: int, learning_rate: float, spec: LossSpec, teacher: TeacherOutputs,
                    train: Encoded, first_steps: int = 0, first_spec: LossSpec | None = None,
                    prune: Prune | None = None, evaluations: int = 0, batch_size: int = 32) -> Segment:
    """A :class:`~costeff_same.engine.trainer.Segment` of distillation from ``teacher`` on ``train``."""
    def loss(spec_: LossSpec):
        return lambda model, idx: batch_loss(model, teacher, train, idx, spec_)

    def prepare(model: Model):
        started = time.perf_counter()
        batches = importance_batches(train, prune.examples, batch_size, prune.seed)
        scores = taylor_importance(model, batches, lambda m, idx: batch_loss(m, teacher, train, idx, prune.loss)[0])
        before = shape_of(model)
        model = slenderize(model, scores, prune.shape)
        return model, {"event": "prune", "from": before.to_dict(), "to": prune.shape.to_dict(),
                       "importance_batches": scores.batches, "head_scores": [h.tolist() for h in scores.heads],
                       "parameters": count_parameters(model),
                       "parameters_without_embeddings": count_parameters(model, False),
                       "seconds": time.perf_counter() - started}

    return Segment(name, steps, learning_rate, loss(spec), first_steps=first_steps,
                   first_loss=loss(first_spec) if first_spec is not None else None,
                   prepare=prepare if prune is not None else None, evaluations=evaluations)


def _dev_record(model: Model, data: dict[str, Encoded], metric: str, select: str) -> dict[str, Any]:
    score, per_exit = dev_score(model, data["validation"], metric, select)
    return {"dev_score": score, "dev_per_exit": per_exit, "shape": shape_of(model).to_dict(),
            "parameters": count_parameters(model), "parameters_without_embeddings": count_parameters(model, False)}


def distill(model: Model, segments: list[Segment], data: dict[str, Encoded], optim: DistillConfig, workdir: Path,
            metric: str, select: str = "all", evaluate_segments: bool = False):
    """Run ``segments`` through the one trainer; returns ``(model, history, best)``.

    ``select`` is ``all`` (the best mean exit dev score is kept) or ``final`` (the last exit's).
    """
    return run_segments(model, segments, data["train"].lengths, optim, workdir,
                        evaluate=lambda m: dev_score(m, data["validation"], metric, select),
                        on_segment_end=(lambda m: _dev_record(m, data, metric, select)) if evaluate_segments else None)


def _two_phase(name: str, rep_steps: int, pred_steps: int, lr: float, both: LossSpec, outputs: TeacherOutputs,
               train: Encoded, evaluations: int) -> list[Segment]:
    """One segment: ``rep_steps`` representation-only steps, then ``pred_steps`` of ``both``."""
    if not rep_steps + pred_steps:
        return []
    return [distill_segment(name, rep_steps + pred_steps, lr, both, outputs, train, first_steps=rep_steps,
                            first_spec=dataclasses.replace(both, prediction=False), evaluations=evaluations)]


def _stage_record(history: list[dict], best: dict | None, started: float, **extra: Any) -> dict[str, Any]:
    return {"history": history, "best": best, **extra, "seconds": time.perf_counter() - started}


# -- stages ------------------------------------------------------------------------------------

@stage("costeff_ta")
@one_thread()
def _run_ta(cfg: TAConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    task, data = stage_data(cfg.teacher)
    teacher, _ = trained_model(cfg.teacher)
    source = teacher.bert if cfg.init == "teacher" else load_backbone(cfg.teacher.train.backbone,
                                                                      seed=cfg.teacher.train.seed).model
    student = from_backbone(source, task.num_labels, "costeff", cfg.gradient_equilibrium, seed=cfg.optim.seed,
                            exit_pooling=cfg.teacher.train.exit_pooling)
    o, n = cfg.optim, len(data["train"])
    rep_steps = epochs_to_steps(cfg.representation_epochs, n, o.batch_size)
    pred_steps = epochs_to_steps(cfg.prediction_epochs, n, o.batch_size)
    rep = LossSpec(representation=True, prediction=False, hidden_weight=o.hidden_weight)
    pred = LossSpec(representation=False, prediction=True, mapping="exit_to_final", exits="all",
                    soft_weight=cfg.soft_weight, temperature=o.temperature)
    outputs = teacher_outputs(cfg.teacher, cfg.teacher, o.precompute_teacher)
    segments = []
    if rep_steps:
        segments.append(distill_segment("TA: representation distillation", rep_steps, o.learning_rate, rep,
                                        outputs, data["train"]))
    if pred_steps:
        segments.append(distill_segment("TA: prediction distillation", pred_steps, o.learning_rate, pred,
                                        outputs, data["train"], evaluations=cfg.evaluations))
    student, history, best = distill(student, segments, data, o, workdir, task.metric, "all")
    save_model(student, workdir / "model")
    return _stage_record(history, best, started, steps={"representation": rep_steps, "prediction": pred_steps})


def ta_model(cfg: TAConfig) -> tuple[Model, dict[str, Any]]:
    """The teaching assistant of ``cfg`` (trained once, then loaded from the cache) and its record."""
    record = load_or_run(STAGE_NAMES[TAConfig], cfg, _run_ta, seed=cfg.optim.seed)
    return load_entry_model(record), record


def _slender_start(cfg: SlenderizeConfig, num_labels: int) -> Model:
    """The model slenderization starts from (it learns from ``cfg.source``)."""
    if cfg.ta is not None:
        return copy.deepcopy(ta_model(cfg.ta)[0])
    teacher, _ = trained_model(cfg.teacher)
    if cfg.exits == "final":    # the static baseline: (a copy of) the fine-tuned teacher, pruned
        return copy.deepcopy(teacher)
    return from_backbone(teacher.bert, num_labels, "costeff", gradient_equilibrium=True, seed=cfg.optim.seed,
                         exit_pooling=cfg.teacher.train.exit_pooling)


def slenderize_segments(cfg: SlenderizeConfig, start: Shape, hidden_size: int, outputs: TeacherOutputs,
                        train: Encoded) -> list[Segment]:
    """The prune events and training periods of ``cfg``, starting from shape ``start``."""
    o = cfg.optim
    both = LossSpec(representation=True, prediction=True, mapping=cfg.mapping, exits=cfg.exits,
                    soft_weight=cfg.soft_weight, temperature=o.temperature, hidden_weight=o.hidden_weight)
    scoring = both if cfg.importance == "all_exits" else dataclasses.replace(both, exits="final")
    steps = epochs_to_steps(cfg.event_epochs, len(train), o.batch_size)
    return [distill_segment(f"event {e}", steps, o.learning_rate * cfg.lr_growth ** (e - 1), both, outputs, train,
                            first_steps=int(round(cfg.representation_fraction * steps)),
                            first_spec=dataclasses.replace(both, prediction=False),
                            prune=Prune(shape, scoring, cfg.importance_examples, o.seed * 7919 + e - 1),
                            batch_size=o.batch_size)
            for e, shape in enumerate(prune_schedule(start, cfg.heads, cfg.ffn, cfg.embedding_rank, hidden_size), 1)]


@stage("costeff_slenderize")
@one_thread()
def _run_slenderize(cfg: SlenderizeConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    task, data = stage_data(cfg.teacher)
    student = _slender_start(cfg, task.num_labels)
    if cfg.exits == "final" and student.config.gradient_equilibrium:
        student.config.gradient_equilibrium = False
    start = shape_of(student)
    outputs = teacher_outputs(cfg.source, cfg.teacher, cfg.optim.precompute_teacher)
    segments = slenderize_segments(cfg, start, student.config.hidden_size, outputs, data["train"])
    schedule = [shape.to_dict() for shape in prune_schedule(start, cfg.heads, cfg.ffn, cfg.embedding_rank,
                                                            student.config.hidden_size)]
    initial = _dev_record(student, data, task.metric, cfg.exits) if cfg.evaluate_events else None
    student, history, _ = distill(student, segments, data, cfg.optim, workdir, task.metric, cfg.exits,
                                  cfg.evaluate_events)
    save_model(student, workdir / "model")
    return {"start_shape": start.to_dict(), "shape": shape_of(student).to_dict(), "events": len(segments),
            "steps_per_event": segments[0].steps if segments else 0,
            "schedule": schedule,
            "initial": initial, "history": history, "seconds": time.perf_counter() - started}


def slender_model(cfg: SlenderizeConfig) -> tuple[Model, dict[str, Any]]:
    """The slenderized (not yet recovered) model of ``cfg`` and its record (cached)."""
    record = load_or_run(STAGE_NAMES[SlenderizeConfig], cfg, _run_slenderize, seed=cfg.optim.seed)
    return load_entry_model(record), record


@stage("costeff_recover")
@one_thread()
def _run_recover(cfg: RecoverConfig, workdir: Path) -> dict[str, Any]:
    sc = cfg.slenderize
    task, data = stage_data(sc.teacher)
    student, _ = slender_model(sc)
    started = time.perf_counter()       # recovery only: the slenderization has its own record
    if sc.exits == "final":
        student.config.gradient_equilibrium = False
    o, n = sc.optim, len(data["train"])
    both = LossSpec(representation=True, prediction=True, mapping=sc.mapping, exits=sc.exits,
                    soft_weight=sc.soft_weight, temperature=o.temperature, hidden_weight=o.hidden_weight)
    rep_steps = epochs_to_steps(cfg.representation_epochs, n, o.batch_size)
    pred_steps = epochs_to_steps(cfg.prediction_epochs, n, o.batch_size)
    outputs = teacher_outputs(sc.source, sc.teacher, o.precompute_teacher)
    segments = _two_phase("recovery", rep_steps, pred_steps, cfg.learning_rate or o.learning_rate, both, outputs,
                          data["train"], cfg.evaluations)
    student, history, best = distill(student, segments, data, o, workdir, task.metric, sc.exits)
    save_model(student, workdir / "model")
    return _stage_record(history, best, started, steps={"representation": rep_steps, "prediction": pred_steps})


def recovered_model(cfg: RecoverConfig) -> tuple[Model, dict[str, Any]]:
    """The recovered slender model of ``cfg`` and its record (cached)."""
    record = load_or_run(STAGE_NAMES[RecoverConfig], cfg, _run_recover, seed=cfg.slenderize.optim.seed)
    return load_entry_model(record), record


@stage("costeff_depth")
@one_thread()
def _run_depth(cfg: DepthConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    task, data = stage_data(cfg.teacher)
    teacher, _ = trained_model(cfg.teacher)
    student = truncate_depth(teacher, cfg.layers)
    student.config.gradient_equilibrium = False
    o, n = cfg.optim, len(data["train"])
    both = LossSpec(representation=True, prediction=True, mapping="exit_to_final", exits="final",
                    soft_weight=cfg.soft_weight, temperature=o.temperature, hidden_weight=o.hidden_weight)
    rep_steps = epochs_to_steps(cfg.representation_epochs, n, o.batch_size)
    pred_steps = epochs_to_steps(cfg.prediction_epochs, n, o.batch_size)
    outputs = teacher_outputs(cfg.teacher, cfg.teacher, o.precompute_teacher)
    segments = _two_phase(f"depth {cfg.layers}", rep_steps, pred_steps, o.learning_rate, both, outputs,
                          data["train"], cfg.evaluations)
    student, history, best = distill(student, segments, data, o, workdir, task.metric, "final")
    save_model(student, workdir / "model")
    return _stage_record(history, best, started)


def depth_model(cfg: DepthConfig) -> tuple[Model, dict[str, Any]]:
    """The depth-truncated baseline of ``cfg`` and its record (cached)."""
    record = load_or_run(STAGE_NAMES[DepthConfig], cfg, _run_depth, seed=cfg.optim.seed)
    return load_entry_model(record), record
