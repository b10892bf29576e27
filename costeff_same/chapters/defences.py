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
from costeff_same.attacks.same_units import run_same_unit
from costeff_same.attacks.transfer import replay, unit_texts
from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.encoding import Encoded
from costeff_same.core.exits import ExitPolicy
from costeff_same.core.metrics import efficacy, efficiency_change
from costeff_same.core.statistics import (
    efficacy_interval,
    paired_metric_interval,
    reduction_interval,
    speedup_difference_interval,
)
from costeff_same.defences.adversarial_training import run_adversarial_training
from costeff_same.defences.detection import detector_roc, fit_detector
from costeff_same.defences.experiment import DEFENCE_NAMES, DEFENCES_SCHEMA, DefencesConfig, defences_config
from costeff_same.defences.guard import GuardedPolicy
from costeff_same.defences.systems import DefenceConfig, sanitiser_for, split_sentences, training_sentences
from costeff_same.defences.units import run_defence_attack
from costeff_same.engine.parallel import Task, part_name, run_stages, stage_task
from costeff_same.engine.results import load_or_run, no_nan, stage, without_entry
from costeff_same.evaluation import exit_layers
from costeff_same.foundations.config import StageConfig, choice
from costeff_same.victims import multi_exit_graph, multi_exit_stage, run_multi_exit
from costeff_same.zoo import encoded_splits, entry_model, trained_model, victim_model

__all__ = ["DEFENCES_SCHEMA", "DEFENCE_NAMES", "SIDES", "DefencesConfig", "attack_figures", "defence_row",
           "defences_config", "defences_graph", "defences_summary", "run_defences"]

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


def _chapter(cfg: DefencesConfig, sanitiser: bool) -> _Chapter:
    """What every victim and defence of the run shares (the sanitiser only when asked for)."""
    data, backbone = cfg.multi_exit.data, cfg.multi_exit.entropy_model.backbone
    splits = encoded_splits(data, backbone)[1]
    return _Chapter(cfg, load_tokenizer(backbone), split_sentences(data, "train")[0], split_sentences(data, "test")[0],
                    splits["test"], splits["validation"], sanitiser_for(data, cfg.max_distance) if sanitiser else None)


@dataclasses.dataclass(frozen=True)
class VictimRowConfig(StageConfig):
    """One victim's part of chapter 6's record (its own cache entry, so the victims' parts are
    measured side by side, each as soon as its own attacks are done).

    Attributes:
        chapter: the chapter's config.
        victim: the victim's name, one of ``chapter.victims``.

    Raises:
        ConfigError: for a victim the chapter does not attack.
    """

    chapter: DefencesConfig
    victim: str

    def __post_init__(self):
        choice("victim", self.victim, self.chapter.victims)

    def label(self) -> str:
        return f"defences of {self.victim}"


