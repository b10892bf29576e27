"""Chapter 6: defending the efficiency gain, measured against an attacker who knows the defence.

Three defences from three families (:mod:`costeff_same.defences`), each in front of both of
chapter 1's victims at their operating points:

- ``sanitiser`` (input): homoglyph folding and spelling correction against the training
  split's dictionary (:mod:`costeff_same.defences.sanitiser`);
- ``guard`` (inference): a detector on the first exits' confidence trajectory; a flagged
  input exits at the cap layer (:mod:`costeff_same.defences.guard`), its detector learnt
  from clean training sentences against SAME's texts on other training sentences;
- ``adversarial_training`` (training): two rounds of SAME on training sentences and
  fine-tuning on them with their original labels (:mod:`costeff_same.defences.adversarial_training`).

Each is measured, with chapter 4's perturbation budget, on:

- its **cost** on clean inputs (the whole test split): accuracy and speedup of the
  defended system against the undefended victim, paired intervals on the same sentences;
- the **non-adaptive** attack: chapter 4's SAME texts (crafted against the undefended
  victim) replayed through the defended system, on the first ``num_examples`` sentences;
- the **adaptive** attack: SAME run against the defended system itself
  (:func:`~costeff_same.defences.systems.adaptive_attack`) on the same sentences.

Per defence, victim and attack: the efficiency-gain reduction and efficacy with 95%
intervals, success and perturbation rate; and the goal, at most ``accuracy_goal`` of clean
accuracy lost and a reduction of at most ``reduction_goal`` under the adaptive attack,
judged by :func:`costeff_same.verdicts.goal` from the intervals. The guard's detector also
gets its ROC curve and AUROC (with its interval) on chapter 4's clean against its SAME texts.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from costeff_same import verdicts
from costeff_same.attacks.same_units import SameSettings, SameUnitConfig, run_same_unit
from costeff_same.attacks.transfer import replay, unit_texts
from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.data import Encoded
from costeff_same.core.exits import ExitPolicy
from costeff_same.core.metrics import efficacy, efficiency_change
from costeff_same.core.statistics import (
    efficacy_interval,
    paired_metric_interval,
    reduction_interval,
    speedup_difference_interval,
)
from costeff_same.defences.adversarial_training import AdversarialTrainingConfig, run_adversarial_training
from costeff_same.defences.detection import detector_roc, fit_detector
from costeff_same.defences.guard import GuardedPolicy
from costeff_same.defences.systems import DefenceConfig, sanitiser_for, split_sentences, training_sentences
from costeff_same.defences.units import DefenceAttackUnitConfig, run_defence_attack
from costeff_same.engine.results import load_or_run, no_nan, stage
from costeff_same.engine.training import set_threads
from costeff_same.evaluation import exit_layers
from costeff_same.foundations.config import ConfigError, StageConfig, choice, load_profile
from costeff_same.foundations.registry import VICTIMS
from costeff_same.foundations.schema import Param, Schema
from costeff_same.victims import VICTIM_PARAMS, MultiExitExperimentConfig, run_multi_exit, victims_config
from costeff_same.zoo import encoded_splits, entry_model, trained_model, victim_model

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


# -- chapter 6 -------------------------------------------------------------------------------

#: what the chapter keeps of each attack on a system: per sentence, clean and adversarial
SIDES = ("clean_exit_layer", "adv_exit_layer", "clean_prediction", "adv_prediction")


@dataclasses.dataclass
class _Chapter:
    """What every victim and defence of one run shares: the config, the texts, the encoder."""

    cfg: DefencesConfig
    tokenizer: Any
    train_texts: list[str]
    test_texts: list[str]
    test: Encoded
    validation: Encoded
    sanitiser: Any

    def encode(self, texts: list[str], labels, sanitise=None) -> Encoded:
        """``texts`` (sanitised first, with ``sanitise``) encoded as chapter 1's victims read them."""
        texts = [sanitise(t) for t in texts] if sanitise else list(texts)
        return Encoded.from_texts(texts, list(labels), self.tokenizer, self.cfg.multi_exit.data.max_length)


