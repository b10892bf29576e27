"""The frozen teacher's outputs for distillation batches (COST-EFF's teacher and TA).

:func:`teacher_outputs` is a pure function of the teacher's stage config, memoised in
memory (the two most recent teachers), so the stages of one process that learn from the same
teacher share one pass over the training split.
"""

from __future__ import annotations

import numpy as np
import torch

from costeff_same.core.encoding import Encoded
from costeff_same.core.modeling import MultiExitBertForSequenceClassification


class TeacherOutputs:
    """The frozen teacher's exit logits and hidden states for training batches.

    With ``precompute=True`` one eval-mode pass over the split stores every example's logits
    ``(L_t, N, C)`` and hidden states (``L_t + 1`` states of ``(len_i, hidden)`` in float16);
    otherwise the teacher runs on each batch under ``no_grad``. Either way dropout is off.

    Args:
        teacher: the teacher model.
        data: the split the batches come from.
        precompute: precompute (fast, memory ``~ 2 * (L_t + 1) * hidden`` bytes per token).
    """

    def __init__(self, teacher: MultiExitBertForSequenceClassification, data: Encoded, precompute: bool,
                 batch_size: int = 128):
        self.teacher = teacher.eval()
        self.data = data
        self.precomputed = precompute
        if precompute:
            depth = teacher.num_layers
            self.logits = torch.zeros(depth, len(data), teacher.num_labels)
            self.states: list[torch.Tensor | None] = [None] * len(data)
            with torch.no_grad():
                for idx, batch in data.eval_batches(batch_size):
                    batch.pop("labels")
                    out = teacher(**batch, output_hidden_states=True)
                    self.logits[:, torch.as_tensor(idx)] = out.exit_logits.float().cpu()
                    stacked = torch.stack(out.hidden_states)              # (L_t + 1, batch, seq, hidden)
                    for r, i in enumerate(idx):
                        self.states[int(i)] = stacked[:, r, : int(data.lengths[i])].half().cpu().clone()

    def __call__(self, indices, batch: dict, states: bool) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """``(exit_logits (L_t, batch, C), [L_t + 1 states (batch, seq_len, hidden)] or None)``."""
        if not self.precomputed:
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            with torch.no_grad():
                out = self.teacher(**inputs, output_hidden_states=states)
            return out.exit_logits, (list(out.hidden_states) if states else None)
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        device = self.teacher.device            # the student's: the precomputed logits live on the host
        logits = self.logits[:, idx].to(device)
        if not states:
            return logits, None
        seq_len = batch["input_ids"].shape[1]
        first = self.states[int(idx[0])]
        out = torch.zeros(first.shape[0], len(idx), seq_len, first.shape[-1])
        for r, i in enumerate(idx.tolist()):
            s = self.states[i]
            out[:, r, : s.shape[1]] = s.float()
        return logits, list(out.to(device).unbind(0))
