"""Multi-exit fine-tuning regimes, resumable (see the book's methods page).

- ``joint``: the unweighted sum of every exit's loss (ElasticBERT, COST-EFF).
- ``weighted``: PABEE's ``sum_j j * CE_j / sum_j j`` (deeper exits weigh more).
- ``two_stage``: DeeBERT's. Stage 1 fine-tunes the backbone with the last exit only;
  stage 2 freezes the backbone and the last exit and trains the other exits. Our stage 2
  runs the frozen encoder in eval mode under ``no_grad`` (no dropout inside it), which
  makes it a cheap forward pass, and only up to the deepest trained exit (the last layer
  feeds only the frozen last exit); DeeBERT keeps the encoder in train mode.

Training is seeded and deterministic on CPU: the data order of every epoch comes from a
generator seeded with ``(seed, stage, epoch)`` and groups examples of similar length
(``transformers``' length-grouped sampling: about 1.6x faster steps on CPU), and a checkpoint (model, optimiser,
scheduler, RNG state, position) is written atomically every ``checkpoint_every`` steps,
so an interrupted run resumes and ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from costeff_same.core.encoding import Encoded
from costeff_same.core.modeling import MultiExitBertForSequenceClassification, task_loss
from costeff_same.engine.trainer import Segment, TrainingInterrupted, run_segments
from costeff_same.foundations.config import TrainConfig

__all__ = ["TrainingInterrupted", "collect_exit_logits", "exit_weights", "stages_for", "train"]


def exit_weights(regime: str, depth: int) -> torch.Tensor:
    """Per-exit loss weights ``(depth,)``: ones for ``joint``, ``j / sum j`` for ``weighted``."""
    if regime == "weighted":
        j = torch.arange(1, depth + 1, dtype=torch.float32)
        return j / j.sum()
    return torch.ones(depth)


@dataclass
class Stage:
    """One optimisation stage: which exits are trained, for how long, at what rate."""

    name: str
    epochs: int
    learning_rate: float
    weights: torch.Tensor          # (L,) loss weight of each exit, 0 = not trained
    frozen_encoder: bool = False


def stages_for(cfg: TrainConfig, depth: int) -> list[Stage]:
    """The stages of ``cfg.regime`` for a model of ``depth`` layers."""
    if cfg.regime != "two_stage":
        return [Stage(cfg.regime, cfg.epochs, cfg.learning_rate, exit_weights(cfg.regime, depth))]
    last = torch.zeros(depth)
    last[-1] = 1.0
    others = torch.ones(depth)
    others[-1] = 0.0
    return [
        Stage("backbone+last exit", cfg.epochs, cfg.learning_rate, last),
        Stage("exits on frozen backbone", cfg.exit_epochs, cfg.exit_learning_rate, others, frozen_encoder=True),
    ]


def _trained_parameters(stage: Stage):
    """The named parameters ``stage`` trains: all, or on a frozen encoder its exits' heads only."""
    def select(model: MultiExitBertForSequenceClassification):
        if not stage.frozen_encoder:
            return list(model.named_parameters())
        trained = [i for i, w in enumerate(stage.weights) if w > 0]
        return [(n, p) for n, p in model.named_parameters()
                if n.startswith("classifiers.") and int(n.split(".")[1]) in trained
                or n.startswith("poolers.") and model.config.exit_style == "deebert"
                and int(n.split(".")[1]) in trained]
    return select


def stage_loss(model, batch: dict, stage: Stage) -> torch.Tensor:
    """Weighted sum of exit losses of one batch under ``stage``."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if stage.frozen_encoder:
        deepest = max(i for i, w in enumerate(stage.weights.tolist()) if w > 0) + 1
        with torch.no_grad():   # the layers above the deepest trained exit feed no loss: not run
            model.bert.eval()
            hidden = model.embed(inputs["input_ids"], inputs.get("token_type_ids"))
            bias = model.attention_bias(inputs["attention_mask"], hidden)
            states = []
            for i in range(deepest):
                hidden = model.layer_forward(i, hidden, bias)
                states.append(hidden)
            model.bert.train()
        exit_logits = [model.exit_forward(i, h, inputs['attention_mask']) if stage.weights[i] > 0 else None
                       for i, h in enumerate(states)]
    else:
        exit_logits = list(model(**inputs).exit_logits)
    labels = batch["labels"]
    return sum(w * task_loss(z, labels, model.num_labels)
               for w, z in zip(stage.weights.tolist(), exit_logits) if w > 0)


def train(
    model: MultiExitBertForSequenceClassification,
    data: Encoded,
    cfg: TrainConfig,
    workdir: Path,
    progress: bool | None = None,
    interrupt_after: int | None = None,
) -> list[dict]:
    """Fine-tune ``model`` in place under ``cfg``, resuming from ``workdir/checkpoint``.

    Each stage of :func:`stages_for` is one :class:`~costeff_same.engine.trainer.Segment` of
    the one trainer (:func:`costeff_same.engine.trainer.run_segments`), with PyTorch's fused
    AdamW update (as every stage of chapter 2).

    Args:
        model: the multi-exit model (initialised from a backbone).
        data: the encoded training split.
        cfg: the training config (regime, epochs, rates, seed).
        workdir: folder for the resumable checkpoint (removed on success).
        progress: False hides the steps' bar (see :func:`~costeff_same.engine.trainer.run_segments`).
        interrupt_after: raise :class:`TrainingInterrupted` after this many steps of this
            call (for tests that simulate a killed run).

    Returns:
        The loss history: one ``{"segment", "step", "loss"}`` record per 10 steps.
    """
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    segments = [Segment(stage.name, steps_per_epoch * stage.epochs, stage.learning_rate,
                        loss=lambda m, idx, stage=stage: (stage_loss(m, data.batch(idx), stage), {}),
                        parameters=_trained_parameters(stage))
                for stage in stages_for(cfg, model.num_layers)]
    trained, history, _ = run_segments(model, segments, data.lengths, cfg, workdir, progress=progress,
                                       interrupt_after=interrupt_after)
    if trained is not model:
        model.load_state_dict(trained.state_dict())
    return history


@torch.no_grad()
def collect_exit_logits(model: MultiExitBertForSequenceClassification, data: Encoded,
                        batch_size: int = 128) -> np.ndarray:
    """Every exit's logits on every example: ``(L, N, num_labels)`` float32, in data order."""
    model.eval()
    out = np.zeros((model.num_layers, len(data), model.num_labels), dtype=np.float32)
    for idx, batch in data.eval_batches(batch_size):
        batch.pop("labels")
        out[:, idx] = model(**batch).exit_logits.cpu().numpy()
    return out


