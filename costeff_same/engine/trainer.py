"""The one trainer: every fine-tuning regime and every distillation phase runs through it.

A training plan is a list of :class:`Segment` s: stretches of optimisation with one fresh
AdamW optimiser and one linear warm-up/decay schedule each. A segment may first change the
model (``prepare``: COST-EFF's prune events) and may train its first steps on another loss
(``first_loss``: representation-only warm-up). Callers differ only in what they pass:

- :func:`costeff_same.engine.training.train` (DeeBERT's two stages, PABEE's weighted sum,
  the joint sum; see the methods page) gives one segment per stage;
- :mod:`costeff_same.compression.pipeline` (the COST-EFF teaching assistant, slenderization
  events, recovery, the depth baseline) gives distillation segments.

Determinism: a fresh segment ``s`` seeds torch with ``seed * 1000 + s``; epoch ``e`` of
segment ``s`` visits the examples in ``transformers``' length-grouped order drawn from a
generator seeded with ``seed * 1_000_003 + s * 1009 + e`` (about 1.6x faster steps on CPU
than random order). A checkpoint (model config and weights, optimiser, schedule, RNG state,
position, history, best evaluation) is written every ``checkpoint_every`` steps and after
every ``prepare``, through :mod:`costeff_same.engine.checkpoint`, so a killed run resumes and
ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import get_length_grouped_indices

from costeff_same.core.modeling import MultiExitBertConfig, MultiExitBertForSequenceClassification
from costeff_same.engine.checkpoint import load_checkpoint, save_checkpoint
from costeff_same.foundations import runtime
from costeff_same.foundations.progress import bar as progress_bar

Model = MultiExitBertForSequenceClassification
#: ``loss(model, indices) -> (scalar loss, {part: float})`` on the training examples ``indices``
LossFn = Callable[[Model, np.ndarray], tuple[torch.Tensor, dict[str, float]]]
#: ``evaluate(model) -> (score, per-exit scores)`` on the development split
EvaluateFn = Callable[[Model], tuple[float, list[float]]]

NO_DECAY = ("bias", "LayerNorm.weight")


class TrainingInterrupted(RuntimeError):
    """Raised by the ``interrupt_after`` hook (tests simulate a killed run with it)."""


class TrainingDiverged(ValueError):
    """The loss or the gradient norm became NaN or infinite: the run stops and nothing is cached.

    A ``ValueError``: its cause is an input (a learning rate too high, labels that do not fit
    the task), and it is reported like one."""


class Settings(Protocol):
    """What the trainer reads of a config (:class:`~costeff_same.foundations.config.TrainConfig`
    and :class:`~costeff_same.compression.stages.DistillConfig` both have it)."""

    batch_size: int
    weight_decay: float
    warmup_ratio: float
    seed: int
    checkpoint_every: int
    precision: str


@dataclass
class Segment:
    """A stretch of training with one fresh optimiser and one learning-rate schedule.

    Attributes:
        name: shown in the history and the progress bar.
        steps: optimiser steps.
        learning_rate: peak learning rate.
        loss: the loss after the first ``first_steps`` steps.
        first_steps: steps trained with ``first_loss`` instead.
        first_loss: the loss of the first steps (None: ``loss`` throughout).
        prepare: run once before training: ``prepare(model) -> (model, history record)``
            (a prune event); its result is checkpointed before the first step.
        evaluations: dev evaluations spread over the steps after ``first_steps``; the best
            is kept.
        parameters: the named parameters this segment trains (None: all of them).
        fused: use PyTorch's fused AdamW kernel where available (the same update, about 8x
            faster on CPU than the per-tensor loop, but not bit-identical to it).
    """

    name: str
    steps: int
    learning_rate: float
    loss: LossFn
    first_steps: int = 0
    first_loss: LossFn | None = None
    prepare: Callable[[Model], tuple[Model, dict[str, Any]]] | None = None
    evaluations: int = 0
    parameters: Callable[[Model], list[tuple[str, nn.Parameter]]] | None = None
    fused: bool = True

    def eval_points(self) -> list[int]:
        """Steps (1-based, after which) the dev metric is measured."""
        span = self.steps - self.first_steps
        if self.evaluations <= 0 or span <= 0:
            return []
        return sorted({self.first_steps + max(1, round(span * (j + 1) / self.evaluations))
                       for j in range(self.evaluations)})

    def loss_at(self, step: int) -> LossFn:
        """The loss of 0-based step ``step``."""
        return self.first_loss if step < self.first_steps and self.first_loss is not None else self.loss


def epochs_to_steps(epochs: float, examples: int, batch_size: int) -> int:
    """``round(epochs * ceil(examples / batch_size))`` optimiser steps."""
    return int(round(epochs * math.ceil(examples / batch_size)))


def epoch_order(lengths: np.ndarray, batch_size: int, seed: int, segment: int, epoch: int) -> np.ndarray:
    """The example order of ``epoch`` of ``segment``: length-grouped, seeded (module docstring)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + segment * 1009 + epoch)
    return np.asarray(get_length_grouped_indices(lengths.tolist(), batch_size, generator=generator))


