"""Chapter 6's experiment: which defences stand in front of which victims, attacked how.

:class:`DefencesConfig` (built from the notebook's flat parameters by
:func:`defences_config`) names chapter 1's victims, chapter 4's SAME settings, the defences
and their settings, the adaptive attack's budget and the goal; the chapter
(:mod:`costeff_same.chapters.defences`) runs it and presents its record.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from costeff_same.attacks.same_units import SameSettings, SameUnitConfig
from costeff_same.defences.adversarial_training import AdversarialTrainingConfig
from costeff_same.defences.systems import DefenceConfig
from costeff_same.defences.units import DefenceAttackUnitConfig
from costeff_same.foundations.config import ConfigError, StageConfig, choice, load_profile
from costeff_same.foundations.registry import VICTIMS
from costeff_same.foundations.schema import Param, Schema
from costeff_same.victims import VICTIM_PARAMS, MultiExitExperimentConfig, victims_config

#: the defences chapter 6 evaluates (``none`` is always measured beside them)
DEFENCE_NAMES = ("sanitiser", "guard", "adversarial_training")


@dataclasses.dataclass(frozen=True)
class DefencesConfig(StageConfig):
    """Chapter 6: three defences, both victims, the non-adaptive and the adaptive attack.

    Attributes:
        multi_exit: chapter 1's config (the victims and their operating points).
        settings: SAME's settings (chapter 4's: they name its units).
        query_budget: model evaluations per sentence of this chapter's SAME runs (the
            adaptive attacks and adversarial training's rounds; None: chapter 4's).
        same_examples: chapter 4's sentences per victim (names its SAME unit, whose texts
            the non-adaptive attack replays).
        victims: victim names.
        defences: from :data:`DEFENCE_NAMES`.
        num_examples: test sentences of the non-adaptive and adaptive attacks per victim
            and defence (the first of chapter 4's order).
        max_distance: the sanitiser's largest corrected edit distance.
        cap_layer: the guard's cap layer c.
        guard_cost: the validation accuracy the guard may cost (its threshold flags as many clean
            validation inputs as that allows).
        mu: the adaptive attacker's weight of the detector term.
        rounds, examples_per_round, clean_examples, epochs, learning_rate: adversarial
            training's (:class:`AdversarialTrainingConfig`); its clean sentences are also
            the detector's clean examples.
        accuracy_goal: clean accuracy a defence may cost (0.01: one point).
        reduction_goal: the efficiency-gain reduction allowed under the adaptive attack (0.5).
        seed: seeds the sentence orders, the attacks and the training.
        batch_size: texts per victim forward.
    """

    multi_exit: MultiExitExperimentConfig
    settings: SameSettings = SameSettings()
    query_budget: int | None = 1000
    same_examples: int = 200
    victims: tuple[str, ...] = VICTIMS
    defences: tuple[str, ...] = DEFENCE_NAMES
    num_examples: int = 50
    max_distance: int = 2
    cap_layer: int = 3
    guard_cost: float = 0.005
    mu: float = 1.0
    rounds: int = 2
    examples_per_round: int = 64
    clean_examples: int = 512
    epochs: int = 1
    learning_rate: float = 2e-5
    accuracy_goal: float = 0.01
    reduction_goal: float = 0.5
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self):
        for name in self.victims:
            choice("victim", name, VICTIMS)
        for name in self.defences:
            choice("defence", name, DEFENCE_NAMES)
        if not 1 <= self.num_examples <= self.same_examples:
            raise ConfigError(f"num_examples={self.num_examples} must be in 1..same_examples={self.same_examples} "
                              "(the non-adaptive attack replays chapter 4's texts)")
        if self.cap_layer < 1 or not 0 <= self.guard_cost < 1:
            raise ConfigError(f"cap_layer={self.cap_layer} must be >= 1 and guard_cost={self.guard_cost} in [0, 1)")

    def chapter4_unit(self, name: str, value: float) -> SameUnitConfig:
        """Chapter 4's SAME unit against ``name`` (its own cache entry)."""
        return SameUnitConfig(victim=self.multi_exit.victim(name), victim_name=name, policy=name,
                              policy_value=float(value), variant="same", settings=self.settings,
                              num_examples=self.same_examples, seed=self.seed, batch_size=self.batch_size)

    def attack_settings(self) -> SameSettings:
        """The settings of this chapter's own SAME runs: chapter 4's perturbation budget and
        search, with :attr:`query_budget`."""
        if self.query_budget is None:
            return self.settings
        return self.settings.replace(query_budget=self.query_budget)

    def training(self, name: str, value: float) -> AdversarialTrainingConfig:
        """Adversarial training of ``name`` at its operating point ``value``."""
        return AdversarialTrainingConfig(victim=self.multi_exit.victim(name), victim_name=name, policy=name,
                                         policy_value=float(value), settings=self.attack_settings(), rounds=self.rounds,
                                         examples_per_round=self.examples_per_round,
                                         clean_examples=self.clean_examples, epochs=self.epochs,
                                         learning_rate=self.learning_rate, seed=self.seed,
                                         attack_batch_size=self.batch_size)

    def adaptive_unit(self, victim, name: str, value: float, defence: DefenceConfig) -> DefenceAttackUnitConfig:
        """SAME against ``victim`` behind ``defence`` on the chapter's test sentences."""
        return DefenceAttackUnitConfig(victim=victim, victim_name=name, policy=name, policy_value=float(value),
                                       defence=defence, settings=self.attack_settings(), split="test",
                                       num_examples=self.num_examples, seed=self.seed, batch_size=self.batch_size)


SETTING_KEYS = tuple(f.name for f in dataclasses.fields(SameSettings))
#: chapter 6's notebook parameters (defaults: ``configs/default.yaml``)
DEFENCES_SCHEMA = Schema("06_defences", {
    **VICTIM_PARAMS,
    "victim_profile": Param("str", "the profile whose chapter-1 victims and chapter-4 SAME settings are used"),
    "defences": Param("list[str]", "defences: sanitiser (input), guard (inference), adversarial_training"),
    "num_examples": Param("int", "test sentences per victim and defence of the non-adaptive and adaptive attacks "
                                 "(the first of chapter 4's)"),
    "query_budget": Param("Optional[int]", "model evaluations per sentence of this chapter's SAME runs (None: "
                                           "chapter 4's, unlimited)"),
    "max_distance": Param("int", "the sanitiser's largest corrected edit distance (1 or 2)"),
    "cap_layer": Param("int", "the guard's cap layer: a flagged input exits there"),
    "guard_cost": Param("float", "validation accuracy the guard may cost (its threshold flags as many clean inputs "
                                 "as that allows)"),
    "mu": Param("float", "the adaptive attacker's weight of the guard's detector in its loss"),
    "rounds": Param("int", "adversarial training: attack-and-train rounds"),
    "examples_per_round": Param("int", "adversarial training: training sentences attacked per round"),
    "clean_examples": Param("int", "adversarial training: clean training sentences in the mix (also the "
                                   "detector's clean examples)"),
    "epochs": Param("int", "adversarial training: epochs over each round's mix"),
    "learning_rate": Param("float", "adversarial training: peak learning rate"),
    "accuracy_goal": Param("float", "clean accuracy a defence may cost (0.01: one point)"),
    "reduction_goal": Param("float", "efficiency-gain reduction allowed under the adaptive attack"),
    "seed": Param("int", "seeds the sentence orders, the attacks and the training"),
    "batch_size": Param("int", "texts per victim forward"),
})


def defences_config(**params: Any) -> DefencesConfig:
    """Chapter 6's config from the notebook's flat parameters.

    ``victim_profile`` (and ``victim_seed``) name the profile whose chapter-1 victims and
    chapter-4 SAME settings (and number of sentences) are used; the profile's ``common``
    keys are accepted and must agree with chapter 1's.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed), a value of the
            wrong type, a common key that disagrees with chapter 1's, an unknown victim or
            defence, or more sentences than chapter 4 attacked.
    """
    p = DEFENCES_SCHEMA.complete(params)
    profile = p["victim_profile"]
    multi_exit = victims_config(p, "chapter 6", set(params))
    same = load_profile(profile).get("04_same", {})
    settings = SameSettings.from_dict({k: same[k] for k in SETTING_KEYS if k in same})
    return DefencesConfig.from_dict({"multi_exit": multi_exit, "settings": settings,
                                     "same_examples": same.get("num_examples", 200), **p})
