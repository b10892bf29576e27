"""Chapter 6's attack unit: SAME against a defended system, on test or training sentences, cached.

:class:`DefenceAttackUnitConfig` names the victim model, its operating point, the defence
(:class:`~costeff_same.defences.systems.DefenceConfig`), the sentences (the test split, as
every attack chapter, or the training split, which adversarial training and the guard's
detector learn from) and SAME's settings (chapter 4's: the same perturbation budget). The
unit runs :func:`~costeff_same.defences.systems.adaptive_attack` (for ``none``: SAME as
chapter 4 runs it) and keeps the per-sentence results and
:func:`~costeff_same.attacks.same_units.same_summary`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from costeff_same.attacks.same_units import SameSettings, same_summary
from costeff_same.attacks.sentences import attack_sentences
from costeff_same.attacks.units import attack_all
from costeff_same.defences.systems import DefenceConfig, adaptive_attack, defended_victim, training_sentences
from costeff_same.engine.results import load_or_run, stage
from costeff_same.foundations.config import ConfigError, StageConfig, choice
from costeff_same.zoo import VictimModel, victim_backbone, victim_model

#: where a unit's sentences come from
SPLITS = ("test", "train")


@dataclasses.dataclass(frozen=True)
class DefenceAttackUnitConfig(StageConfig):
    """SAME against one defended system on one set of sentences (a cached unit).

    Attributes:
        victim: the victim model (chapter 1's, or the adversarially trained one).
        victim_name: its name in the chapter (``entropy``, ``patience``).
        policy: the exit policy's name; ``policy_value`` its threshold or patience.
        defence: the defence in front of it (``none``: undefended).
        settings: SAME's settings.
        split: ``test`` (chapter 3's and 4's sentences) or ``train``.
        offset: first position in the split's seeded order (``train`` only: rounds take
            successive slices).
        num_examples: sentences attacked.
        seed: seeds the sentence order and the attack.
        batch_size: texts per victim forward.
    """

    victim: VictimModel
    victim_name: str
    policy: str
    policy_value: float
    defence: DefenceConfig
    settings: SameSettings
    split: str = "test"
    offset: int = 0
    num_examples: int = 50
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self):
        choice("split", self.split, SPLITS)
        if self.num_examples < 1 or self.offset < 0:
            raise ConfigError(f"num_examples={self.num_examples} must be >= 1 and offset={self.offset} >= 0")
        if self.split == "test" and self.offset:
            raise ConfigError("offset applies to the train split only (test sentences are chapter 4's, from 0)")

    def label(self) -> str:
        """``same through <defence> on <victim> (<split>)``."""
        return f"same through {self.defence.name} on {self.victim_name} ({self.split})"


def unit_sentences(cfg: DefenceAttackUnitConfig) -> tuple[list[str], list[int]]:
    """The unit's sentences and labels."""
    if cfg.split == "train":
        return training_sentences(cfg.victim.data, cfg.num_examples, cfg.offset, cfg.seed)
    texts, labels, _ = attack_sentences(cfg.victim.data, cfg.num_examples, cfg.seed, who="chapter 6")
    return texts, labels


def attack_system(model, cfg: DefenceAttackUnitConfig, texts: list[str], labels: list[int]) -> dict[str, Any]:
    """SAME through ``cfg.defence`` against ``model`` on ``texts``: results and summary.

    Returns:
        ``results`` (one :meth:`AttackResult.to_dict` per sentence), ``summary``
        (:func:`~costeff_same.attacks.same_units.same_summary`), ``seconds``, ``queries``.
    """
    victim = defended_victim(model, victim_backbone(cfg.victim), cfg.victim.data, cfg.policy, cfg.policy_value,
                             cfg.defence, cfg.batch_size)
    attack = adaptive_attack(victim, cfg.settings, cfg.defence)
    results, seconds = attack_all(attack, texts, labels, cfg.seed, desc=f"attack {cfg.label()}")
    return {"results": results, "summary": same_summary(results, victim.num_layers, cfg.settings),
            "seconds": seconds, "queries": victim.num_queries, "num_layers": victim.num_layers}


@stage("defence_attack")
def _run_defence_attack(cfg: DefenceAttackUnitConfig, workdir: Path) -> dict[str, Any]:
    texts, labels = unit_sentences(cfg)
    return {"victim": cfg.victim_name, "defence": cfg.defence.name, "split": cfg.split,
            **attack_system(victim_model(cfg.victim), cfg, texts, labels)}


def run_defence_attack(cfg: DefenceAttackUnitConfig) -> dict[str, Any]:
    """The unit's record (cached)."""
    return load_or_run("defence_attack", cfg, _run_defence_attack, seed=cfg.seed)
