"""Distillation losses of COST-EFF (Shen et al., EMNLP 2022, section 3.3; the methods page).

- **Prediction distillation**: ``CE(student / T, softmax(teacher / T))``, the soft
  cross-entropy at temperature ``T`` (COST-EFF uses ``T = 1``), mixed with the hard-label
  loss as ``soft_weight * soft + (1 - soft_weight) * hard`` (0.9/0.1 during
  slenderization; the teaching assistant averages the two, 0.5/0.5).
- **Representation distillation**: for each of the ``L + 1`` hidden states (embeddings
  first), the squared error averaged over the hidden dimension, masked by the attention
  mask, averaged over real tokens (of the whole batch), summed over layers.
- **Exit mappings**: ``exit_to_exit`` matches student exit ``i`` to teacher exit ``i``
  (slenderization and recovery, with the TA as teacher); ``exit_to_final`` matches every
  student exit to the teacher's final exit (the TA learning from the single-exit teacher).

For regression tasks (one output) the soft cross-entropy is replaced by the squared error
between student and teacher outputs (COST-EFF only covers classification; STS-B is ours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from costeff_same.core.modeling import task_loss

MAPPINGS = ("exit_to_exit", "exit_to_final")
EXIT_SETS = ("all", "final")


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       temperature: float = 1.0) -> torch.Tensor:
    """Soft cross-entropy ``-sum_c softmax(t / T)_c log_softmax(s / T)_c``, mean over the batch.

    COST-EFF's prediction distillation (Shen et al., 2022, section 3.3); no ``T**2`` factor.

    Args:
        student_logits: ``(batch, num_labels)``.
        teacher_logits: ``(batch, num_labels)`` (treated as constants).
        temperature: ``T > 0``.

    Returns:
        A scalar (nats).

    Raises:
        ValueError: for ``T <= 0`` or mismatched shapes.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    target = torch.softmax(teacher_logits.detach().float() / temperature, dim=-1)
    logp = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    return -(target * logp).sum(-1).mean()


