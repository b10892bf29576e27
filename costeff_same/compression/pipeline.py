"""The COST-EFF pipeline, stage by stage, each a cached and resumable step (papers.md section 1).

1. **Teacher**: an ordinary fine-tuned single-exit model. We use the last exit of a cached
   :func:`costeff_same.experiments.trained_model` (with chapter 1's DeeBERT-style config its
   stage 1 is exactly a fine-tuned BERT + classifier, and the cache is shared).
2. **Teaching assistant** (:class:`TAConfig`): a full-width multi-exit model (COST-EFF's
   parameter-free ``tanh(h_CLS)`` exits, gradient equilibrium) distilled from the teacher:
   representation-only distillation first, then prediction distillation where every exit
   imitates the teacher's final soft prediction, averaged with the hard-label loss.
3. **Iterative slenderization** (:class:`SlenderizeConfig`) of a copy of the TA, the TA as
   frozen teacher: ``K = heads - target`` events, each scoring heads and neurons by Taylor
   importance under the all-exit distillation loss, removing one head per layer, shrinking
   the FFN and the embedding rank linearly, then training with a fresh optimiser (the
   first part of the period representation-only, then prediction + representation) at a
   learning rate raised by ``lr_growth`` (about 12%) after each event.
4. **Recovery** (:class:`RecoverConfig`): representation, then prediction + representation
   distillation from the TA (exit ``i`` to TA exit ``i``), keeping the checkpoint with the
   best mean dev score over all exits.

The same machinery gives the baselines and ablations: slenderizing the teacher directly
(``ta=None``: the no-TA ablation, every exit learning from the teacher's final exit), a
static slender model trained without exits (``exits="final"``), final-exit-only importance
(``importance="final_exit"``), and a depth-truncated model (:class:`DepthConfig`).

Every stage trains on one intra-op thread (:func:`costeff_same.parallel.one_thread`), so its
result is the same on any machine whatever its core count; chapter 2 trains independent
stages side by side instead (:func:`costeff_same.compression.experiment.train_models`).
Every stage is cached by :func:`costeff_same.results.load_or_run` under its own config, and
checkpoints into its work folder every ``checkpoint_every`` steps (and right after each
prune event), so an interrupted stage resumes where it stopped. Batches are length-grouped
(as :mod:`costeff_same.training`), the data order is seeded per segment and epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import get_length_grouped_indices

from ..backbones import load_backbone, load_tokenizer
from ..config import ConfigError, StageConfig, TrainedModelConfig, choice
from ..data import Encoded
from ..experiments import prepared_data, trained_model
from ..metrics import count_parameters, per_exit_metric
from ..modeling import MultiExitBertConfig, MultiExitBertForSequenceClassification, from_backbone
from ..parallel import one_thread
from ..results import is_cached, load_or_run
from ..training import collect_exit_logits
from .distill import EXIT_SETS, LossSpec, distillation_loss
from .importance import taylor_importance
from .slenderize import Shape, prune_schedule, shape_of, slenderize, truncate_depth

TA_INITS = ("teacher", "backbone")
IMPORTANCE_LOSSES = ("all_exits", "final_exit")


# -- configs ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DistillConfig(StageConfig):
    """Optimisation settings shared by the distillation stages.

    Attributes:
        batch_size: examples per step.
        learning_rate: peak learning rate (AdamW, linear warm-up then linear decay per segment).
        warmup_ratio: fraction of each segment's steps spent warming up.
        weight_decay: AdamW weight decay (not on biases and LayerNorms).
        temperature: distillation temperature ``T`` (COST-EFF: 1).
        hidden_weight: weight of the hidden-state MSE against the prediction term.
        cache_teacher: precompute the teacher's hidden states and logits on the training
            split once (float16 in memory) instead of a teacher forward every step; the
            same numbers up to float16 rounding of the hidden states.
        seed: seeds initialisation of new exits, data order, dropout and importance samples.
        checkpoint_every: steps between resumable checkpoints.
    """

    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    temperature: float = 1.0
    hidden_weight: float = 1.0
    cache_teacher: bool = True
    seed: int = 0
    checkpoint_every: int = 50

    def __post_init__(self):
        if self.batch_size < 1 or self.checkpoint_every < 1:
            raise ConfigError(f"batch_size={self.batch_size} and checkpoint_every={self.checkpoint_every} must be >= 1")
        if self.learning_rate <= 0 or self.temperature <= 0:
            raise ConfigError(f"learning_rate={self.learning_rate} and temperature={self.temperature} must be > 0")


def _check_epochs(**values: float) -> None:
    for key, value in values.items():
        if value < 0:
            raise ConfigError(f"{key}={value} must be >= 0")


@dataclasses.dataclass(frozen=True)
class TAConfig(StageConfig):
    """The teaching assistant: a full-width multi-exit model distilled from the teacher.

    Attributes:
        teacher: the fine-tuned teacher (its last exit and hidden states are the targets).
        optim: optimisation settings.
        init: ``teacher`` (start from the teacher's fine-tuned encoder, new exits; the
            representation stage then starts at zero loss) or ``backbone`` (start from the
            pre-trained backbone, as a TA built from BERT-base would).
        representation_epochs: epochs of representation-only distillation (hidden MSE).
        prediction_epochs: epochs of prediction distillation (every exit against the
            teacher's final soft prediction, mixed with the hard labels).
        soft_weight: soft vs hard mix of the prediction term (0.5: their average).
        gradient_equilibrium: ElasticBERT/COST-EFF gradient rescaling in the TA.
        evaluations: dev evaluations during the prediction stage; the best mean-exit one is kept
            (0: keep the last weights).
    """

    teacher: TrainedModelConfig
    optim: DistillConfig
    init: str = "teacher"
    representation_epochs: float = 0.0
    prediction_epochs: float = 1.0
    soft_weight: float = 0.5
    gradient_equilibrium: bool = True
    evaluations: int = 0

    def __post_init__(self):
        choice("ta init", self.init, TA_INITS)
        _check_epochs(representation_epochs=self.representation_epochs, prediction_epochs=self.prediction_epochs)
        if self.representation_epochs + self.prediction_epochs <= 0:
            raise ConfigError("the TA needs representation_epochs + prediction_epochs > 0")


@dataclasses.dataclass(frozen=True)
class SlenderizeConfig(StageConfig):
    """Iterative slenderization (COST-EFF step 3), or one of its baselines and ablations.

    Attributes:
        teacher: the fine-tuned teacher.
        optim: optimisation settings (``learning_rate`` is the rate of the first event).
        ta: the teaching assistant to slenderize and learn from (exit ``i`` to TA exit ``i``);
            None slenderizes the teacher and every exit learns from its final exit (the no-TA
            ablation, and the static baseline).
        exits: ``all`` (a multi-exit model) or ``final`` (a static model trained without exits:
            only the last exit gets a prediction loss, no gradient equilibrium).
        importance: ``all_exits`` (COST-EFF: every exit's distillation loss) or ``final_exit``
            (the ablation: the last exit's only); both include the hidden-state MSE.
        heads: target attention heads per layer.
        ffn: target FFN width per layer.
        embedding_rank: target rank of the factorised word embedding (None: keep it whole).
        importance_examples: training examples in each importance pass (None: the whole
            split, as the paper; a seeded sample otherwise).
        event_epochs: training epochs after each prune event.
        representation_fraction: the first part of each period trained on the hidden MSE only.
        soft_weight: soft vs hard mix of the prediction term (COST-EFF: 0.9).
        lr_growth: the learning rate is multiplied by this after every event (COST-EFF: ~1.12).
        evaluate_events: measure the dev metric after every event (for the schedule figure).
    """

    teacher: TrainedModelConfig
    optim: DistillConfig
    ta: TAConfig | None = None
    exits: str = "all"
    importance: str = "all_exits"
    heads: int = 2
    ffn: int = 256
    embedding_rank: int | None = 64
    importance_examples: int | None = 512
    event_epochs: float = 0.1
    representation_fraction: float = 0.3
    soft_weight: float = 0.9
    lr_growth: float = 1.12
    evaluate_events: bool = False

    def __post_init__(self):
        choice("exits", self.exits, EXIT_SETS)
        choice("importance", self.importance, IMPORTANCE_LOSSES)
        if self.ta is not None and self.ta.teacher != self.teacher:
            raise ConfigError("the TA's teacher must be the slenderization's teacher")
        if self.ta is not None and self.exits == "final":
            raise ConfigError("a static model (exits='final') is slenderized from the teacher: set ta to None")
        if self.heads < 1 or self.ffn < 1 or (self.embedding_rank is not None and self.embedding_rank < 1):
            raise ConfigError(f"heads={self.heads}, ffn={self.ffn}, embedding_rank={self.embedding_rank} must be >= 1")
        if self.importance_examples is not None and self.importance_examples < 1:
            raise ConfigError(f"importance_examples={self.importance_examples} must be >= 1 or None")
        if not 0.0 <= self.representation_fraction < 1.0:
            raise ConfigError(f"representation_fraction={self.representation_fraction} must be in [0, 1)")
        _check_epochs(event_epochs=self.event_epochs)

    @property
    def mapping(self) -> str:
        """``exit_to_exit`` when learning from the TA, ``exit_to_final`` from the teacher."""
        return "exit_to_exit" if self.ta is not None else "exit_to_final"


@dataclasses.dataclass(frozen=True)
class RecoverConfig(StageConfig):
    """Recovery distillation of a slenderized model (COST-EFF step 4).

    Attributes:
        slenderize: the slenderization it recovers.
        representation_epochs: epochs of hidden-MSE-only distillation.
        prediction_epochs: epochs of prediction + representation distillation.
        evaluations: dev evaluations spread over the prediction epochs; the checkpoint with
            the best mean exit score (last exit for a static model) is kept.
        learning_rate: recovery learning rate (None: the slenderization's base rate).
    """

    slenderize: SlenderizeConfig
    representation_epochs: float = 0.2
    prediction_epochs: float = 1.0
    evaluations: int = 4
    learning_rate: float | None = None

    def __post_init__(self):
        _check_epochs(representation_epochs=self.representation_epochs, prediction_epochs=self.prediction_epochs)
        if self.evaluations < 0:
            raise ConfigError(f"evaluations={self.evaluations} must be >= 0")


@dataclasses.dataclass(frozen=True)
class DepthConfig(StageConfig):
    """The depth-truncated baseline: the teacher's first ``layers`` layers, distilled from it.

    Attributes:
        teacher: the fine-tuned teacher.
        optim: optimisation settings.
        layers: layers kept (1..L).
        representation_epochs: epochs of hidden-MSE-only distillation (states 0..layers).
        prediction_epochs: epochs of prediction + representation distillation of the last exit.
        soft_weight: soft vs hard mix of the prediction term.
        evaluations: dev evaluations; the best last-exit one is kept.
    """

    teacher: TrainedModelConfig
    optim: DistillConfig
    layers: int = 1
    representation_epochs: float = 0.0
    prediction_epochs: float = 1.0
    soft_weight: float = 0.9
    evaluations: int = 4

    def __post_init__(self):
        if self.layers < 1:
            raise ConfigError(f"layers={self.layers} must be >= 1")
        _check_epochs(representation_epochs=self.representation_epochs, prediction_epochs=self.prediction_epochs)


#: the results-cache name of each stage
STAGE_NAMES = {TAConfig: "costeff_ta", SlenderizeConfig: "costeff_slenderize", RecoverConfig: "costeff_recover",
               DepthConfig: "costeff_depth"}


def is_trained(cfg: StageConfig) -> bool:
    """True when the stage of ``cfg`` (a TA, slenderization, recovery or depth config) is cached.

    Raises:
        KeyError: for a config of another kind.
    """
    return is_cached(STAGE_NAMES[type(cfg)], cfg)


# -- data and teacher outputs, shared within one process ---------------------------------------

_DATA: OrderedDict[str, tuple[Any, dict[str, Encoded]]] = OrderedDict()


def stage_data(teacher: TrainedModelConfig):
    """``(task, {"train", "validation", "test": Encoded})`` of the teacher's data (memoised)."""
    key = f"{teacher.data.config_hash()}-{teacher.train.backbone}"
    if key not in _DATA:
        _DATA[key] = prepared_data(teacher.data, load_tokenizer(teacher.train.backbone))
        while len(_DATA) > 2:
            _DATA.popitem(last=False)
    return _DATA[key]


class TeacherOutputs:
    """The frozen teacher's exit logits and hidden states for training batches.

    With ``cache=True`` one eval-mode pass over the split stores every example's logits
    ``(L_t, N, C)`` and hidden states (``L_t + 1`` states of ``(len_i, hidden)`` in float16);
    otherwise the teacher runs on each batch under ``no_grad``. Either way dropout is off.

    Args:
        teacher: the teacher model.
        data: the split the batches come from.
        cache: precompute (fast, memory ``~ 2 * (L_t + 1) * hidden`` bytes per token).
    """

    def __init__(self, teacher: MultiExitBertForSequenceClassification, data: Encoded, cache: bool,
                 batch_size: int = 128):
        self.teacher = teacher.eval()
        self.data = data
        self.cached = cache
        if cache:
            depth = teacher.num_layers
            self.logits = torch.zeros(depth, len(data), teacher.num_labels)
            self.states: list[torch.Tensor | None] = [None] * len(data)
            with torch.no_grad():
                for idx, batch in data.eval_batches(batch_size):
                    batch.pop("labels")
                    out = teacher(**batch, output_hidden_states=True)
                    self.logits[:, torch.as_tensor(idx)] = out.exit_logits.float()
                    stacked = torch.stack(out.hidden_states)              # (L_t + 1, batch, seq, hidden)
                    for r, i in enumerate(idx):
                        self.states[int(i)] = stacked[:, r, : int(data.lengths[i])].half().clone()

    def __call__(self, indices, batch: dict, states: bool) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """``(exit_logits (L_t, batch, C), [L_t + 1 states (batch, seq_len, hidden)] or None)``."""
        if not self.cached:
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            with torch.no_grad():
                out = self.teacher(**inputs, output_hidden_states=states)
            return out.exit_logits, (list(out.hidden_states) if states else None)
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        logits = self.logits[:, idx]
        if not states:
            return logits, None
        seq_len = batch["input_ids"].shape[1]
        first = self.states[int(idx[0])]
        out = torch.zeros(first.shape[0], len(idx), seq_len, first.shape[-1])
        for r, i in enumerate(idx.tolist()):
            s = self.states[i]
            out[:, r, : s.shape[1]] = s.float()
        return logits, list(out.unbind(0))


_TEACHER_OUTPUTS: OrderedDict[str, TeacherOutputs] = OrderedDict()


def teacher_outputs(key: str, teacher: MultiExitBertForSequenceClassification, data: Encoded,
                    cache: bool) -> TeacherOutputs:
    """A :class:`TeacherOutputs`, memoised by ``key`` (the two most recent teachers stay in memory)."""
    if not cache:
        return TeacherOutputs(teacher, data, cache=False)
    if key not in _TEACHER_OUTPUTS:
        while len(_TEACHER_OUTPUTS) >= 2:
            _TEACHER_OUTPUTS.popitem(last=False)
        _TEACHER_OUTPUTS[key] = TeacherOutputs(teacher, data, cache=True)
    _TEACHER_OUTPUTS.move_to_end(key)
    return _TEACHER_OUTPUTS[key]


# -- the distillation trainer ------------------------------------------------------------------

@dataclass
class Segment:
    """A stretch of training with one fresh optimiser and one learning-rate schedule.

    Attributes:
        name: shown in the history.
        steps: optimiser steps.
        learning_rate: peak learning rate.
        loss: the loss after the first ``first_steps`` steps.
        first_steps: steps trained with ``first_loss`` instead (representation-only warm-up).
        first_loss: the loss of the first steps.
        shape: before training, slenderize the model to this shape (a prune event).
        importance_loss: the loss that scores heads and neurons for the prune.
        evaluations: dev evaluations spread over the steps after ``first_steps``; the best
            is kept.
    """

    name: str
    steps: int
    learning_rate: float
    loss: LossSpec
    first_steps: int = 0
    first_loss: LossSpec | None = None
    shape: Shape | None = None
    importance_loss: LossSpec | None = None
    evaluations: int = 0

    def eval_points(self) -> list[int]:
        """Steps (1-based, after which) the dev metric is measured."""
        span = self.steps - self.first_steps
        if self.evaluations <= 0 or span <= 0:
            return []
        return sorted({self.first_steps + max(1, round(span * (j + 1) / self.evaluations))
                       for j in range(self.evaluations)})


def epochs_to_steps(epochs: float, examples: int, batch_size: int) -> int:
    """``round(epochs * ceil(examples / batch_size))`` optimiser steps."""
    return int(round(epochs * math.ceil(examples / batch_size)))


def _optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    no_decay = ("bias", "LayerNorm.weight")
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    try:    # the fused CPU kernel: the same update, about 8x faster than the per-tensor loop
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr)


def batch_loss(student: MultiExitBertForSequenceClassification, teacher: TeacherOutputs, data: Encoded,
               indices, spec: LossSpec, batch: dict | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The distillation loss of ``spec`` on the examples ``indices`` of ``data``."""
    batch = data.batch(indices) if batch is None else batch
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    out = student(**inputs, output_hidden_states=spec.representation)
    t_logits, t_states = teacher(indices, batch, spec.representation)
    return distillation_loss(out.exit_logits, out.hidden_states, t_logits, t_states, batch["labels"],
                             batch["attention_mask"], spec)


def dev_score(model: MultiExitBertForSequenceClassification, dev: Encoded, metric: str, select: str) -> tuple[float, list[float]]:
    """``(score, per-exit dev metric)``: the mean over exits (``all``) or the last exit (``final``)."""
    per_exit = per_exit_metric(metric, collect_exit_logits(model, dev), dev.labels)
    return (float(np.mean(per_exit)) if select == "all" else per_exit[-1]), per_exit


def _importance_batches(data: Encoded, examples: int | None, batch_size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(data))[: examples or len(data)]
    chosen = chosen[np.argsort(data.lengths[chosen], kind="stable")]   # less padding
    return [chosen[i:i + batch_size] for i in range(0, len(chosen), batch_size)]


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def run_segments(model: MultiExitBertForSequenceClassification, segments: list[Segment], data: dict[str, Encoded],
                 teacher: TeacherOutputs, optim: DistillConfig, workdir: Path, metric: str, select: str = "all",
                 importance_examples: int | None = None, evaluate_segments: bool = False,
                 progress: bool | None = None) -> tuple[MultiExitBertForSequenceClassification, list[dict], dict | None]:
    """Train ``model`` through ``segments``, pruning where a segment asks for it; resumable.

    Args:
        model: the student (it may be replaced by slenderized copies).
        segments: the training plan.
        data: ``{"train", "validation"}`` encoded splits.
        teacher: the frozen teacher's outputs on the training split.
        optim: batch size, weight decay, warm-up, seed, checkpoint interval.
        workdir: the stage's work folder (``checkpoint/state.pt`` lives there until the end).
        metric: the task metric of the dev evaluations.
        select: ``all`` (best mean exit score) or ``final`` (best last exit).
        importance_examples: examples per importance pass (None: the whole split).
        evaluate_segments: measure the dev metric at the end of every segment.
        progress: show tqdm bars (None: only on a terminal).

    Returns:
        ``(model, history, best)``: the trained model (the best evaluated checkpoint when a
        segment evaluates), one record per 10 steps, per prune and per evaluation, and the
        best evaluation (or None).
    """
    ckpt = Path(workdir) / "checkpoint" / "state.pt"
    train_data = data["train"]
    steps_per_epoch = math.ceil(len(train_data) / optim.batch_size)
    history: list[dict] = []
    best: dict | None = None
    position = {"segment": 0, "step": 0, "pruned": False}
    resume = torch.load(ckpt, weights_only=False) if ckpt.exists() else None
    if resume is not None:
        model = MultiExitBertForSequenceClassification(MultiExitBertConfig.from_dict(resume["config"]))
        model.load_state_dict(resume["model"])
        position, history, best = resume["position"], resume["history"], resume["best"]

    def checkpoint(opt=None, sched=None, pos=None):
        _save(ckpt, {"config": model.config.to_dict(), "model": model.state_dict(), "position": pos,
                     "optimizer": opt.state_dict() if opt else None, "scheduler": sched.state_dict() if sched else None,
                     "rng": torch.get_rng_state(), "history": history, "best": best})

    for s, seg in enumerate(segments):
        if s < position["segment"]:
            continue
        here = resume is not None and s == position["segment"]
        if seg.shape is not None and not (here and position["pruned"]):
            started = time.perf_counter()
            batches = _importance_batches(train_data, importance_examples, optim.batch_size, optim.seed * 7919 + s)
            scores = taylor_importance(
                model, batches, lambda m, idx: batch_loss(m, teacher, train_data, idx, seg.importance_loss)[0])
            before = shape_of(model)
            model = slenderize(model, scores, seg.shape)
            history.append({"segment": seg.name, "event": "prune", "from": before.to_dict(),
                            "to": seg.shape.to_dict(), "importance_batches": scores.batches,
                            "head_scores": [h.tolist() for h in scores.heads],
                            "parameters": count_parameters(model),
                            "parameters_without_embeddings": count_parameters(model, False),
                            "seconds": time.perf_counter() - started})
            position = {"segment": s, "step": 0, "pruned": True}
            checkpoint(pos=position)
            here = False
        optimizer = _optimizer(model, seg.learning_rate, optim.weight_decay)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(optim.warmup_ratio * seg.steps), max(seg.steps, 1))
        start = 0
        if here and resume is not None and resume["optimizer"] is not None and position["step"] > 0:
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
            torch.set_rng_state(resume["rng"])
            start = position["step"]
        else:
            torch.manual_seed(optim.seed * 1000 + s)
        resume = None
        points = set(seg.eval_points())
        orders: dict[int, np.ndarray] = {}
        model.train()
        bar = tqdm(range(start, seg.steps), desc=seg.name, leave=False,
                   disable=not progress if progress is not None else None)
        for b in bar:
            epoch, k = divmod(b, steps_per_epoch)
            if epoch not in orders:
                gen = torch.Generator().manual_seed(optim.seed * 1_000_003 + s * 1009 + epoch)
                orders[epoch] = np.asarray(get_length_grouped_indices(train_data.lengths.tolist(), optim.batch_size,
                                                                      generator=gen))
            idx = orders[epoch][k * optim.batch_size:(k + 1) * optim.batch_size]
            spec = seg.first_loss if b < seg.first_steps and seg.first_loss is not None else seg.loss
            loss, parts = batch_loss(model, teacher, train_data, idx, spec)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            if b % 10 == 0:
                history.append({"segment": seg.name, "step": b, "loss": loss.item(), **parts})
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if b + 1 in points:
                score, per_exit = dev_score(model, data["validation"], metric, select)
                history.append({"segment": seg.name, "step": b + 1, "event": "evaluate", "dev_score": score,
                                "dev_per_exit": per_exit})
                if best is None or score > best["score"]:
                    best = {"score": score, "per_exit": per_exit, "segment": seg.name, "step": b + 1,
                            "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
                model.train()
            done = b + 1 == seg.steps
            if (b + 1) % optim.checkpoint_every == 0 and not done:
                checkpoint(optimizer, scheduler, {"segment": s, "step": b + 1, "pruned": True})
        if evaluate_segments:
            score, per_exit = dev_score(model, data["validation"], metric, select)
            history.append({"segment": seg.name, "step": seg.steps, "event": "segment_end", "dev_score": score,
                            "dev_per_exit": per_exit, "shape": shape_of(model).to_dict(),
                            "parameters": count_parameters(model),
                            "parameters_without_embeddings": count_parameters(model, False)})
        position = {"segment": s + 1, "step": 0, "pruned": False}
        checkpoint(pos=position)
    if best is not None:
        model.load_state_dict(best["state"])
        best = {k: v for k, v in best.items() if k != "state"}
    model.eval()
    shutil.rmtree(ckpt.parent, ignore_errors=True)
    return model, history, best


# -- stages ------------------------------------------------------------------------------------

def _load(record: dict[str, Any]) -> MultiExitBertForSequenceClassification:
    return MultiExitBertForSequenceClassification.from_pretrained(Path(record["_entry"]) / "work" / "model").eval()


def _save_model(model: MultiExitBertForSequenceClassification, workdir: Path) -> None:
    model.save_pretrained(workdir / "model")


def teacher_model(cfg: TrainedModelConfig) -> tuple[MultiExitBertForSequenceClassification, dict[str, Any]]:
    """The fine-tuned teacher (cached by :func:`costeff_same.experiments.trained_model`)."""
    return trained_model(cfg)


@one_thread()
def _run_ta(cfg: TAConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    task, data = stage_data(cfg.teacher)
    teacher, _ = teacher_model(cfg.teacher)
    if cfg.init == "teacher":
        source = teacher.bert
    else:
        source = load_backbone(cfg.teacher.train.backbone, seed=cfg.teacher.train.seed).model
    student = from_backbone(source, task.num_labels, "costeff", cfg.gradient_equilibrium, seed=cfg.optim.seed,
                            exit_pooling=cfg.teacher.train.exit_pooling)
    o = cfg.optim
    n = len(data["train"])
    rep_steps = epochs_to_steps(cfg.representation_epochs, n, o.batch_size)
    pred_steps = epochs_to_steps(cfg.prediction_epochs, n, o.batch_size)
    rep = LossSpec(representation=True, prediction=False, hidden_weight=o.hidden_weight)
    pred = LossSpec(representation=False, prediction=True, mapping="exit_to_final", exits="all",
                    soft_weight=cfg.soft_weight, temperature=o.temperature)
    segments = []
    if rep_steps:
        segments.append(Segment("TA: representation distillation", rep_steps, o.learning_rate, rep))
    if pred_steps:
        segments.append(Segment("TA: prediction distillation", pred_steps, o.learning_rate, pred,
                                evaluations=cfg.evaluations))
    outputs = teacher_outputs(f"teacher-{cfg.teacher.config_hash()}", teacher, data["train"], o.cache_teacher)
    student, history, best = run_segments(student, segments, data, outputs, o, workdir, task.metric, "all")
    _save_model(student, workdir)
    return {"history": history, "best": best, "steps": {"representation": rep_steps, "prediction": pred_steps},
            "seconds": time.perf_counter() - started}


def ta_model(cfg: TAConfig) -> tuple[MultiExitBertForSequenceClassification, dict[str, Any]]:
    """The teaching assistant of ``cfg`` (trained once, then loaded from the cache) and its record."""
    record = load_or_run(STAGE_NAMES[TAConfig], cfg, _run_ta, seed=cfg.optim.seed)
    return _load(record), record


def _slender_start(cfg: SlenderizeConfig, num_labels: int):
    """The model slenderization starts from and the teacher it learns from (with a cache key)."""
    teacher, _ = teacher_model(cfg.teacher)
    if cfg.ta is not None:
        ta, _ = ta_model(cfg.ta)
        return copy.deepcopy(ta), ta, f"ta-{cfg.ta.config_hash()}"
    if cfg.exits == "final":    # the static baseline: (a copy of) the fine-tuned teacher, pruned
        return copy.deepcopy(teacher), teacher, f"teacher-{cfg.teacher.config_hash()}"
    student = from_backbone(teacher.bert, num_labels, "costeff", gradient_equilibrium=True, seed=cfg.optim.seed,
                            exit_pooling=cfg.teacher.train.exit_pooling)
    return student, teacher, f"teacher-{cfg.teacher.config_hash()}"


def slenderize_segments(cfg: SlenderizeConfig, start: Shape, hidden_size: int, examples: int) -> list[Segment]:
    """The prune events and training periods of ``cfg``, starting from shape ``start``."""
    o = cfg.optim
    both = LossSpec(representation=True, prediction=True, mapping=cfg.mapping, exits=cfg.exits,
                    soft_weight=cfg.soft_weight, temperature=o.temperature, hidden_weight=o.hidden_weight)
    rep = dataclasses.replace(both, prediction=False)
    scoring = both if cfg.importance == "all_exits" else dataclasses.replace(both, exits="final")
    steps = epochs_to_steps(cfg.event_epochs, examples, o.batch_size)
    segments = []
    for e, shape in enumerate(prune_schedule(start, cfg.heads, cfg.ffn, cfg.embedding_rank, hidden_size), 1):
        segments.append(Segment(f"event {e}", steps, o.learning_rate * cfg.lr_growth ** (e - 1), both,
                                first_steps=int(round(cfg.representation_fraction * steps)), first_loss=rep,
                                shape=shape, importance_loss=scoring))
    return segments


@one_thread()
def _run_slenderize(cfg: SlenderizeConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    task, data = stage_data(cfg.teacher)
    student, teacher, key = _slender_start(cfg, task.num_labels)
    if cfg.exits == "final" and student.config.gradient_equilibrium:
        student.config.gradient_equilibrium = False
    start = shape_of(student)
    segments = slenderize_segments(cfg, start, student.config.hidden_size, len(data["train"]))
    outputs = teacher_outputs(key, teacher, data["train"], cfg.optim.cache_teacher)
    initial = None
    if cfg.evaluate_events:
        score, per_exit = dev_score(student, data["validation"], task.metric, cfg.exits)
        initial = {"dev_score": score, "dev_per_exit": per_exit, "shape": start.to_dict(),
                   "parameters": count_parameters(student),
                   "parameters_without_embeddings": count_parameters(student, False)}
    student, history, _ = run_segments(student, segments, data, outputs, cfg.optim, workdir, task.metric,
                                       cfg.exits, cfg.importance_examples, cfg.evaluate_events)
    _save_model(student, workdir)
    return {"start_shape": start.to_dict(), "shape": shape_of(student).to_dict(), "events": len(segments),
            "steps_per_event": segments[0].steps if segments else 0,
            "schedule": [s.shape.to_dict() for s in segments], "initial": initial, "history": history,
            "seconds": time.perf_counter() - started}


def slender_model(cfg: SlenderizeConfig) -> tuple[MultiExitBertForSequenceClassification, dict[str, Any]]:
    """The slenderized (not yet recovered) model of ``cfg`` and its record (cached)."""
    record = load_or_run(STAGE_NAMES[SlenderizeConfig], cfg, _run_slenderize, seed=cfg.optim.seed)
    return _load(record), record


@one_thread()
def _run_recover(cfg: RecoverConfig, workdir: Path) -> dict[str, Any]:
    sc = cfg.slenderize
    task, data = stage_data(sc.teacher)
    student, _ = slender_model(sc)
    started = time.perf_counter()       # recovery only: the slenderization has its own record
    if sc.exits == "final":
        student.config.gradient_equilibrium = False
    _, teacher, key = _slender_start(sc, task.num_labels)
    o = sc.optim
    n = len(data["train"])
    both = LossSpec(representation=True, prediction=True, mapping=sc.mapping, exits=sc.exits,
                    soft_weight=sc.soft_weight, temperature=o.temperature, hidden_weight=o.hidden_weight)
    rep_steps = epochs_to_steps(cfg.representation_epochs, n, o.batch_size)
    pred_steps = epochs_to_steps(cfg.prediction_epochs, n, o.batch_size)
    segment = Segment("recovery", rep_steps + pred_steps, cfg.learning_rate or o.learning_rate, both,
                      first_steps=rep_steps, first_loss=dataclasses.replace(both, prediction=False),
                      evaluations=cfg.evaluations)
    outputs = teacher_outputs(key, teacher, data["train"], o.cache_teacher)
    student, history, best = run_segments(student, [segment] if segment.steps else [], data, outputs, o, workdir,
                                          task.metric, sc.exits)
    _save_model(student, workdir)
    return {"history": history, "best": best, "steps": {"representation": rep_steps, "prediction": pred_steps},
            "seconds": time.perf_counter() - started}


def recovered_model(cfg: RecoverConfig) -> tuple[MultiExitBertForSequenceClassification, dict[str, Any]]:
    """The recovered slender model of ``cfg`` and its record (cached)."""
    record = load_or_run(STAGE_NAMES[RecoverConfig], cfg, _run_recover, seed=cfg.slenderize.optim.seed)
    return _load(record), record


@one_thread()
def _run_depth(cfg: DepthConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    task, data = stage_data(cfg.teacher)
    teacher, _ = teacher_model(cfg.teacher)
    student = truncate_depth(teacher, cfg.layers)
    student.config.gradient_equilibrium = False
    o = cfg.optim
    n = len(data["train"])
    both = LossSpec(representation=True, prediction=True, mapping="exit_to_final", exits="final",
                    soft_weight=cfg.soft_weight, temperature=o.temperature, hidden_weight=o.hidden_weight)
    rep_steps = epochs_to_steps(cfg.representation_epochs, n, o.batch_size)
    pred_steps = epochs_to_steps(cfg.prediction_epochs, n, o.batch_size)
    segment = Segment(f"depth {cfg.layers}", rep_steps + pred_steps, o.learning_rate, both, first_steps=rep_steps,
                      first_loss=dataclasses.replace(both, prediction=False), evaluations=cfg.evaluations)
    outputs = teacher_outputs(f"teacher-{cfg.teacher.config_hash()}", teacher, data["train"], o.cache_teacher)
    student, history, best = run_segments(student, [segment] if segment.steps else [], data, outputs, o, workdir,
                                          task.metric, "final")
    _save_model(student, workdir)
    return {"history": history, "best": best, "seconds": time.perf_counter() - started}


def depth_model(cfg: DepthConfig) -> tuple[MultiExitBertForSequenceClassification, dict[str, Any]]:
    """The depth-truncated baseline of ``cfg`` and its record (cached)."""
    record = load_or_run(STAGE_NAMES[DepthConfig], cfg, _run_depth, seed=cfg.optim.seed)
    return _load(record), record
