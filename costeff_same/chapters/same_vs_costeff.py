"""Chapter 5: does SAME break COST-EFF? SAME and PWWS against COST-EFF's slender models.

COST-EFF (Shen et al., 2022) sells a model that is narrow (slenderization) and fast on easy
inputs (early exit); SAME (Chen et al., 2023) takes the fast part away. This chapter asks
what is left of COST-EFF's advantage under attack, on the models the book already trains
(it trains nothing): chapter 2's COST-EFF model, its teaching assistant and the no-TA
ablation, each behind entropy early exit at its own validation operating point, and chapter
1's DeeBERT-style victim as the full-size reference.

Each victim is attacked by SAME (chapter 4's settings) and by PWWS (SAME's RQ1, asked of
slender models) on chapter 3's and 4's test sentences (the same seeded, label-balanced
selection); the reference's units are chapter 4's and chapter 3's own (one cache entry).
For every victim and attack: clean and adversarial accuracy, mean exit layer,
efficiency-gain reduction and efficacy with their 95% intervals, FLOPs per example clean and
under attack (``torch.utils.flop_counter`` at each example's own exit layer and length,
:func:`costeff_same.core.metrics.flops_table`), the wall-clock of batched early exit on the
clean and on the adversarial sentences, and whether the early-exit path gives a full
forward's exit layers on them.

The deployer's comparison (:func:`~costeff_same.selection.deployer_comparison`): COST-EFF's FLOPs per example under
attack against the static slender model of its width (which never exits) and against the
teacher, on the same sentences; its worst case (every layer and every exit) against the
static model's; and the share of its measured FLOPs saving over the static model that
survives the attack. Transfer (:func:`~costeff_same.attacks.transfer.replay`): SAME's texts
crafted against the full-size reference, replayed unchanged against each slender victim (an
attacker who only has the public full-size model), and the reverse.
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
from costeff_same.attacks.units import RecipeUnitConfig, run_recipe_unit
from costeff_same.compression.experiment import (
    CostEffExperimentConfig,
    costeff_config,
    costeff_graph,
    costeff_stage,
    run_costeff,
)
from costeff_same.compression.graph import stage_model
from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.exits import ExitPolicy, predictions_of
from costeff_same.core.metrics import (
    count_parameters,
    efficiency_change,
    example_flops,
    flops_table,
    mean_flops,
    time_inference,
)
from costeff_same.core.statistics import (
    efficacy_interval,
    mean_interval,
    reduction_interval,
)
from costeff_same.engine.parallel import Task, part_name, run_stages, stage_task
from costeff_same.engine.results import no_nan, stage
from costeff_same.engine.training import collect_exit_logits
from costeff_same.evaluation import paths_agreement
from costeff_same.foundations.config import ConfigError, StageConfig, choice, load_profile
from costeff_same.foundations.schema import Param, Schema
from costeff_same.selection import deployer_comparison
from costeff_same.victims import (
    VICTIM_PARAMS,
    MultiExitExperimentConfig,
    multi_exit_graph,
    multi_exit_stage,
    run_multi_exit,
    victims_config,
)
from costeff_same.zoo import VictimModel, entry_model, trained_model

#: the full-size reference: chapter 1's DeeBERT-style victim (entropy exit, as COST-EFF's)
REFERENCE = "entropy"
#: chapter 2's models this chapter can attack (multi-exit, entropy exit)
SLENDER_VICTIMS = ("costeff", "ta", "no_ta", "final_importance")
#: the attacks it runs
ATTACKS = ("same", "pwws")


@dataclasses.dataclass(frozen=True)
class SameVsCostEffConfig(StageConfig):
    """Chapter 5: SAME and PWWS against COST-EFF's models and the full-size reference.

    Attributes:
        costeff: chapter 2's experiment (its models and their operating points).
        multi_exit: chapter 1's (the reference victim and its operating point).
        settings: SAME's settings (chapter 4's under the victims' profile).
        victims: chapter 2's models attacked (from :data:`SLENDER_VICTIMS`).
        static: the static model compared with COST-EFF (None: the one of COST-EFF's width).
        attacks: from :data:`ATTACKS`.
        num_examples: test sentences attacked per victim and attack.
        pwws_query_budget: PWWS's model evaluations per sentence (None: unlimited).
        seed: seeds the sentence order and the attacks.
        batch_size: texts per victim forward.
        timing_batch_size: batch size of the wall-clock measurement.
        timing_repeats: timed passes over each set (the fastest counts).
        transfer: replay SAME's texts across the reference and each slender victim.
    """

    costeff: CostEffExperimentConfig
    multi_exit: MultiExitExperimentConfig
    settings: SameSettings = SameSettings()
    victims: tuple[str, ...] = ("costeff", "ta", "no_ta")
    static: str | None = None
    attacks: tuple[str, ...] = ATTACKS
    num_examples: int = 200
    pwws_query_budget: int | None = 300
    seed: int = 0
    batch_size: int = 64
    timing_batch_size: int = 64
    timing_repeats: int = 3
    transfer: bool = True

    def __post_init__(self):
        models = self.costeff.models()
        for name in self.victims:
            choice("victim", name, [n for n in SLENDER_VICTIMS if n in models])
        for name in self.attacks:
            choice("attack", name, ATTACKS)
        statics = [n for n, (kind, _) in models.items() if kind == "static" and n.startswith("static_")]
        if self.static_model() not in statics:
            raise ConfigError(f"static model {self.static_model()!r} is not among chapter 2's static slender "
                              f"models; accepted: {', '.join(statics) or 'none (set static_heads)'}")
        if self.num_examples < 1 or self.timing_repeats < 1 or self.batch_size < 1 or self.timing_batch_size < 1:
            raise ConfigError(f"num_examples={self.num_examples}, timing_repeats={self.timing_repeats}, "
                              f"batch_size={self.batch_size} and timing_batch_size={self.timing_batch_size} "
                              "must be >= 1")

    def static_model(self) -> str:
        """The static slender model's name in chapter 2: ``static`` or, when None, the one with
        COST-EFF's heads and its widest FFN (``static_h<heads>``)."""
        return self.static if self.static is not None else f"static_h{self.costeff.costeff.slenderize.heads}"

    def same_unit(self, victim: VictimModel, name: str, threshold: float) -> SameUnitConfig:
        """SAME against ``victim`` at entropy ``threshold``: for the reference, chapter 4's own unit."""
        return SameUnitConfig(victim=victim, victim_name=name, policy="entropy", policy_value=float(threshold),
                              variant="same", settings=self.settings, num_examples=self.num_examples,
                              seed=self.seed, batch_size=self.batch_size, store_candidates=name == REFERENCE)

    def pwws_unit(self, victim: VictimModel, name: str, threshold: float) -> RecipeUnitConfig:
        """PWWS against ``victim`` at entropy ``threshold``: for the reference, chapter 3's own unit."""
        return RecipeUnitConfig(victim=victim, victim_name=name, policy="entropy",
                                        policy_value=float(threshold), recipe="pwws", num_examples=self.num_examples,
                                        query_budget=self.pwws_query_budget, seed=self.seed,
                                        batch_size=self.batch_size)


#: chapter 5's notebook parameters (defaults: ``configs/default.yaml``)
SAME_VS_COSTEFF_SCHEMA = Schema("05_same_vs_costeff", {
    **{k: v for k, v in VICTIM_PARAMS.items() if k != "victims"},
    "victim_profile": Param("str", "the profile whose chapter-1 reference, chapter-2 models and chapter-4 SAME "
                                   "settings are used"),
    "victims": Param("list[str]", "chapter 2's models attacked: costeff, ta, no_ta, final_importance"),
    "static": Param("Optional[str]", "the static model compared with COST-EFF (None: the one of its width)"),
    "attacks": Param("list[str]", 'attacks: same (chapter 4\'s settings), pwws'),
    "num_examples": Param("int", "test sentences per victim and attack (seeded, label-balanced; chapters 3-4's)"),
    "pwws_query_budget": Param("Optional[int]", "PWWS's model evaluations per sentence (chapter 3's)"),
    "seed": Param("int", "seeds the sentence order and the attacks' random choices"),
    "batch_size": Param("int", 'texts per victim forward'),
    "timing_batch_size": Param("int", 'batch size of the wall-clock measurement'),
    "timing_repeats": Param("int", 'timed passes over each set (the fastest counts)'),
    "transfer": Param("bool", "replay SAME's texts from the full-size reference on each slender victim, and back"),
})


def same_vs_costeff_config(**params: Any) -> SameVsCostEffConfig:
    """Chapter 5's config from the notebook's flat parameters.

    ``victim_profile`` (and ``victim_seed``) name the profile whose chapter-1 reference,
    chapter-2 models and chapter-4 SAME settings are used; the profile's ``common`` keys are
    accepted and must agree with chapter 1's.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed), a value of the
            wrong type, a common key that disagrees with chapter 1's, or a victim, attack or
            static model that chapter 2 does not have.
    """
    p = SAME_VS_COSTEFF_SCHEMA.complete(params)
    profile, victim_seed = p["victim_profile"], p.get("victim_seed")
    multi_exit = victims_config(p, "chapter 5", set(params))
    chapters = load_profile(profile)
    chapter2 = {**chapters["02_costeff"], **({"seed": victim_seed} if victim_seed is not None else {})}
    same = chapters.get("04_same", {})
    settings = SameSettings.from_dict({f.name: same[f.name] for f in dataclasses.fields(SameSettings)
                                       if f.name in same})
    return SameVsCostEffConfig.from_dict({"costeff": costeff_config(**chapter2), "multi_exit": multi_exit,
                                          "settings": settings, **p})


# -- chapter 5 -------------------------------------------------------------------------------

def measure_attack(unit: dict[str, Any], model, policy: ExitPolicy, tokenizer, cfg: SameVsCostEffConfig,
             max_length: int) -> dict[str, Any]:
    """One (victim, attack) measured on the victim's model: the unit's per-sentence figures, FLOPs,
    wall-clock and path agreement.

    Args:
        unit: the attack unit's record (its per-sentence ``results`` and ``summary``).
        model: the victim's model (eval mode) behind ``policy``; ``tokenizer`` and
            ``max_length`` encode the texts as the victim did.
        cfg: the chapter's config (``timing_batch_size``, ``timing_repeats``, ``batch_size``).

    Returns:
        Counts, accuracies and success rate (the unit's); ``efficiency``
        (:func:`~costeff_same.core.metrics.efficiency_change` over all sentences); mean FLOPs
        per example clean and attacked, each sentence at its own length (tokens) and exit layer
        (``clean_flops``, ``adv_flops``: ``(N,)``), and ``worst_case_flops`` (every layer and
        exit, at the attacked texts' lengths); the wall-clock seconds of batched early exit
        on each set; ``paths_agreement`` on each set; the per-sentence labels, predictions,
        exit layers and lengths.
    """
    depth = model.num_layers
    results = unit["results"]
    clean, adv, labels = unit_texts(unit, tokenizer, max_length)
    c_layers = np.array([r["original_exit_layer"] for r in results])
    a_layers = np.array([r["perturbed_exit_layer"] for r in results])
    table = flops_table(model, np.concatenate([clean.lengths, adv.lengths]))
    c_flops = example_flops(table, clean.lengths, c_layers)
    a_flops = example_flops(table, adv.lengths, a_layers)

    def timed(data, p):
        return time_inference(model, data, cfg.timing_batch_size, p, repeats=cfg.timing_repeats)["seconds"]

    s = unit["summary"]
    return {
        "examples": len(results), "attacked": s["attacked"], "succeeded": s["succeeded"],
        "success_rate": s["success_rate"], "accuracy_before": s["accuracy_before"],
        "accuracy_after": s["accuracy_after"], "seconds_per_example": s["seconds_per_example"],
        "efficiency": efficiency_change(c_layers, a_layers, depth),
        "flops_clean": float(c_flops.mean()), "flops_adv": float(a_flops.mean()),
        "wallclock_clean_seconds": timed(clean, policy), "wallclock_adv_seconds": timed(adv, policy),
        "paths_agreement": {"clean": paths_agreement(model, clean, policy, cfg.batch_size),
                            "adversarial": paths_agreement(model, adv, policy, cfg.batch_size)},
        "labels": labels.tolist(), "clean_prediction": [r["original_prediction"] for r in results],
        "adv_prediction": [r["perturbed_prediction"] for r in results],
        "clean_exit_layer": c_layers.tolist(), "adv_exit_layer": a_layers.tolist(),
        "clean_length": clean.lengths.tolist(), "adv_length": adv.lengths.tolist(),
        "clean_flops": c_flops.tolist(), "adv_flops": a_flops.tolist(),
        "worst_case_flops": mean_flops(table, adv.lengths, np.full(len(adv), depth)),
    }


def _fixed_models(cfg: SameVsCostEffConfig, units: dict[tuple[str, str], dict[str, Any]], tokenizer,
                  max_length: int) -> dict[str, Any]:
    """Per attack, the static slender model's and the teacher's FLOPs and last-exit predictions
    on the texts of that attack against COST-EFF (clean and adversarial): they never exit."""
    models = cfg.costeff.models()
    static, _ = stage_model(cfg.static_model(), *models[cfg.static_model()])
    teacher, _ = trained_model(cfg.costeff.teacher)
    texts = {attack: dict(zip(("clean", "adv"), unit_texts(units["costeff", attack], tokenizer, max_length)[:2]))
             for attack in cfg.attacks}
    lengths = np.concatenate([data.lengths for sides in texts.values() for data in sides.values()])
    out: dict[str, Any] = {attack: {} for attack in cfg.attacks}
    for who, net in (("static", static), ("teacher", teacher)):
        table = flops_table(net, lengths)            # one table per model, every length of every text
        for attack, sides in texts.items():
            for side, data in sides.items():
                last = np.full(len(data), net.num_layers)
                out[attack][f"{who}_{side}_flops"] = example_flops(table, data.lengths, last).tolist()
                out[attack][f"{who}_{side}_prediction"] = predictions_of(collect_exit_logits(net, data)[-1]).tolist()
    return out


@stage("same_vs_costeff")
def _run_same_vs_costeff(cfg: SameVsCostEffConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    chapter1 = run_multi_exit(cfg.multi_exit)
    chapter2 = run_costeff(cfg.costeff)
    teacher_cfg = cfg.costeff.teacher
    backbone, data = teacher_cfg.train.backbone, teacher_cfg.data
    tokenizer, max_length = load_tokenizer(backbone), data.max_length

    victims: dict[str, tuple[VictimModel, Any, float, str]] = {}
    for name in (REFERENCE, *cfg.victims):
        ref, model, threshold = _attacked(cfg, name, chapter1, chapter2)
        victims[name] = (ref, model, threshold, "reference" if name == REFERENCE else "slender")

    out: dict[str, Any] = {"task": chapter1["task"], "backbone": chapter1["backbone"],
                           "num_examples": cfg.num_examples, "attacks": list(cfg.attacks),
                           "settings": cfg.settings.to_dict(), "static_model": cfg.static_model(),
                           "victim_order": list(victims), "victims": {}}
    units: dict[tuple[str, str], dict[str, Any]] = {}
    for name, (ref, model, threshold, role) in victims.items():
        policy = ExitPolicy("entropy", threshold)
        row = {"role": role, "threshold": threshold, "num_layers": model.num_layers,
               "shape": chapter2["models"][name]["shape"] if role == "slender" else None,
               "parameters": count_parameters(model), "attacks": {}}
        for attack in cfg.attacks:
            units[name, attack] = unit = _attack(cfg, attack, ref, name, threshold)
            row["attacks"][attack] = measure_attack(unit, model, policy, tokenizer, cfg, max_length)
        out["victims"][name] = row

    if "costeff" in cfg.victims:
        out["static"] = _fixed_models(cfg, units, tokenizer, max_length)
    if cfg.transfer and "same" in cfg.attacks:
        out["transfer"] = {f"{source}->{target}": {
            "source": source, "target": target, "num_layers": victims[target][1].num_layers,
            **replay(units[source, "same"], victims[target][1], ExitPolicy("entropy", victims[target][2]),
                     tokenizer, max_length, cfg.batch_size)}
            for name in cfg.victims for source, target in ((REFERENCE, name), (name, REFERENCE))}
    out["seconds"] = time.perf_counter() - started
    return no_nan(out)


def _attacked(cfg: SameVsCostEffConfig, name: str, chapter1: dict[str, Any], chapter2: dict[str, Any]
              ) -> tuple[VictimModel, Any, float]:
    """Victim ``name`` (the reference or a model of chapter 2): how an attack names it, the
    model, and its entropy threshold at its operating point."""
    if name == REFERENCE:
        ref = cfg.multi_exit.victim(REFERENCE)
        return ref, trained_model(ref)[0], chapter1["victims"][REFERENCE]["operating_point"]["value"]
    kind, stage_cfg = cfg.costeff.models()[name]
    model, record = stage_model(name, kind, stage_cfg)
    teacher = cfg.costeff.teacher
    return (entry_model(record, teacher.data, teacher.train.backbone), model,
            chapter2["models"][name]["operating_point"]["threshold"])


def _attack(cfg: SameVsCostEffConfig, attack: str, ref: VictimModel, name: str, threshold: float) -> dict[str, Any]:
    """The unit of ``attack`` (SAME or PWWS) against victim ``name`` at entropy ``threshold``."""
    if attack == "same":
        return run_same_unit(cfg.same_unit(ref, name, threshold))
    return run_recipe_unit(cfg.pwws_unit(ref, name, threshold))


def _attack_unit(cfg: SameVsCostEffConfig, name: str, attack: str) -> None:
    """A task of :func:`same_vs_costeff_graph`: ``attack`` against victim ``name`` at its operating point."""
    ref, _, threshold = _attacked(cfg, name, run_multi_exit(cfg.multi_exit), run_costeff(cfg.costeff))
    _attack(cfg, attack, ref, name, threshold)


def same_vs_costeff_graph(cfg: SameVsCostEffConfig) -> dict[str, Task]:
    """Chapter 5's stages: chapters 1's and 2's, then one task per (victim, attack), side by
    side, then the chapter's record."""
    upstream = (multi_exit_stage(cfg.multi_exit), costeff_stage(cfg.costeff))
    units = {part_name("same_vs_costeff", cfg, name, attack): Task(_attack_unit, (cfg, name, attack), upstream)
             for attack in cfg.attacks for name in (REFERENCE, *cfg.victims)}
    return multi_exit_graph(cfg.multi_exit) | costeff_graph(cfg.costeff) | units | stage_task(
        "same_vs_costeff", cfg, _run_same_vs_costeff, seed=cfg.seed, needs=(*upstream, *units), exclusive=True)


def run_same_vs_costeff(cfg: SameVsCostEffConfig) -> dict[str, Any]:
    """Chapter 5's record (cached; each (victim, attack) unit is cached on its own too, and
    the units run side by side first: :func:`same_vs_costeff_graph`)."""
    return run_stages("same_vs_costeff", cfg, _run_same_vs_costeff, same_vs_costeff_graph(cfg), seed=cfg.seed)


# -- reading the record ----------------------------------------------------------------------

def attack_row(m: dict[str, Any], depth: int) -> dict[str, Any]:
    """One (victim, attack) of the summary: its figures and their 95% intervals.

    The efficiency-gain reduction resamples each sentence's clean and adversarial exit
    layers as a pair; accuracy, mean exit layer and FLOPs are means over the sentences.
    """
    e = m["efficiency"]
    labels = np.asarray(m["labels"])
    clean, adv = np.asarray(m["clean_exit_layer"]), np.asarray(m["adv_exit_layer"])
    return no_nan({
        **{k: m[k] for k in ("examples", "attacked", "succeeded", "success_rate", "accuracy_before",
                             "accuracy_after", "seconds_per_example", "flops_clean", "flops_adv", "worst_case_flops",
                             "wallclock_clean_seconds", "wallclock_adv_seconds")},
        **{k: e.get(k) for k in ("mean_exit_layer_clean", "mean_exit_layer_adv", "speedup_clean", "speedup_adv",
                                 "efficiency_gain_clean", "efficiency_gain_adv", "efficiency_gain_reduction",
                                 "efficacy_clean", "efficacy_adv")},
        "wallclock_slowdown": m["wallclock_adv_seconds"] / m["wallclock_clean_seconds"],
        "flops_increase": m["flops_adv"] / m["flops_clean"],
        "paths_agree": min(v for side in m["paths_agreement"].values() for v in side.values()),
        "intervals": {
            "accuracy_before": mean_interval((np.asarray(m["clean_prediction"]) == labels).astype(float)),
            "accuracy_after": mean_interval((np.asarray(m["adv_prediction"]) == labels).astype(float)),
            "mean_exit_layer_clean": mean_interval(clean.astype(float)),
            "mean_exit_layer_adv": mean_interval(adv.astype(float)),
            "efficiency_gain_reduction": reduction_interval(clean, adv, depth),
            "efficacy_clean": efficacy_interval(clean, depth), "efficacy_adv": efficacy_interval(adv, depth),
            "flops_clean": mean_interval(np.asarray(m["clean_flops"])),
            "flops_adv": mean_interval(np.asarray(m["adv_flops"])),
        },
    })


def transfer_row(t: dict[str, Any]) -> dict[str, Any]:
    """One transfer direction: the target's efficiency-gain reduction on the source's texts,
    its interval and :func:`~costeff_same.verdicts.shift`'s verdict."""
    interval = reduction_interval(np.asarray(t["clean_exit_layer"]), np.asarray(t["adv_exit_layer"]),
                                  t["num_layers"])
    return no_nan({"source": t["source"], "target": t["target"],
                   "efficiency_gain_reduction": t["efficiency"].get("efficiency_gain_reduction"),
                   "mean_exit_layer_clean": t["efficiency"]["mean_exit_layer_clean"],
                   "mean_exit_layer_adv": t["efficiency"]["mean_exit_layer_adv"],
                   "accuracy_before": t["accuracy_before"], "accuracy_after": t["accuracy_after"],
                   "success_rate_on_target": t["success_rate_on_target"], "interval": interval,
                   "verdict": verdicts.shift(interval) if verdicts.finite(interval) else None})


def same_vs_costeff_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The ``same_vs_costeff`` section of ``costeff-same summary --json``.

    Returns:
        ``victims``: per victim (the reference first, then chapter 2's in the config's
        order) its role (``reference`` or ``slender``), threshold, layers, parameters and per
        attack :func:`attack_row`; ``deployer``: per attack
        :func:`~costeff_same.selection.deployer_comparison` (when COST-EFF is among the victims); ``transfer``: per
        direction ``source->target`` :func:`transfer_row`; and the run's ``seconds``.
    """
    victims = {}
    for name in record["victim_order"]:
        v = record["victims"][name]
        victims[name] = {"role": v["role"], "threshold": v["threshold"], "num_layers": v["num_layers"],
                         "parameters": v["parameters"], "shape": v["shape"],
                         "attacks": {a: attack_row(m, v["num_layers"]) for a, m in v["attacks"].items()}}
    deployer = {attack: deployer_comparison(record["victims"]["costeff"]["attacks"][attack], static)
                for attack, static in record.get("static", {}).items()}
    return {"task": record["task"], "backbone": record["backbone"], "num_examples": record["num_examples"],
            "static_model": record["static_model"], "victims": victims, "deployer": deployer,
            "transfer": {key: transfer_row(t) for key, t in record.get("transfer", {}).items()},
            "seconds": record["seconds"]}