@dataclasses.dataclass
class _System:
    """A defended system: its model, its exit policy, its input sanitisation and how an attack names it."""

    model: Any
    policy: Any
    sanitise: Any
    victim: Any
    spec: DefenceConfig


def _defended(ch: _Chapter, defence: str, name: str, value: float, model, chapter4: dict[str, Any]
              ) -> tuple[_System, dict[str, Any]]:
    """Fit (or read) ``defence`` in front of victim ``name``: the system and what fitting it measured."""
    cfg, data = ch.cfg, ch.cfg.multi_exit.data
    policy, training = ExitPolicy(name, value), cfg.training(name, value)
    system = _System(model, policy, None, cfg.multi_exit.victim(name), DefenceConfig("adversarial_training"))
    if defence == "sanitiser":
        system.sanitise, system.spec = ch.sanitiser, DefenceConfig(defence, max_distance=cfg.max_distance)
        return system, {"changed_test_sentences": ch.sanitiser.changed(ch.test_texts),
                        "changed_training_sentences": ch.sanitiser.changed(ch.train_texts),
                        "test_sentences": len(ch.test_texts), "training_sentences": len(ch.train_texts)}
    if defence == "guard":
        clean_train = training_sentences(data, cfg.clean_examples, training.clean_offset(), cfg.seed)[0]
        detector, fitted = fit_detector(model, policy, run_defence_attack(training.round_unit(0)), clean_train,
                                        ch.validation, ch.tokenizer, data.max_length, cfg.cap_layer, cfg.guard_cost,
                                        cfg.seed)
        system.policy, system.spec = GuardedPolicy(policy, detector), DefenceConfig.guard(detector, cfg.mu)
        clean4, adv4, _ = unit_texts(chapter4, ch.tokenizer, data.max_length)
        attacked = np.array([r["status"] != "skipped" for r in chapter4["results"]])
        return system, {"detector": fitted, "cap_layer": cfg.cap_layer,
                        "roc": detector_roc(detector, model, clean4, adv4, attacked, cfg.seed)}
    record = run_adversarial_training(training)
    system.victim = entry_model(record, data, cfg.multi_exit.entropy_model.backbone)
    system.model = victim_model(system.victim)
    return system, {"rounds": [{k: v for k, v in r.items() if k != "history"} for r in record["rounds"]],
                    "trained_sentences": len(record["trained_sentences"]),
                    "test_sentences_trained_on": len(set(record["trained_sentences"]) & set(ch.test_texts))}


def _victim_row(ch: _Chapter, name: str, value: float) -> dict[str, Any]:
    """Victim ``name`` undefended and behind every defence: clean, replayed and adaptive."""
    cfg = ch.cfg
    model, _ = trained_model(cfg.multi_exit.victim(name))
    policy = ExitPolicy(name, value)
    chapter4 = run_same_unit(cfg.chapter4_unit(name, value))
    first = {**chapter4, "results": chapter4["results"][:cfg.num_examples]}
    labels = [r["label"] for r in first["results"]]

    def replayed(system_model, system_policy, sanitise=None) -> dict[str, list[int]]:
        """Chapter 4's texts (sanitised first, with ``sanitise``) through the defended system."""
        source = first if sanitise is None else {"results": [
            {**r, "original_text": sanitise(r["original_text"]), "perturbed_text": sanitise(r["perturbed_text"])}
            for r in first["results"]]}
        out = replay(source, system_model, system_policy, ch.tokenizer, cfg.multi_exit.data.max_length,
                     cfg.batch_size)
        return {k: out[k] for k in SIDES}

    layers, preds = exit_layers(model, ch.test, policy, cfg.batch_size)
    row: dict[str, Any] = {"policy": name, "policy_value": value, "labels": ch.test.labels.tolist(),
                           "attack_labels": labels,
                           "none": {"clean": {"exit_layer": layers.tolist(), "prediction": preds.tolist()},
                                    "non_adaptive": replayed(model, policy), "adaptive": _unit_sides(first)}}
    for defence in cfg.defences:
        started = time.perf_counter()
        system, entry = _defended(ch, defence, name, value, model, chapter4)
        layers, preds = exit_layers(system.model, ch.encode(ch.test_texts, ch.test.labels, system.sanitise),
                                    system.policy, cfg.batch_size)
        unit = run_defence_attack(cfg.adaptive_unit(system.victim, name, value, system.spec))
        row[defence] = {**entry, "clean": {"exit_layer": layers.tolist(), "prediction": preds.tolist()},
                        "non_adaptive": replayed(system.model, system.policy, system.sanitise),
                        "adaptive": _unit_sides(unit), "adaptive_summary": unit["summary"],
                        "seconds": time.perf_counter() - started}
    return row