def hidden_mse(student_states: Sequence[torch.Tensor], teacher_states: Sequence[torch.Tensor],
               attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked hidden-state MSE summed over layers (COST-EFF's representation distillation).

    Student state ``i`` is matched to teacher state ``i`` for ``i = 0 .. len(student_states) - 1``
    (embeddings first), so a shallower student (a depth-truncated model) matches the
    teacher's first layers.

    Args:
        student_states: ``L_s + 1`` tensors ``(batch, seq_len, hidden)``.
        teacher_states: at least ``L_s + 1`` tensors of the same shapes (constants).
        attention_mask: ``(batch, seq_len)`` 1 for real tokens, 0 for padding.

    Returns:
        A scalar: ``sum_layers sum_tokens mean_hidden (s - t)^2 / n_real_tokens``.

    Raises:
        ValueError: when the teacher has fewer states than the student or shapes differ.
    """
    if len(teacher_states) < len(student_states):
        raise ValueError(f"the teacher has {len(teacher_states)} hidden states, the student "
                         f"{len(student_states)}: a student cannot be deeper than its teacher")
    mask = attention_mask.float()           # float32 whatever the states' dtype (bf16 autocast)
    tokens = mask.sum().clamp_min(1.0)
    total = student_states[0].new_zeros((), dtype=torch.float32)
    for s, t in zip(student_states, teacher_states):
        if s.shape != t.shape:
            raise ValueError(f"student state {tuple(s.shape)} and teacher state {tuple(t.shape)} differ")
        per_token = (s.float() - t.detach().float()).pow(2).mean(-1)       # (batch, seq_len)
        total = total + (per_token * mask).sum() / tokens
    return total


def exit_mapping(student_exits: int, teacher_exits: int, mapping: str) -> list[int]:
    """The teacher exit (0-based) each student exit learns from.

    Args:
        student_exits: number of student exits ``L_s``.
        teacher_exits: number of teacher exits ``L_t``.
        mapping: ``exit_to_exit`` (student ``i`` -> teacher ``i``; needs ``L_s <= L_t``) or
            ``exit_to_final`` (every student exit -> teacher exit ``L_t - 1``).

    Raises:
        ValueError: for an unknown mapping or a student deeper than its teacher.
    """
    if mapping not in MAPPINGS:
        raise ValueError(f"unknown exit mapping {mapping!r}; accepted: {', '.join(MAPPINGS)}")
    if mapping == "exit_to_final":
        return [teacher_exits - 1] * student_exits
    if student_exits > teacher_exits:
        raise ValueError(f"exit_to_exit needs a student with at most {teacher_exits} exits, got {student_exits}")
    return list(range(student_exits))


def trained_exits(num_exits: int, exits: str) -> list[int]:
    """Indices (0-based) of the exits that get a prediction loss: ``all`` or only the ``final`` one.

    Raises:
        ValueError: for an unknown exit set.
    """
    if exits not in EXIT_SETS:
        raise ValueError(f"unknown exit set {exits!r}; accepted: {', '.join(EXIT_SETS)}")
    return list(range(num_exits)) if exits == "all" else [num_exits - 1]


def prediction_loss(student_exit_logits: torch.Tensor, teacher_exit_logits: torch.Tensor,
                    labels: torch.Tensor, mapping: str = "exit_to_exit", exits: str = "all",
                    soft_weight: float = 0.9, temperature: float = 1.0) -> torch.Tensor:
    """COST-EFF's prediction distillation, summed over the trained exits.

    Each trained student exit ``i`` pays ``soft_weight * CE(s_i / T, softmax(t_m(i) / T))
    + (1 - soft_weight) * CE(s_i, labels)`` where ``m`` is the exit mapping. For
    regression (``num_labels == 1``) the soft term is the squared error to the teacher.

    Args:
        student_exit_logits: ``(L_s, batch, num_labels)``.
        teacher_exit_logits: ``(L_t, batch, num_labels)``.
        labels: ``(batch,)`` class ids (floats for regression).
        mapping: ``exit_to_exit`` or ``exit_to_final``.
        exits: ``all`` or ``final`` (a static model trained without exits).
        soft_weight: weight of the soft term in ``[0, 1]``.
        temperature: ``T > 0``.

    Returns:
        A scalar: the sum over trained exits.

    Raises:
        ValueError: for an unknown mapping or exit set, or ``soft_weight`` outside ``[0, 1]``.
    """
    if not 0.0 <= soft_weight <= 1.0:
        raise ValueError(f"soft_weight={soft_weight} must be in [0, 1]")
    num_labels = student_exit_logits.shape[-1]
    targets = exit_mapping(student_exit_logits.shape[0], teacher_exit_logits.shape[0], mapping)
    total = student_exit_logits.new_zeros((), dtype=torch.float32)
    for i in trained_exits(student_exit_logits.shape[0], exits):
        s, t = student_exit_logits[i], teacher_exit_logits[targets[i]]
        if num_labels == 1:
            soft = nn.functional.mse_loss(s.float(), t.detach().float())
        else:
            soft = soft_cross_entropy(s, t, temperature)
        hard = task_loss(s, labels, num_labels) if soft_weight < 1.0 else s.new_zeros(())
        total = total + soft_weight * soft + (1.0 - soft_weight) * hard
    return total


@dataclass(frozen=True)
class LossSpec:
    """What one distillation phase optimises.

    Attributes:
        representation: include the masked hidden-state MSE.
        prediction: include the prediction distillation.
        mapping: ``exit_to_exit`` or ``exit_to_final``.
        exits: ``all`` exits or only the ``final`` one get a prediction loss.
        soft_weight: soft vs hard label mix of the prediction term.
        temperature: distillation temperature ``T``.
        hidden_weight: multiplier of the representation term.

    Raises:
        ValueError: when neither term is on, or for an unknown mapping or exit set.
    """

    representation: bool = True
    prediction: bool = True
    mapping: str = "exit_to_exit"
    exits: str = "all"
    soft_weight: float = 0.9
    temperature: float = 1.0
    hidden_weight: float = 1.0

    def __post_init__(self):
        if not (self.representation or self.prediction):
            raise ValueError("a distillation phase needs the representation or the prediction term")
        if self.mapping not in MAPPINGS:
            raise ValueError(f"unknown exit mapping {self.mapping!r}; accepted: {', '.join(MAPPINGS)}")
        if self.exits not in EXIT_SETS:
            raise ValueError(f"unknown exit set {self.exits!r}; accepted: {', '.join(EXIT_SETS)}")


def distillation_loss(student_exit_logits: torch.Tensor, student_states: Sequence[torch.Tensor] | None,
                      teacher_exit_logits: torch.Tensor, teacher_states: Sequence[torch.Tensor] | None,
                      labels: torch.Tensor, attention_mask: torch.Tensor,
                      spec: LossSpec) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of ``spec`` on one batch, and its parts (floats, for the history).

    Args:
        student_exit_logits: ``(L_s, batch, num_labels)``.
        student_states: ``L_s + 1`` tensors ``(batch, seq_len, hidden)`` (needed with
            ``spec.representation``).
        teacher_exit_logits: ``(L_t, batch, num_labels)``.
        teacher_states: ``L_t + 1`` tensors (needed with ``spec.representation``).
        labels: ``(batch,)``.
        attention_mask: ``(batch, seq_len)``.
        spec: which terms, mapping and weights.

    Raises:
        ValueError: when hidden states are needed and missing.
    """
    parts: dict[str, float] = {}
    loss = student_exit_logits.new_zeros((), dtype=torch.float32)
    if spec.representation:
        if student_states is None or teacher_states is None:
            raise ValueError("representation distillation needs the student's and the teacher's hidden states")
        rep = hidden_mse(student_states, teacher_states, attention_mask)
        parts["representation"] = rep.item()
        loss = loss + spec.hidden_weight * rep
    if spec.prediction:
        pred = prediction_loss(student_exit_logits, teacher_exit_logits, labels, spec.mapping, spec.exits,
                               spec.soft_weight, spec.temperature)
        parts["prediction"] = pred.item()
        loss = loss + pred
    return loss, parts
