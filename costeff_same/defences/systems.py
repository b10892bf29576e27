"""A defended system: a victim model, its exit policy and a defence, queried as the deployment would be.

Chapter 6 evaluates every defence as a system an attacker queries
(:func:`defended_victim`), not as a model on its own:

- ``none``: the victim as chapter 1 deploys it;
- ``sanitiser``: every text goes through :class:`~costeff_same.defences.sanitiser.Sanitiser`
  before the model (:class:`SanitisedVictim`); the cache is keyed by the sanitised text,
  so candidates that sanitise alike cost one model evaluation;
- ``guard``: the exit policy is :class:`~costeff_same.defences.guard.GuardedPolicy`;
- ``adversarial_training``: the victim model is the adversarially fine-tuned one
  (:mod:`costeff_same.defences.adversarial_training`), behind the victim's own policy.

The attacker who knows the defence (:func:`adaptive_attack`) runs SAME against that
system: its goal (the exit layer) is the defended system's, so the sanitiser's effect
and the guard's cap are in every score; against the guard its loss also pushes the
detector's logit below the threshold (:class:`~costeff_same.defences.guard.DetectorPenalty`).
Its gradient is the victim model's at the raw text (the sanitiser has no gradient: the
candidates it undoes are simply scored low, as BPDA with the identity would treat it,
Athalye et al., 2018).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence

import numpy as np

from costeff_same.attacks.attack import Attack
from costeff_same.attacks.same_chen_2023 import build
from costeff_same.attacks.same_units import SameSettings
from costeff_same.attacks.sentences import balanced_order
from costeff_same.attacks.text import AttackedText
from costeff_same.attacks.victim import MultiExitVictim, VictimOutput
from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.data import load_data, subsample
from costeff_same.core.exits import ExitPolicy
from costeff_same.core.modeling import MultiExitBertForSequenceClassification
from costeff_same.defences.guard import DetectorPenalty, GuardedPolicy, TrajectoryDetector
from costeff_same.defences.sanitiser import Sanitiser
from costeff_same.foundations.config import ConfigError, DataConfig, StageConfig, choice

#: the defences of chapter 6 (``none``: the undefended victim)
DEFENCES = ("none", "sanitiser", "guard", "adversarial_training")


@dataclasses.dataclass(frozen=True)
class DefenceConfig(StageConfig):
    """Which defence stands in front of the victim, and its settings.

    Attributes:
        name: one of :data:`DEFENCES`.
        max_distance: the sanitiser's largest corrected edit distance (1 or 2).
        detector: the guard's detector (:meth:`TrajectoryDetector.to_dict` as canonical JSON:
            part of the key), or None.
        mu: the adaptive attacker's weight of the detector term (:class:`DetectorPenalty`).

    Raises:
        ConfigError: for an unknown defence (the accepted ones are listed) or a guard without detector.
    """

    name: str = "none"
    max_distance: int = 2
    detector: str | None = None
    mu: float = 1.0

    def __post_init__(self):
        choice("defence", self.name, DEFENCES)
        if self.name == "guard" and self.detector is None:
            raise ConfigError("the guard needs its detector (TrajectoryDetector.to_dict())")

    @classmethod
    def guard(cls, detector: TrajectoryDetector, mu: float = 1.0) -> DefenceConfig:
        """The guard's config with ``detector``."""
        return cls("guard", detector=json.dumps(detector.to_dict(), sort_keys=True), mu=mu)

    def the_detector(self) -> TrajectoryDetector:
        """The guard's detector."""
        return TrajectoryDetector.from_dict(json.loads(self.detector))


def split_sentences(data: DataConfig, split: str) -> tuple[list[str], list[int]]:
    """Every sentence and label of ``split`` (``train``, ``validation``, ``test``) as chapter 1
    prepares it (subsampled to ``train_size`` / ``eval_size``)."""
    task = load_data(data)
    size = data.train_size if split == "train" else data.eval_size
    rows = subsample(task.splits[split], size, data.seed)
    return list(rows["text"]), [int(y) for y in rows["label"]]


