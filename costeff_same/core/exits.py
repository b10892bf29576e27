"""Exit policies and batched early-exit inference.

Policies (Xin et al., 2020; Zhou et al., 2020; Shen et al., 2022; the methods page):

- ``entropy`` (DeeBERT, COST-EFF): exit at the first layer whose softmax entropy (nats)
  is below the entropy threshold ``tau``.
- ``patience`` (PABEE): exit when the argmax has stayed the same for ``patience``
  consecutive layers (for regression: when the prediction changed by less than
  ``regression_tolerance``), so the earliest exit is layer ``patience + 1``.
- ``maxprob``: exit at the first layer whose largest class probability is >= ``tau``.

Every example exits at the last layer at the latest. Two execution paths share one
policy object and agree exactly on every exit layer and prediction:

(a) :func:`simulate_exits` decides from all exits' logits ``(L, N, C)`` (a full forward);
(b) :func:`early_exit_forward` runs the encoder layer by layer and drops the rows that
    have exited from the batch before the next layer, so wall-clock time falls with the
    mean exit layer at any batch size, not only at batch 1 (DeeBERT's and PABEE's code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from costeff_same.core.modeling import MultiExitBertForSequenceClassification, MultiExitOutput
from costeff_same.foundations.registry import POLICIES


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Softmax entropy in nats: ``(batch, num_labels)`` -> ``(batch,)``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


@dataclass(frozen=True)
class ExitPolicy:
    """An exit rule, applied layer by layer with a per-row state.

    Attributes:
        name: ``entropy``, ``patience`` or ``maxprob``.
        threshold: entropy threshold (nats) for ``entropy``; probability for ``maxprob``;
            the number of consecutive agreeing layers for ``patience``.
        regression_tolerance: for ``patience`` on regression tasks.

    Raises:
        ValueError: for an unknown name or a threshold out of range.
    """

    name: str
    threshold: float
    regression_tolerance: float = 0.1

    def __post_init__(self):
        if self.name not in POLICIES:
            raise ValueError(f"unknown exit policy {self.name!r}; accepted: {', '.join(POLICIES)}")
        if self.name == "patience" and (self.threshold < 1 or self.threshold != int(self.threshold)):
            raise ValueError(f"patience={self.threshold} must be a whole number >= 1")
        if self.name == "maxprob" and not 0 < self.threshold <= 1:
            raise ValueError(f"maxprob threshold={self.threshold} must be in (0, 1]")
        if self.name == "entropy" and self.threshold < 0:
            raise ValueError(f"entropy threshold={self.threshold} must be >= 0")

    def init_state(self, batch: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Fresh per-row state for ``batch`` rows, on ``device``."""
        return {"count": torch.zeros(batch, dtype=torch.long, device=device),
                "previous": torch.full((batch,), math.nan, device=device)}

    def step(self, logits: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """Decide which rows exit at this layer.

        Args:
            logits: ``(rows, num_labels)`` this layer's exit logits.
            state: the rows' state (updated in place).

        Returns:
            ``(rows,)`` bool, True where the row exits here.
        """
        if self.name == "entropy":
            return entropy(logits) < self.threshold
        if self.name == "maxprob":
            return torch.softmax(logits.float(), -1).max(-1).values >= self.threshold
        if logits.shape[-1] == 1:
            current = logits[:, 0].float()
            same = (current - state["previous"]).abs() < self.regression_tolerance
        else:
            current = logits.argmax(-1).float()
            same = current == state["previous"]
        state["count"] = torch.where(same, state["count"] + 1, torch.zeros_like(state["count"]))
        state["previous"] = current
        return state["count"] >= int(self.threshold)

    @staticmethod
    def subset(state: dict[str, torch.Tensor], keep: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state of the rows selected by the bool mask ``keep``."""
        return {k: v[keep] for k, v in state.items()}


@dataclass
class ExitDecision:
    """Where each example exits and what it predicts there.

    Attributes:
        exit_layer: ``(N,)`` int, 1..L.
        logits: ``(N, num_labels)`` the logits of the exit taken.
    """

    exit_layer: np.ndarray
    logits: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        """``(N,)`` argmax class (or the value, for regression)."""
        return predictions_of(self.logits)


def predictions_of(logits: np.ndarray) -> np.ndarray:
    """Argmax class of ``(..., C)`` logits, or the value for regression (``C == 1``)."""
    return logits[..., 0] if logits.shape[-1] == 1 else logits.argmax(-1)


def simulate_exits(exit_logits: torch.Tensor | np.ndarray, policy: ExitPolicy) -> ExitDecision:
    """Path (a): apply ``policy`` to precomputed logits of every exit.

    Args:
        exit_logits: ``(L, N, num_labels)`` from a full forward.
        policy: the exit policy.

    Returns:
        :class:`ExitDecision` for the ``N`` examples.
    """
    exit_logits = torch.as_tensor(exit_logits).cpu()        # decided on the host
    depth, n = exit_logits.shape[:2]
    state = policy.init_state(n)
    exit_layer = torch.full((n,), depth, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    for i in range(depth - 1):
        exits = policy.step(exit_logits[i], state) & ~done
        exit_layer[exits] = i + 1
        done |= exits
    chosen = exit_logits[exit_layer - 1, torch.arange(n)]
    return ExitDecision(exit_layer.numpy(), chosen.numpy())


@torch.no_grad()
def early_exit_forward(
    model: MultiExitBertForSequenceClassification,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    policy: ExitPolicy,
    token_type_ids: torch.Tensor | None = None,
) -> MultiExitOutput:
    """Path (b): batched early exit that stops computing the rows that have exited.

    After each layer the exit of the still-active rows is evaluated; rows that exit are
    recorded and removed from the batch, so layer ``k`` runs only on the rows whose exit
    layer is >= ``k``. When rows leave, the padding columns that no remaining row needs
    are cut off (right padding, as the tokenizers here pad) and the attention mask is
    rebuilt once for the smaller batch; while no row leaves, the layers reuse it. A
    batch without padding runs attention unmasked (``attention_bias`` is None).

    Args:
        model: the multi-exit model (put it in eval mode first).
        input_ids: ``(batch, seq_len)``.
        attention_mask: ``(batch, seq_len)``.
        policy: the exit policy.
        token_type_ids: ``(batch, seq_len)`` or None.

    Returns:
        :class:`MultiExitOutput` with ``logits`` ``(batch, num_labels)`` of each row's
        exit and ``exit_layer`` ``(batch,)`` in 1..L, on the CPU (the layers run on the
        model's device).
    """
    batch = input_ids.shape[0]
    depth = model.num_layers
    hidden = model.embed(input_ids, token_type_ids)
    device = hidden.device
    rows = torch.arange(batch, device=device)
    state = policy.init_state(batch, device)
    out_logits = torch.empty(batch, model.num_labels, device=device)
    exit_layer = torch.full((batch,), depth, dtype=torch.long, device=device)
    mask = attention_mask.to(device)
    bias = model.attention_bias(mask, hidden)
    for i in range(depth):
        hidden = model.layer_forward(i, hidden, bias)
        logits = model.exit_forward(i, hidden, mask)
        if i == depth - 1:
            out_logits[rows] = logits.float()
            break
        exits = policy.step(logits, state)
        leaving = int(exits.sum())  # the one host read per layer: the batch's next shape needs it
        if leaving == 0:
            continue
        out_logits[rows[exits]] = logits[exits].float()
        exit_layer[rows[exits]] = i + 1
        if leaving == len(rows):
            break
        keep = ~exits
        rows, hidden, mask, state = rows[keep], hidden[keep], mask[keep], policy.subset(state, keep)
        length = int(mask.sum(1).max())
        if length < mask.shape[1] and not mask[:, length:].any():
            hidden, mask = hidden[:, :length], mask[:, :length]
        bias = model.attention_bias(mask, hidden)
    return MultiExitOutput(logits=out_logits.cpu(), exit_layer=exit_layer.cpu())   # no copy on the CPU