@stage("defences")
def _run_defences(cfg: DefencesConfig, workdir: Path) -> dict[str, Any]:
    set_threads()
    started = time.perf_counter()
    chapter1 = run_multi_exit(cfg.multi_exit)
    data, backbone = cfg.multi_exit.data, cfg.multi_exit.entropy_model.backbone
    splits = encoded_splits(data, backbone)[1]
    ch = _Chapter(cfg, load_tokenizer(backbone), split_sentences(data, "train")[0], split_sentences(data, "test")[0],
                  splits["test"], splits["validation"],
                  sanitiser_for(data, cfg.max_distance) if "sanitiser" in cfg.defences else None)
    out: dict[str, Any] = {"task": chapter1["task"], "backbone": chapter1["backbone"],
                           "num_layers": chapter1["num_layers"], "num_examples": cfg.num_examples,
                           "defences": list(cfg.defences), "settings": cfg.attack_settings().to_dict(),
                           "accuracy_goal": cfg.accuracy_goal, "reduction_goal": cfg.reduction_goal,
                           "sanitiser": {"dictionary_size": ch.sanitiser.dictionary_size} if ch.sanitiser else None,
                           "victims": {}}
    for name in cfg.victims:
        out["victims"][name] = _victim_row(ch, name, chapter1["victims"][name]["operating_point"]["value"])
    out["seconds"] = time.perf_counter() - started
    return no_nan(out)


def _unit_sides(unit: dict[str, Any]) -> dict[str, list]:
    """An attack unit's per-sentence exit layers and predictions, clean and adversarial."""
    results = unit["results"]
    return {"clean_exit_layer": [r["original_exit_layer"] for r in results],
            "adv_exit_layer": [r["perturbed_exit_layer"] for r in results],
            "clean_prediction": [r["original_prediction"] for r in results],
            "adv_prediction": [r["perturbed_prediction"] for r in results],
            "status": [r["status"] for r in results], "perturbation_rate": [r["perturbation_rate"] for r in results]}


def run_defences(cfg: DefencesConfig) -> dict[str, Any]:
    """Chapter 6's record (cached; every attack unit and adversarial training cached on its own too)."""
    return load_or_run("defences", cfg, _run_defences, seed=cfg.seed)


# -- reading the record ----------------------------------------------------------------------

def attack_figures(sides: dict[str, list], labels: np.ndarray, depth: int) -> dict[str, Any]:
    """One attack on one defended system: efficiency before and after, the efficiency-gain
    reduction and the efficacies with their 95% intervals, accuracy before and after."""
    clean, adv = np.asarray(sides["clean_exit_layer"]), np.asarray(sides["adv_exit_layer"])
    return no_nan({
        "efficiency": efficiency_change(clean, adv, depth),
        "efficiency_gain_reduction": reduction_interval(clean, adv, depth),
        "efficacy_clean": efficacy_interval(clean, depth), "efficacy_adv": efficacy_interval(adv, depth),
        "accuracy_before": float(np.mean(np.asarray(sides["clean_prediction"]) == labels)),
        "accuracy_after": float(np.mean(np.asarray(sides["adv_prediction"]) == labels)),
        "success_rate": float(np.mean(adv == depth)),
    })


