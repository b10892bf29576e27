"""SAME's objective over all exits (Chen et al., ACL 2023, "Dynamic Transformers Provide a
False Sense of Efficiency", section 3; the methods page).

The attacker wants the text to exit as late as possible, so it makes **every** internal
exit unsure (against entropy exits: DeeBERT) and makes neighbouring exits **disagree**
(against patience exits: PABEE). With ``e`` the exit layer the current text takes (1..L),
``p_i`` the softmax of exit ``i`` (1..L) and ``C`` classes:

- dynamic weights (:func:`dynamic_weights`): ``w_i = 0.1`` for ``i < e`` and
  ``w_i = 1.2 ** (i - e)`` for ``i >= e``: the exits the text already passes matter
  little, the exit it takes and the ones after it matter more and more;
- uniform term (:func:`uniform_term`): ``L_U = mean_i w_i * CE(uniform, p_i)``, with
  ``CE(uniform, p) = -(1/C) sum_c log p_c`` (DeepSloth's objective, Hong et al., 2021);
- cross-prediction term (:func:`cross_prediction_term`): targets ``y*_1 = argmax p_1``;
  for ``i > 1``, ``y*_i`` is the second-best class of ``p_i`` when ``argmax p_i`` equals
  ``argmax p_{i-1}``, else ``argmax p_i``; ``L_X = mean_i w_i * CE(y*_i, p_i)``;
- the loss (:func:`same_loss`): ``L = lambda * L_X + (1 - lambda) * L_U`` with
  ``lambda = 0.8``; the attack looks for word swaps that **decrease** it.

All functions work on a batch: ``exit_logits`` is ``(L, batch, C)`` and ``exit_layer``
``(batch,)`` (1-based layers); per-example losses are ``(batch,)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

#: SAME's defaults (Chen et al., 2023, section 4)
LAMBDA = 0.8
BEFORE_WEIGHT = 0.1
GROWTH = 1.2


def dynamic_weights(exit_layer: torch.Tensor, depth: int, before: float = BEFORE_WEIGHT, growth: float = GROWTH,
                    dynamic: bool = True) -> torch.Tensor:
    """SAME's per-exit weights.

    Args:
        exit_layer: ``(batch,)`` the exit layer (1..L) each text currently takes.
        depth: L, the number of exits.
        before: the weight of the exits before the exit layer (0.1).
        growth: the base of the weights from the exit layer on (1.2): ``growth ** (i - e)``.
        dynamic: False gives every exit weight 1 (the "no dynamic weights" ablation).

    Returns:
        ``(L, batch)`` float weights, exit ``i`` (1-based) in row ``i - 1``.

    Raises:
        ValueError: when an exit layer is outside 1..L.
    """
    exit_layer = torch.as_tensor(exit_layer, dtype=torch.long).reshape(-1)
    if exit_layer.numel() and (int(exit_layer.min()) < 1 or int(exit_layer.max()) > depth):
        raise ValueError(f"exit layers must be in 1..{depth}, got {exit_layer.tolist()}")
    if not dynamic:
        return torch.ones(depth, exit_layer.numel())
    layers = torch.arange(1, depth + 1, dtype=torch.float32).unsqueeze(1)   # (L, 1)
    e = exit_layer.to(torch.float32).unsqueeze(0)                              # (1, batch)
    return torch.where(layers < e, torch.full_like(layers - e, before), growth ** (layers - e))


def uniform_term(exit_logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``L_U = mean_i w_i * CE(uniform, p_i)`` per example.

    Args:
        exit_logits: ``(L, batch, C)``.
        weights: ``(L, batch)``.

    Returns:
        ``(batch,)``.
    """
    logp = torch.log_softmax(exit_logits.float(), dim=-1)
    ce = -logp.mean(-1)                            # (L, batch): -(1/C) sum_c log p_c
    return (weights * ce).mean(0)


