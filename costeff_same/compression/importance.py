"""First-order Taylor importance of attention heads and FFN neurons.

COST-EFF (Shen et al., 2022, section 3.2) after Molchanov et al. (2017); the methods page.

Before each slenderization event COST-EFF scores every weight by
``I = |theta * sum_batches dL/dtheta|`` over one pass of the training data with dropout
off, where ``L`` is the **all-exit** distillation loss (every exit against the teaching
assistant's matching exit, soft + hard, plus the hidden-state MSE). The scores are then
aggregated:

- head ``j`` of a layer: the sum of ``I`` over head ``j``'s columns of the attention-output
  matrix ``W_O`` (``hidden x heads*head_size``);
- FFN neuron ``n``: the sum of ``I`` over row ``n`` of the intermediate matrix
  (``ffn x hidden``) and column ``n`` of the FFN output matrix (``hidden x ffn``).

The loss is the caller's: :func:`costeff_same.compression.pipeline` passes the all-exit
loss, or the final exit's only for the ablation that shows why the exits matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from costeff_same.core.modeling import MultiExitBertForSequenceClassification


@dataclass
class Importance:
    """Aggregated Taylor scores of one model.

    Attributes:
        heads: one ``(heads_i,)`` tensor per layer, the score of each attention head.
        neurons: one ``(ffn_i,)`` tensor per layer, the score of each FFN neuron.
        batches: number of batches the gradient was summed over.
    """

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]
    batches: int = 0

    def head_ranking(self, layer: int) -> list[int]:
        """Head indices of ``layer`` from most to least important (ties: lower index first)."""
        scores = self.heads[layer]
        return sorted(range(len(scores)), key=lambda j: (-float(scores[j]), j))


def aggregate(model: MultiExitBertForSequenceClassification) -> Importance:
    """Head and neuron scores from the accumulated ``.grad`` of each layer's weights.

    Args:
        model: a model whose gradients hold ``sum_batches dL/dtheta``.

    Raises:
        ValueError: when a needed gradient is missing (no backward pass was run).
    """
    heads, neurons = [], []
    head_size = model.config.attention_head_size
    for i, layer in enumerate(model.bert.encoder.layer):
        w_o = layer.attention.output.dense.weight          # (hidden, heads * head_size)
        w_in = layer.intermediate.dense.weight             # (ffn, hidden)
        w_out = layer.output.dense.weight                  # (hidden, ffn)
        for name, w in (("attention output", w_o), ("intermediate", w_in), ("FFN output", w_out)):
            if w.grad is None:
                raise ValueError(f"layer {i} {name} weight has no gradient: run a backward pass first")
        score_o = (w_o * w_o.grad).abs()
        heads.append(score_o.view(w_o.shape[0], -1, head_size).sum(dim=(0, 2)).detach().clone())
        neurons.append(((w_in * w_in.grad).abs().sum(1) + (w_out * w_out.grad).abs().sum(0)).detach().clone())
    return Importance(heads, neurons)


def taylor_importance(model: MultiExitBertForSequenceClassification, batches: Iterable[dict],
                      loss_fn: Callable[[MultiExitBertForSequenceClassification, dict], torch.Tensor]) -> Importance:
    """Taylor importance ``|theta * sum dL/dtheta|`` of heads and neurons over ``batches``.

    The model runs in eval mode (dropout off; gradient equilibrium, a training-mode
    rescaling, is off too); its gradients are summed over every batch, aggregated, and
    cleared again. The weights are not changed.

    Args:
        model: the model to score.
        batches: the batches of one pass over (a sample of) the training data; each is
            whatever ``loss_fn`` takes.
        loss_fn: ``(model, batch) -> scalar loss`` (COST-EFF: the all-exit distillation loss).

    Returns:
        :class:`Importance`.

    Raises:
        ValueError: when ``batches`` is empty.
    """
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    count = 0
    with torch.enable_grad():
        for batch in batches:
            loss_fn(model, batch).backward()
            count += 1
    if count == 0:
        raise ValueError("taylor_importance needs at least one batch")
    scores = aggregate(model)
    scores.batches = count
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return scores