def defence_row(entry: dict[str, Any], none: dict[str, Any], labels: np.ndarray, attack_labels: np.ndarray,
                depth: int, goals: dict[str, float]) -> dict[str, Any]:
    """One defence on one victim: its clean cost (paired with the undefended victim on the whole
    test split), the non-adaptive and the adaptive attack, and the goal's verdicts."""
    preds, base_preds = np.asarray(entry["clean"]["prediction"]), np.asarray(none["clean"]["prediction"])
    layers, base_layers = np.asarray(entry["clean"]["exit_layer"]), np.asarray(none["clean"]["exit_layer"])
    loss = paired_metric_interval("accuracy", base_preds, preds, labels)          # undefended - defended
    adaptive = attack_figures(entry["adaptive"], attack_labels, depth)
    row = {
        "clean_accuracy": float(np.mean(preds == labels)),
        "clean_accuracy_loss": no_nan(loss),
        "clean_speedup": float(depth / layers.mean()),
        "clean_speedup_difference": no_nan(speedup_difference_interval(layers, base_layers, depth)),
        "clean_efficacy": float(efficacy(layers, depth)),
        "non_adaptive": attack_figures(entry["non_adaptive"], attack_labels, depth),
        "adaptive": adaptive,
    }
    summary = entry.get("adaptive_summary")
    if summary is not None:
        row["adaptive"].update(success_rate=summary["success_rate"],
                               perturbation_rate=summary["perturbation_rate_attacked"],
                               queries_per_example=summary["queries_per_example"],
                               seconds_per_example=summary["seconds_per_example"])
    accuracy_goal = verdicts.goal(loss, goals["accuracy_goal"]) if verdicts.finite(loss) else None
    reduction = adaptive["efficiency_gain_reduction"]
    reduction_goal = verdicts.goal(reduction, goals["reduction_goal"]) if verdicts.finite(reduction) else None
    found = {accuracy_goal, reduction_goal}
    row["goal"] = {"accuracy": accuracy_goal, "reduction": reduction_goal,
                   "verdict": "missed" if "missed" in found else "met" if found == {"met"} else "undecided"}
    for key in ("changed_test_sentences", "changed_training_sentences", "test_sentences", "training_sentences",
                "detector", "roc", "cap_layer", "rounds", "trained_sentences", "test_sentences_trained_on",
                "seconds"):
        if key in entry:
            row[key] = entry[key]
    return row


def defences_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The ``defences`` section of ``costeff-same summary --json``.

    Args:
        record: chapter 6's record (with the goal's limits, ``accuracy_goal`` and ``reduction_goal``).

    Returns:
        Per victim: ``none`` (the undefended victim: its clean accuracy and speedup, chapter
        4's texts on the same sentences) and one :func:`defence_row` per defence; the goal.
    """
    depth = record["num_layers"]
    goals = {k: record[k] for k in ("accuracy_goal", "reduction_goal")}
    victims = {}
    for name, v in record["victims"].items():
        labels, attack_labels = np.asarray(v["labels"]), np.asarray(v["attack_labels"])
        none = v["none"]
        base = {"clean_accuracy": float(np.mean(np.asarray(none["clean"]["prediction"]) == labels)),
                "clean_speedup": float(depth / np.mean(none["clean"]["exit_layer"])),
                "clean_efficacy": float(efficacy(np.asarray(none["clean"]["exit_layer"]), depth)),
                "non_adaptive": attack_figures(none["non_adaptive"], attack_labels, depth),
                "adaptive": attack_figures(none["adaptive"], attack_labels, depth)}
        victims[name] = {"policy": v["policy"], "policy_value": v["policy_value"], "none": base,
                         **{d: defence_row(v[d], none, labels, attack_labels, depth, goals)
                            for d in record["defences"]}}
    return {"task": record["task"], "backbone": record["backbone"], "num_layers": depth,
            "num_examples": record["num_examples"], "defences": record["defences"],
            **goals,
            "sanitiser": record.get("sanitiser"), "seconds": record["seconds"], "victims": victims}