def adamw(named: list[tuple[str, nn.Parameter]], lr: float, weight_decay: float, fused: bool) -> torch.optim.Optimizer:
    """AdamW with weight decay on every parameter but biases and LayerNorm weights."""
    groups = [
        {"params": [p for n, p in named if not any(k in n for k in NO_DECAY)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if any(k in n for k in NO_DECAY)], "weight_decay": 0.0},
    ]
    if fused:
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except (RuntimeError, TypeError):
            pass
    return torch.optim.AdamW(groups, lr=lr)


class _Run:
    """The mutable state of one :func:`run_segments` call (position, history, best, checkpoint)."""

    def __init__(self, model: Model, workdir: Path):
        self.path = Path(workdir) / "checkpoint" / "state.pt"
        self.model = model
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.position = {"segment": 0, "step": 0, "prepared": False}
        self.resume = load_checkpoint(self.path)
        if self.resume is not None:
            if self.resume["config"] != model.config.to_dict():   # a pruned model: rebuild its shape
                self.model = Model(MultiExitBertConfig.from_dict(self.resume["config"]))
            self.model.load_state_dict(self.resume["model"])
            self.position, self.history, self.best = (self.resume["position"], self.resume["history"],
                                                      self.resume["best"])

    def save(self, position: dict[str, Any], optimizer=None, scheduler=None) -> None:
        self.position = position
        save_checkpoint(self.path, {
            "config": self.model.config.to_dict(), "model": self.model.state_dict(), "position": position,
            "optimizer": optimizer.state_dict() if optimizer else None,
            "scheduler": scheduler.state_dict() if scheduler else None,
            "rng": torch.get_rng_state(), "history": self.history, "best": self.best})

    def evaluate(self, name: str, step: int, evaluate: EvaluateFn) -> None:
        score, per_exit = evaluate(self.model)
        self.history.append({"segment": name, "step": step, "event": "evaluate", "dev_score": score,
                             "dev_per_exit": per_exit})
        if self.best is None or score > self.best["score"]:
            self.best = {"score": score, "per_exit": per_exit, "segment": name, "step": step,
                         "state": {k: v.detach().clone() for k, v in self.model.state_dict().items()}}
        self.model.train()


def _start(run: _Run, s: int, seg: Segment, settings: Settings):
    """Prepare segment ``s`` (unless resumed past it) and build its optimiser; returns the first step."""
    here = run.resume is not None and s == run.position["segment"]
    if seg.prepare is not None and not (here and run.position["prepared"]):
        run.model, record = seg.prepare(run.model)
        run.model = run.model.to(runtime.resolve_device())
        run.history.append({"segment": seg.name, **record})
        run.save({"segment": s, "step": 0, "prepared": True})
        here = False
    named = seg.parameters(run.model) if seg.parameters else list(run.model.named_parameters())
    run.model.zero_grad(set_to_none=True)  # no gradient of an earlier segment survives into this one
    optimizer = adamw(named, seg.learning_rate, settings.weight_decay, seg.fused)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * seg.steps),
                                                max(seg.steps, 1))
    start = 0
    if here and run.resume["optimizer"] is not None and run.position["step"] > 0:
        optimizer.load_state_dict(run.resume["optimizer"])
        scheduler.load_state_dict(run.resume["scheduler"])
        torch.set_rng_state(run.resume["rng"])
        start = run.position["step"]
    else:
        torch.manual_seed(settings.seed * 1000 + s)
    run.resume = None
    return optimizer, scheduler, start, [p for _, p in named]