@stage("defences_victim")
def _run_victim_row(cfg: VictimRowConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    ch = _chapter(cfg.chapter, "sanitiser" in cfg.chapter.defences)
    row = _victim_row(ch, cfg.victim, _operating_point(cfg.chapter, cfg.victim))
    return no_nan({**row, "sanitiser_dictionary_size": ch.sanitiser.dictionary_size if ch.sanitiser else None,
                   "seconds": time.perf_counter() - started})


def victim_row(cfg: DefencesConfig, name: str) -> dict[str, Any]:
    """Victim ``name`` undefended and behind every defence of ``cfg`` (cached: :func:`_victim_row`)."""
    return without_entry(load_or_run("defences_victim", VictimRowConfig(cfg, name), _run_victim_row, seed=cfg.seed))


@stage("defences")
def _run_defences(cfg: DefencesConfig, workdir: Path) -> dict[str, Any]:
    rows = {name: victim_row(cfg, name) for name in cfg.victims}
    started = time.perf_counter()
    chapter1 = run_multi_exit(cfg.multi_exit)
    size = next(iter(rows.values()))["sanitiser_dictionary_size"]
    out: dict[str, Any] = {"task": chapter1["task"], "backbone": chapter1["backbone"],
                           "num_layers": chapter1["num_layers"], "num_examples": cfg.num_examples,
                           "defences": list(cfg.defences), "settings": cfg.attack_settings().to_dict(),
                           "accuracy_goal": cfg.accuracy_goal, "reduction_goal": cfg.reduction_goal,
                           "sanitiser": {"dictionary_size": size} if size is not None else None, "victims": rows}
    # the measuring (each victim's part and this), not the waiting for the attacks
    out["seconds"] = sum(r["seconds"] for r in rows.values()) + time.perf_counter() - started
    return no_nan(out)


def _unit_sides(unit: dict[str, Any]) -> dict[str, list]:
    """An attack unit's per-sentence exit layers and predictions, clean and adversarial."""
    results = unit["results"]
    return {"clean_exit_layer": [r["original_exit_layer"] for r in results],
            "adv_exit_layer": [r["perturbed_exit_layer"] for r in results],
            "clean_prediction": [r["original_prediction"] for r in results],
            "adv_prediction": [r["perturbed_prediction"] for r in results],
            "status": [r["status"] for r in results], "perturbation_rate": [r["perturbation_rate"] for r in results]}


def _operating_point(cfg: DefencesConfig, name: str) -> float:
    return run_multi_exit(cfg.multi_exit)["victims"][name]["operating_point"]["value"]


def _shared_unit(cfg: DefencesConfig, name: str, unit: str) -> None:
    """A task of :func:`defences_graph`: an attack every defence of victim ``name`` reads
    (``chapter4``: chapter 4's SAME unit; ``round0``: adversarial training's first round)."""
    value = _operating_point(cfg, name)
    if unit == "chapter4":
        run_same_unit(cfg.chapter4_unit(name, value))
    else:
        run_defence_attack(cfg.training(name, value).round_unit(0))


def _defence_units(cfg: DefencesConfig, name: str, defence: str) -> None:
    """A task of :func:`defences_graph`: ``defence`` fitted in front of victim ``name`` and the
    adaptive attack on it (the chapter's record then reads both from the cache)."""
    value = _operating_point(cfg, name)
    ch = _chapter(cfg, defence == "sanitiser")
    model, _ = trained_model(cfg.multi_exit.victim(name))
    system, _ = _defended(ch, defence, name, value, model, run_same_unit(cfg.chapter4_unit(name, value)))
    run_defence_attack(cfg.adaptive_unit(system.victim, name, value, system.spec))


def defences_graph(cfg: DefencesConfig) -> dict[str, Task]:
    """Chapter 6's stages: chapter 1's; per victim chapter 4's SAME unit and adversarial
    training's first round, then one task per defence (fitting it and attacking it), side by
    side; then each victim's part of the record, as soon as its own tasks are done; then the
    chapter's record."""
    chapter1 = multi_exit_stage(cfg.multi_exit)
    shared = {part_name("defences", cfg, name, unit): Task(_shared_unit, (cfg, name, unit), (chapter1,))
              for name in cfg.victims for unit in ("chapter4", "round0")}
    defended = {part_name("defences", cfg, name, defence): Task(
        _defence_units, (cfg, name, defence),
        (chapter1, *(part_name("defences", cfg, name, unit) for unit in ("chapter4", "round0"))))
        for defence in cfg.defences for name in cfg.victims}
    rows = {}
    for name in cfg.victims:
        own = tuple(part_name("defences", cfg, name, unit) for unit in ("chapter4", "round0", *cfg.defences))
        rows |= stage_task("defences_victim", VictimRowConfig(cfg, name), _run_victim_row, seed=cfg.seed,
                           needs=(chapter1, *own))
    return multi_exit_graph(cfg.multi_exit) | shared | defended | rows | stage_task(
        "defences", cfg, _run_defences, seed=cfg.seed, needs=(chapter1, *rows))


def run_defences(cfg: DefencesConfig) -> dict[str, Any]:
    """Chapter 6's record (cached; every attack unit and adversarial training cached on its own
    too, and run side by side first: :func:`defences_graph`)."""
    return run_stages("defences", cfg, _run_defences, defences_graph(cfg), seed=cfg.seed)


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