def training_sentences(data: DataConfig, n: int, offset: int, seed: int) -> tuple[list[str], list[int]]:
    """``n`` training sentences from position ``offset`` of the seeded, label-balanced order of
    the training split as chapter 1 prepares it (:func:`~costeff_same.attacks.sentences.balanced_order`).

    Raises:
        ConfigError: when the split has fewer than ``offset + n`` sentences.
    """
    texts, labels = split_sentences(data, "train")
    if offset + n > len(texts):
        raise ConfigError(f"{offset + n} training sentences asked, the split has {len(texts)}")
    order = balanced_order(np.asarray(labels), seed)[offset:offset + n]
    return [texts[int(i)] for i in order], [labels[int(i)] for i in order]


@functools.lru_cache(maxsize=2)
def _sanitiser(data: DataConfig, key: str, max_distance: int) -> Sanitiser:
    return Sanitiser(split_sentences(data, "train")[0], max_distance)


def sanitiser_for(data: DataConfig, max_distance: int = 2) -> Sanitiser:
    """The sanitiser whose dictionary is ``data``'s training split (memoised by the data's key)."""
    return _sanitiser(data, data.config_hash(), max_distance)


class SanitisedVictim(MultiExitVictim):
    """A victim that sanitises every text before the model sees it (answers are the sanitised text's).

    Args:
        sanitise: ``str -> str``, applied to every query; the rest as :class:`MultiExitVictim`.
    """

    def __init__(self, *args, sanitise: Callable[[str], str], **kwargs):
        super().__init__(*args, **kwargs)
        self.sanitise = sanitise

    def is_cached(self, text: str, all_exits: bool = False) -> bool:
        return super().is_cached(self.sanitise(text), all_exits)

    def __call__(self, texts: Sequence[str | AttackedText], all_exits: bool = False) -> list[VictimOutput]:
        return super().__call__([self.sanitise(t.text if isinstance(t, AttackedText) else t) for t in texts],
                                all_exits)


def system_policy(policy: str, value: float, defence: DefenceConfig) -> ExitPolicy | GuardedPolicy:
    """The exit policy the defended system applies."""
    base = ExitPolicy(policy, value)
    return GuardedPolicy(base, defence.the_detector()) if defence.name == "guard" else base


def defended_victim(model: MultiExitBertForSequenceClassification, backbone: str, data: DataConfig, policy: str,
                    value: float, defence: DefenceConfig, batch_size: int) -> MultiExitVictim:
    """The system an attacker queries: ``model`` at ``policy``/``value`` behind ``defence``.

    Args:
        model: the victim model (for ``adversarial_training``: the fine-tuned one).
        backbone: its tokenizer's backbone.
        data: the task (the sanitiser's dictionary is its training split).
        policy: the exit policy's name; ``value`` its threshold or patience.
        defence: the defence.
        batch_size: texts per forward.
    """
    tokenizer = load_tokenizer(backbone)
    exit_policy = system_policy(policy, value, defence)
    if defence.name == "sanitiser":
        return SanitisedVictim(model, tokenizer, exit_policy, max_length=data.max_length, batch_size=batch_size,
                               sanitise=sanitiser_for(data, defence.max_distance))
    return MultiExitVictim(model, tokenizer, exit_policy, max_length=data.max_length, batch_size=batch_size)


def adaptive_attack(victim: MultiExitVictim, settings: SameSettings, defence: DefenceConfig) -> Attack:
    """SAME against the defended system ``victim`` (the attacker who knows the defence).

    The goal is the defended system's exit layer (the victim applies the defence); against
    the guard, SAME's loss also carries :class:`DetectorPenalty` (weight ``defence.mu``).
    """
    penalty = DetectorPenalty(defence.the_detector(), defence.mu) if defence.name == "guard" else None
    return build(victim, **settings.build_kwargs(), penalty=penalty)