def run_segments(model: Model, segments: list[Segment], lengths: np.ndarray, settings: Settings, workdir: Path,
                 evaluate: EvaluateFn | None = None,
                 on_segment_end: Callable[[Model], dict[str, Any]] | None = None,
                 progress: bool | None = None,
                 interrupt_after: int | None = None) -> tuple[Model, list[dict], dict | None]:
    """Train ``model`` through ``segments``; resumable from ``workdir/checkpoint/state.pt``.

    Args:
        model: the model; trained in place unless a segment's ``prepare`` replaces it, on the
            run's device (:func:`costeff_same.foundations.runtime.resolve_device`).
        segments: the training plan.
        lengths: ``(N,)`` token counts of the training examples (the batches group them).
        settings: batch size, weight decay, warm-up ratio, seed, checkpoint interval.
        workdir: the stage's work folder (the checkpoint lives there until the end).
        evaluate: the dev evaluation of segments with ``evaluations`` (the best is kept).
        on_segment_end: a record appended to the history after each segment.
        progress: False hides the steps' bar; otherwise it goes where
            :mod:`costeff_same.foundations.progress` sends progress (the runner's terminal).
        interrupt_after: raise :class:`TrainingInterrupted` after this many steps of this
            call (tests simulate a killed run with it).

    Returns:
        ``(model, history, best)``: the trained model (the best evaluated weights when a
        segment evaluates), one record per 10 steps, per ``prepare`` and per evaluation, and
        the best evaluation without its weights (or None).

    Raises:
        ValueError: when a segment evaluates but no ``evaluate`` is given.
        TrainingDiverged: when a step's loss or gradient norm is not finite.
    """
    run = _Run(model.to(runtime.resolve_device()), workdir)
    steps_per_epoch = math.ceil(len(lengths) / settings.batch_size)
    steps_this_call = 0
    for s, seg in enumerate(segments):
        if s < run.position["segment"]:
            continue
        if seg.evaluations and evaluate is None:
            raise ValueError(f"segment {seg.name!r} asks for {seg.evaluations} evaluations but no evaluate is given")
        optimizer, scheduler, start, trained = _start(run, s, seg, settings)
        points, orders = set(seg.eval_points()), {}
        run.model.train()
        bar = progress_bar(range(start, seg.steps), desc=f"train {seg.name}", total=seg.steps - start, unit="step",
                           enabled=progress)
        for b in bar:
            epoch, k = divmod(b, steps_per_epoch)
            if epoch not in orders:
                orders[epoch] = epoch_order(lengths, settings.batch_size, settings.seed, s, epoch)
            idx = orders[epoch][k * settings.batch_size:(k + 1) * settings.batch_size]
            with torch.autocast(run.model.device.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16"):
                loss, parts = seg.loss_at(b)(run.model, idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(trained, 1.0)  # the trained parameters' gradients only
            if not (torch.isfinite(loss) and torch.isfinite(norm)):
                raise TrainingDiverged(
                    f"training diverged in segment {seg.name!r} at step {b}: loss {loss.item()}, gradient norm "
                    f"{norm.item()} (learning rate {seg.learning_rate:g}); nothing is cached: lower the learning "
                    "rate or check the labels")
            optimizer.step()
            scheduler.step()
            steps_this_call += 1
            if b % 10 == 0:
                run.history.append({"segment": seg.name, "step": b, "loss": loss.item(), **parts})
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if b + 1 in points:
                run.evaluate(seg.name, b + 1, evaluate)
            if (b + 1) % settings.checkpoint_every == 0 and b + 1 < seg.steps:
                run.save({"segment": s, "step": b + 1, "prepared": True}, optimizer, scheduler)
            if interrupt_after is not None and steps_this_call >= interrupt_after:
                raise TrainingInterrupted(f"interrupted after {steps_this_call} steps")
        if on_segment_end is not None:
            run.history.append({"segment": seg.name, "step": seg.steps, "event": "segment_end",
                                **on_segment_end(run.model)})
        run.save({"segment": s + 1, "step": 0, "prepared": False})
    best = run.best
    if best is not None:
        run.model.load_state_dict(best["state"])
        best = {k: v for k, v in best.items() if k != "state"}
    run.model.eval()
    shutil.rmtree(run.path.parent, ignore_errors=True)
    return run.model, run.history, best
