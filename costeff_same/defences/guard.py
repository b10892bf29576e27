"""Inference defence: a compute guard on the exit-confidence trajectory.

SAME (Chen et al., 2023) slows a multi-exit model down by holding every exit near the
uniform distribution (entropy exits) or making neighbouring exits disagree (patience
exits). Both leave a trace in the first exits' outputs that a clean hard input rarely
shows. The guard reads that trace at a **cap layer** ``c``: a detector scores the
trajectory of exits ``1..c`` of every input still running there, and a flagged input
exits at ``c`` with the prediction it has there. The worst-case cost of a flagged input
is then ``c`` layers instead of ``L``, at an accuracy price measured on clean inputs. The
detector and the guard are this project's (the methods page, "Defences of the efficiency gain").

- :func:`trajectory_features`: ``2c - 1`` features of exits ``1..c``: each exit's softmax
  entropy over ``log C`` (1 = uniform) and, from exit 2 on, the agreement
  ``sum_k p_i[k] p_{i-1}[k]`` of two neighbouring exits (low when they disagree);
  differentiable, so an adaptive attacker can descend on the detector too;
- :class:`TrajectoryDetector`: logistic regression (scikit-learn) on those features,
  clean inputs against SAME texts, its threshold set to flag as many clean validation inputs
  as an accuracy budget allows (:meth:`TrajectoryDetector.calibrate`);
- :class:`GuardedPolicy`: an exit policy (the interface of
  :class:`~costeff_same.core.exits.ExitPolicy`, so both execution paths apply it and agree):
  the victim's policy, plus an exit at ``c`` for a flagged input;
- :class:`DetectorPenalty`: ``mu * softplus(detector logit - threshold)``, added to SAME's
  loss by the attacker who knows the guard (the goal of that attacker is the guarded
  system's exit layer, which a flagged text cannot raise above ``c``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from costeff_same.core.exits import ExitPolicy


def trajectory_features(exit_logits: torch.Tensor | np.ndarray, cap_layer: int) -> torch.Tensor:
    """The detector's features of exits ``1..cap_layer``.

    Args:
        exit_logits: ``(L', N, C)`` the logits of at least the first ``cap_layer`` exits.
        cap_layer: c, the layer the guard reads at (1..L).

    Returns:
        ``(N, 2c - 1)`` float32: normalised entropies ``H_i / log C`` (i = 1..c), then the
        neighbour agreements ``p_i . p_{i-1}`` (i = 2..c); differentiable in ``exit_logits``.

    Raises:
        ValueError: when fewer than ``cap_layer`` exits are given or ``C < 2``.
    """
    logits = torch.as_tensor(exit_logits)
    if logits.shape[0] < cap_layer or cap_layer < 1 or logits.shape[-1] < 2:
        raise ValueError(f"need >= {cap_layer} exits and >= 2 classes, got logits of shape {tuple(logits.shape)}")
    logp = torch.log_softmax(logits[:cap_layer].float(), -1)             # (c, N, C)
    p = logp.exp()
    entropy = -(p * logp).sum(-1) / math.log(logits.shape[-1])           # (c, N)
    agreement = (p[1:] * p[:-1]).sum(-1)                                 # (c - 1, N)
    return torch.cat([entropy, agreement]).T


@dataclass
class TrajectoryDetector:
    """Logistic regression on :func:`trajectory_features`: is an input a slowdown text?

    Attributes:
        cap_layer: c, the exits read (1..c).
        mean, scale: ``(2c - 1,)`` the standardisation of the features.
        coef: ``(2c - 1,)`` the weights of the standardised features.
        intercept: the bias.
        threshold: inputs whose logit is above it are flagged.
    """

    cap_layer: int
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float = math.inf

    @classmethod
    def fit(cls, clean_logits: np.ndarray, attack_logits: np.ndarray, cap_layer: int,
            seed: int = 0) -> TrajectoryDetector:
        """Fit on clean inputs (label 0) against attack texts (label 1), classes balanced.

        Args:
            clean_logits: ``(L', N0, C)`` exit logits of clean inputs.
            attack_logits: ``(L', N1, C)`` exit logits of attack texts.
            cap_layer: c.
            seed: seeds the solver.

        Raises:
            ValueError: when either set is empty.
        """
        if clean_logits.shape[1] == 0 or attack_logits.shape[1] == 0:
            raise ValueError(f"the detector needs clean and attack examples, got {clean_logits.shape[1]} and "
                             f"{attack_logits.shape[1]}")
        x = torch.cat([trajectory_features(clean_logits, cap_layer),
                       trajectory_features(attack_logits, cap_layer)]).numpy()
        y = np.r_[np.zeros(clean_logits.shape[1]), np.ones(attack_logits.shape[1])]
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(class_weight="balanced", random_state=seed).fit(scaler.transform(x), y)
        return cls(cap_layer, scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32),
                   model.coef_[0].astype(np.float32), float(model.intercept_[0]))

    def logit(self, exit_logits: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``(N,)`` the detector's logit (differentiable) from ``(L', N, C)`` exit logits."""
        x = trajectory_features(exit_logits, self.cap_layer)
        return ((x - torch.as_tensor(self.mean)) / torch.as_tensor(self.scale)) @ torch.as_tensor(self.coef) \
            + self.intercept

    def calibrate(self, exit_logits: np.ndarray, labels: np.ndarray, base_exit_layer: np.ndarray,
                  base_prediction: np.ndarray, max_cost: float) -> float:
        """Set :attr:`threshold` to flag as many clean inputs as an accuracy budget allows.

        Inputs that reach the cap layer under the base policy are flagged in order of their
        logit, highest first; a flagged input is served the prediction of exit ``c``. The
        threshold flags the longest such prefix whose accuracy loss over all the inputs,
        ``mean(base correct) - mean(guarded correct)``, stays at most ``max_cost``.

        Args:
            exit_logits: ``(L', N, C)`` exit logits of clean (validation) inputs.
            labels: ``(N,)`` their labels.
            base_exit_layer: ``(N,)`` their exit layers under the victim's policy (1..L).
            base_prediction: ``(N,)`` the predictions the victim serves them.
            max_cost: the accuracy the guard may cost (a fraction, e.g. 0.005).

        Returns:
            The threshold (+inf: no input can be flagged within the budget).

        Raises:
            ValueError: for a negative ``max_cost`` or no inputs.
        """
        labels = np.asarray(labels)
        if max_cost < 0 or len(labels) == 0:
            raise ValueError(f"max_cost={max_cost} must be >= 0 and inputs given (got {len(labels)})")
        z = self.logit(exit_logits).numpy()
        cap_correct = np.asarray(exit_logits[self.cap_layer - 1]).argmax(-1) == labels
        base_correct = np.asarray(base_prediction) == labels
        reaching = np.flatnonzero(np.asarray(base_exit_layer) >= self.cap_layer)
        order = reaching[np.argsort(-z[reaching], kind="stable")]
        cost = np.cumsum(base_correct[order].astype(float) - cap_correct[order]) / len(labels)
        over = np.flatnonzero(cost > max_cost + 1e-12)
        flagged = over[0] if len(over) else len(order)          # inputs flagged: order[:flagged]
        if len(order) == 0:
            self.threshold = math.inf                             # no clean input to calibrate on
        elif flagged < len(order):
            self.threshold = float(z[order[flagged]])             # flags the ones strictly above
        else:
            self.threshold = -math.inf                            # every input reaching c costs nothing
        return self.threshold

    def flags(self, exit_logits: torch.Tensor | np.ndarray) -> np.ndarray:
        """``(N,)`` bool: the inputs flagged from their ``(L', N, C)`` exit logits."""
        return (self.logit(exit_logits) > self.threshold).numpy()

    def to_dict(self) -> dict:
        """JSON-able form (:meth:`from_dict` reads it)."""
        return {"cap_layer": self.cap_layer, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d: dict) -> TrajectoryDetector:
        """The detector :meth:`to_dict` wrote."""
        return cls(int(d["cap_layer"]), *(np.asarray(d[k], dtype=np.float32) for k in ("mean", "scale", "coef")),
                   float(d["intercept"]), float(d["threshold"]))


@dataclass(frozen=True)
class GuardedPolicy:
    """The victim's exit policy with the compute guard: an input the detector flags at the
    cap layer exits there.

    It has :class:`~costeff_same.core.exits.ExitPolicy`'s interface (``init_state``, ``step``,
    ``subset``), so the full forward (:func:`~costeff_same.core.exits.simulate_exits`) and
    batched early exit (:func:`~costeff_same.core.exits.early_exit_forward`) both apply it
    and agree. The state carries, per row, the layer reached and the exit logits seen so far.

    Attributes:
        base: the victim's policy.
        detector: the trajectory detector (its ``cap_layer`` is c).
    """

    base: ExitPolicy
    detector: TrajectoryDetector = field(hash=False, compare=False)

    @property
    def name(self) -> str:
        """The base policy's name."""
        return self.base.name

    @property
    def threshold(self) -> float:
        """The base policy's threshold (the operating point)."""
        return self.base.threshold

    @property
    def cap_layer(self) -> int:
        """c, the layer at which a flagged input exits."""
        return self.detector.cap_layer

    def init_state(self, batch: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """The base state, the layer counter and the logits seen (``(batch, c, C)``, filled as
        layers pass), on ``device``."""
        return {**self.base.init_state(batch, device), "layer": torch.zeros(batch, dtype=torch.long, device=device),
                "seen": torch.zeros(batch, self.cap_layer, 0, device=device)}

    def step(self, logits: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(rows,)`` bool: the base policy's exits, and at the cap layer the flagged rows."""
        exits = self.base.step(logits, state)
        layer = int(state["layer"][0]) + 1 if len(state["layer"]) else 1
        state["layer"] = state["layer"] + 1
        if layer > self.cap_layer:
            return exits
        seen = state["seen"]
        if seen.shape[-1] == 0:
            seen = torch.zeros(logits.shape[0], self.cap_layer, logits.shape[-1], device=logits.device)
        seen = seen.clone()
        seen[:, layer - 1] = logits.float()
        state["seen"] = seen
        if layer < self.cap_layer:
            return exits
        flagged = self.detector.logit(seen.transpose(0, 1).cpu()) > self.detector.threshold   # on the host
        return exits | flagged.to(exits.device)

    subset = staticmethod(ExitPolicy.subset)


@dataclass(frozen=True)
class DetectorPenalty:
    """The adaptive attacker's penalty for being flagged by the guard, added to SAME's loss
    (:class:`~costeff_same.attacks.same_loss.SameLoss`'s ``penalty``).

    ``mu * softplus(detector logit - threshold)`` per text: the attacker still makes the exits
    unsure, but is pushed back below the detector's threshold.

    Attributes:
        detector: the guard's detector.
        mu: the weight of the penalty.
    """

    detector: TrajectoryDetector = field(hash=False, compare=False)
    mu: float = 1.0

    def __call__(self, exit_logits: torch.Tensor) -> torch.Tensor:
        """``(batch,)`` penalties from ``(L, batch, C)`` exit logits."""
        return self.mu * torch.nn.functional.softplus(self.detector.logit(exit_logits) - self.detector.threshold)