def cross_prediction_targets(exit_logits: torch.Tensor) -> torch.Tensor:
    """SAME's cross-prediction targets ``y*_i``.

    ``y*_1 = argmax p_1``; for ``i > 1`` the second-best class of ``p_i`` when exit ``i``
    agrees with exit ``i - 1`` (same argmax), else ``argmax p_i``.

    Args:
        exit_logits: ``(L, batch, C)`` with ``C >= 2``.

    Returns:
        ``(L, batch)`` long class ids.

    Raises:
        ValueError: for fewer than two classes (regression has no second-best class).
    """
    if exit_logits.shape[-1] < 2:
        raise ValueError("the cross-prediction term needs at least two classes")
    top2 = exit_logits.detach().topk(2, dim=-1).indices      # (L, batch, 2)
    best, second = top2[..., 0], top2[..., 1]
    agrees = torch.zeros_like(best, dtype=torch.bool)
    agrees[1:] = best[1:] == best[:-1]
    return torch.where(agrees, second, best)


def cross_prediction_term(exit_logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``L_X = mean_i w_i * CE(y*_i, p_i)`` per example (targets from :func:`cross_prediction_targets`).

    Args:
        exit_logits: ``(L, batch, C)``.
        weights: ``(L, batch)``.

    Returns:
        ``(batch,)``.
    """
    targets = cross_prediction_targets(exit_logits)
    logp = torch.log_softmax(exit_logits.float(), dim=-1)
    ce = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)    # (L, batch)
    return (weights * ce).mean(0)


def same_loss(exit_logits: torch.Tensor, exit_layer: torch.Tensor, lam: float = LAMBDA, dynamic: bool = True,
              before: float = BEFORE_WEIGHT, growth: float = GROWTH) -> torch.Tensor:
    """SAME's loss ``lambda * L_X + (1 - lambda) * L_U`` of every example.

    Args:
        exit_logits: ``(L, batch, C)`` every exit's logits (differentiable).
        exit_layer: ``(batch,)`` the exit layer (1..L) each text takes under the policy.
        lam: lambda (0.8); 0 keeps only the uniform term (DeepSloth-style), 1 only the
            cross-prediction term.
        dynamic: use the dynamic weights (False: every exit weighs 1).
        before: weight of the exits before the exit layer.
        growth: base of the weights from the exit layer on.

    Returns:
        ``(batch,)`` per-example losses (lower is slower).

    Raises:
        ValueError: for ``lam`` outside [0, 1] or an exit layer outside 1..L.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda={lam} must be in [0, 1]")
    weights = dynamic_weights(exit_layer, exit_logits.shape[0], before, growth, dynamic).to(exit_logits.device)
    loss = torch.zeros(exit_logits.shape[1], device=exit_logits.device)
    if lam > 0:
        loss = loss + lam * cross_prediction_term(exit_logits, weights)
    if lam < 1:
        loss = loss + (1 - lam) * uniform_term(exit_logits, weights)
    return loss


@dataclass(frozen=True)
class SameLoss:
    """:func:`same_loss` summed over the batch: the ``loss_fn`` of
    :meth:`costeff_same.attacks.victim.MultiExitVictim.gradients`.

    Summing (not averaging) keeps each text's gradient equal to the gradient of its own
    loss, whatever the batch it is computed in.

    Attributes:
        lam: lambda (0.8).
        dynamic: use the dynamic weights.
        before: weight of the exits before the exit layer (0.1).
        growth: base of the weights from the exit layer on (1.2).
        penalty: ``(L, batch, C)`` exit logits -> ``(batch,)``, added to each text's loss (an
            attacker who knows a defence, e.g. chapter 6's guard); None: SAME's loss alone.
    """

    lam: float = LAMBDA
    dynamic: bool = True
    before: float = BEFORE_WEIGHT
    growth: float = GROWTH
    penalty: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, compare=False)

    def __call__(self, exit_logits: torch.Tensor, exit_layer: torch.Tensor) -> torch.Tensor:
        """Scalar: the sum over the batch of :func:`same_loss` (plus the penalty)."""
        loss = same_loss(exit_logits, exit_layer, self.lam, self.dynamic, self.before, self.growth)
        if self.penalty is not None:
            loss = loss + self.penalty(exit_logits)
        return loss.sum()
