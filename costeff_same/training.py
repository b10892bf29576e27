"""Multi-exit fine-tuning regimes, resumable (papers.md section 3).

- ``joint``: the unweighted sum of every exit's loss (ElasticBERT, COST-EFF).
- ``weighted``: PABEE's ``sum_j j * CE_j / sum_j j`` (deeper exits weigh more).
- ``two_stage``: DeeBERT's. Stage 1 fine-tunes the backbone with the last exit only;
  stage 2 freezes the backbone and the last exit and trains the other exits. Our stage 2
  runs the frozen encoder in eval mode under ``no_grad`` (no dropout inside it), which
  makes it a cheap forward pass; DeeBERT keeps the encoder in train mode.

Training is seeded and deterministic on CPU: the data order of every epoch comes from a
generator seeded with ``(seed, stage, epoch)`` and groups examples of similar length
(``transformers``' length-grouped sampling: about 1.6x faster steps on CPU), and a checkpoint (model, optimiser,
scheduler, RNG state, position) is written atomically every ``checkpoint_every`` steps,
so an interrupted run resumes and ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import get_length_grouped_indices

from .config import TrainConfig
from .data import Encoded
from .modeling import MultiExitBertForSequenceClassification, task_loss


class TrainingInterrupted(RuntimeError):
    """Raised by the ``interrupt_after`` hook (tests simulate a killed run with it)."""


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


def _parameters(model: MultiExitBertForSequenceClassification, stage: Stage, weight_decay: float):
    if stage.frozen_encoder:
        trained = [i for i, w in enumerate(stage.weights) if w > 0]
        named = [(n, p) for n, p in model.named_parameters()
                 if n.startswith("classifiers.") and int(n.split(".")[1]) in trained
                 or n.startswith("poolers.") and model.config.exit_style == "deebert"
                 and int(n.split(".")[1]) in trained]
    else:
        named = list(model.named_parameters())
    no_decay = ("bias", "LayerNorm.weight")
    return [
        {"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]


def stage_loss(model, batch: dict, stage: Stage) -> torch.Tensor:
    """Weighted sum of exit losses of one batch under ``stage``."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if stage.frozen_encoder:
        with torch.no_grad():
            model.bert.eval()
            hidden = model.embed(inputs["input_ids"], inputs.get("token_type_ids"))
            bias = model.attention_bias(inputs["attention_mask"], hidden)
            states = []
            for i in range(model.num_layers):
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


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    model: MultiExitBertForSequenceClassification,
    data: Encoded,
    cfg: TrainConfig,
    workdir: Path,
    progress: bool | None = None,
    interrupt_after: int | None = None,
) -> list[dict]:
    """Fine-tune ``model`` in place under ``cfg``, resuming from ``workdir/checkpoint``.

    Args:
        model: the multi-exit model (initialised from a backbone).
        data: the encoded training split.
        cfg: the training config (regime, epochs, rates, seed).
        workdir: folder for the resumable checkpoint (removed on success).
        progress: show a tqdm bar (None: only on a terminal).
        interrupt_after: raise :class:`TrainingInterrupted` after this many steps of this
            call (for tests that simulate a killed run).

    Returns:
        The loss history: one ``{"stage", "epoch", "step", "loss"}`` record per 10 steps.
    """
    ckpt_path = Path(workdir) / "checkpoint" / "state.pt"
    stages = stages_for(cfg, model.num_layers)
    n = len(data)
    steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    position = {"stage": 0, "epoch": 0, "batch": 0}
    history: list[dict] = []
    resume = torch.load(ckpt_path, weights_only=False) if ckpt_path.exists() else None
    if resume is not None:
        model.load_state_dict(resume["model"])
        position, history = resume["position"], resume["history"]
    steps_this_call = 0
    for s, stage in enumerate(stages):
        if s < position["stage"]:
            continue
        optimizer = torch.optim.AdamW(_parameters(model, stage, cfg.weight_decay), lr=stage.learning_rate)
        total = steps_per_epoch * stage.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
        if resume is not None and s == position["stage"]:
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
            torch.set_rng_state(resume["rng"])
        else:
            torch.manual_seed(cfg.seed * 1000 + s)
        model.train()
        for epoch in range(position["epoch"] if s == position["stage"] else 0, stage.epochs):
            generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + s * 1009 + epoch)
            order = np.asarray(get_length_grouped_indices(data.lengths.tolist(), cfg.batch_size, generator=generator))
            first = position["batch"] if (s, epoch) == (position["stage"], position["epoch"]) else 0
            bar = tqdm(range(first, steps_per_epoch), desc=f"{stage.name} epoch {epoch + 1}/{stage.epochs}",
                       disable=not progress if progress is not None else None, leave=False)
            for b in bar:
                batch = data.batch(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
                loss = stage_loss(model, batch, stage)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                steps_this_call += 1
                if b % 10 == 0:
                    history.append({"stage": stage.name, "epoch": epoch, "step": b, "loss": loss.item()})
                    bar.set_postfix(loss=f"{loss.item():.3f}")
                done = b + 1 == steps_per_epoch
                nxt = {"stage": s, "epoch": epoch + 1, "batch": 0} if done else {"stage": s, "epoch": epoch, "batch": b + 1}
                if (b + 1) % cfg.checkpoint_every == 0 or done:
                    _save_checkpoint(ckpt_path, {
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
                        "position": nxt, "history": history,
                    })
                if interrupt_after is not None and steps_this_call >= interrupt_after:
                    raise TrainingInterrupted(f"interrupted after {steps_this_call} steps")
        position = {"stage": s + 1, "epoch": 0, "batch": 0}
        resume = None
    model.eval()
    shutil.rmtree(ckpt_path.parent, ignore_errors=True)
    return history


@torch.no_grad()
def collect_exit_logits(model: MultiExitBertForSequenceClassification, data: Encoded,
                        batch_size: int = 128) -> np.ndarray:
    """Every exit's logits on every example: ``(L, N, num_labels)`` float32, in data order."""
    model.eval()
    out = np.zeros((model.num_layers, len(data), model.num_labels), dtype=np.float32)
    for idx, batch in data.eval_batches(batch_size):
        batch.pop("labels")
        out[:, idx] = model(**batch).exit_logits.numpy()
    return out


def set_threads(n: int | None = None) -> None:
    """Use ``n`` intra-op threads (default: ``$COSTEFF_SAME_THREADS``, else every core).

    On a shared machine one thread per process avoids OpenMP threads spinning against
    each other (seen here: 10x slower steps with two 2-thread processes on 2 cores).

    Raises:
        ValueError: for ``n < 1`` or a ``$COSTEFF_SAME_THREADS`` that is not a whole number >= 1.
    """
    if n is None:
        value = os.environ.get("COSTEFF_SAME_THREADS", "").strip()
        if value and not (value.isdigit() and int(value) >= 1):
            raise ValueError(f"COSTEFF_SAME_THREADS={value!r} must be a whole number >= 1 (or unset: every core)")
        n = int(value) if value else None
    if n is not None and n < 1:
        raise ValueError(f"threads={n} must be >= 1 (or None: every core)")
    torch.set_num_threads(n or os.cpu_count() or 1)


