"""Chapter 4: the SAME slowdown attack against the chapter-1 victims (Chen et al., ACL 2023).

SAME (:mod:`costeff_same.attacks.same_chen_2023`) attacks the DeeBERT-style (entropy exit)
and PABEE-style (patience exit) victims of chapter 1, each at its operating point, on
``num_examples`` test sentences per victim. For each victim:

- efficiency before and after on all the sentences (skipped ones, which already exit at
  the last layer, count with their clean exit layer both times): mean exit layer, speedup
  ``L / mean exit layer``, efficiency gain ``g = 1 - mean exit layer / L`` and the
  efficiency-gain reduction ``(g_clean - g_adv) / g_clean`` (SAME's measure; the paper's
  exact formula is unverified). Skipped sentences change neither the numerator nor the
  denominator of the reduction, so it is the same over all or over attacked sentences;
- accuracy before and after, success rate (succeeded / attacked), perturbation rate
  (changed words / words), model queries and seconds per attacked sentence, the largest
  number of words changed against the budget ``max(3, ceil(0.1 * words))``;
- measured wall-clock of batched early-exit inference over the clean and the adversarial
  sentences (the time an attacker actually costs the deployment, not only layers);
- whether the early-exit scoring path gives exactly the exit layers of a full forward on
  those sentences;
- ablations on the first ``ablation_examples`` sentences (:data:`ABLATIONS`);
- transfer: the sentences crafted against one victim, run through the other.

The sentences are chapter 3's: the seeded, label-balanced selection of chapter 1's test
split (:func:`costeff_same.attacks.sentences.attack_sentences`); the ablations use the first
``ablation_examples`` of the same order, balanced as well.

Every (victim, variant) is a cached unit (``same_attack-<hash>``) that also stores the
texts it sent to the model (``work/candidates.jsonl.gz``: ``benchmarks/same_scoring.py``
replays them); :func:`run_same` gathers the units, times inference and runs the transfer
into one record (``same-<hash>``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from costeff_same import verdicts
from costeff_same.attacks.same_units import ABLATIONS, SameSettings, SameUnitConfig, run_same_unit, same_summary
from costeff_same.attacks.transfer import replay, unit_texts
from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.data import Encoded
from costeff_same.core.exits import ExitPolicy
from costeff_same.core.metrics import time_inference
from costeff_same.core.statistics import reduction_difference_interval, reduction_interval
from costeff_same.engine.parallel import Task, part_name, run_stages, stage_task
from costeff_same.engine.results import no_nan, stage
from costeff_same.evaluation import paths_agreement
from costeff_same.foundations.config import ConfigError, StageConfig, choice, load_profile
from costeff_same.foundations.registry import VICTIMS
from costeff_same.foundations.schema import Param, Schema
from costeff_same.victims import (
    VICTIM_PARAMS,
    MultiExitExperimentConfig,
    multi_exit_graph,
    multi_exit_stage,
    run_multi_exit,
    victims_config,
)
from costeff_same.zoo import trained_model


@dataclasses.dataclass(frozen=True)
class SameConfig(StageConfig):
    """Chapter 4: SAME against every victim of chapter 1, its ablations and the transfer.

    Attributes:
        multi_exit: chapter 1's config (the victims and their operating points).
        victims: victim names.
        num_examples: sentences attacked per victim (the main run).
        ablation_examples: sentences per victim and ablation (0: no ablations).
        ablations: names from :data:`ABLATIONS`.
        settings: SAME's settings.
        seed: seeds the sentence order and the attacks.
        batch_size: texts per victim forward.
        timing_batch_size: batch size of the wall-clock measurement.
        timing_repeats: timed passes over each set (the fastest counts).
        transfer: run each victim's adversarial sentences through the other victim.
    """

    multi_exit: MultiExitExperimentConfig
    victims: tuple[str, ...] = VICTIMS
    num_examples: int = 200
    ablation_examples: int = 50
    ablations: tuple[str, ...] = tuple(ABLATIONS)
    settings: SameSettings = SameSettings()
    seed: int = 0
    batch_size: int = 64
    timing_batch_size: int = 64
    timing_repeats: int = 3
    transfer: bool = True

    def __post_init__(self):
        for name in self.victims:
            choice("victim", name, VICTIMS)
        for name in self.ablations:
            choice("ablation", name, ABLATIONS)
        if self.num_examples < 1 or self.ablation_examples < 0 or self.timing_repeats < 1:
            raise ConfigError(f"num_examples={self.num_examples} must be >= 1, ablation_examples="
                              f"{self.ablation_examples} >= 0 and timing_repeats={self.timing_repeats} >= 1")

    def variants(self) -> dict[str, int]:
        """``{variant: sentences}`` of the units run against each victim: SAME on ``num_examples``,
        each ablation on the first ``ablation_examples`` of them."""
        n = min(self.ablation_examples, self.num_examples)
        return {"same": self.num_examples, **({v: n for v in self.ablations} if n else {})}

    def unit(self, victim: str, policy_value: float, variant: str = "same",
             num_examples: int | None = None) -> SameUnitConfig:
        """The unit config of ``variant`` against ``victim`` at ``policy_value``."""
        settings = self.settings if variant == "same" else self.settings.replace(**ABLATIONS[variant])
        return SameUnitConfig(
            victim=self.multi_exit.victim(victim), victim_name=victim, policy=victim,
            policy_value=float(policy_value), variant=variant, settings=settings,
            num_examples=num_examples or self.num_examples, seed=self.seed, batch_size=self.batch_size,
            store_candidates=variant == "same")


SETTING_KEYS = tuple(f.name for f in dataclasses.fields(SameSettings))
#: chapter 4's notebook parameters (defaults: ``configs/default.yaml``)
SAME_SCHEMA = Schema("04_same", {
    **VICTIM_PARAMS,
    "num_examples": Param("int", "test sentences attacked per victim (seeded, label-balanced; chapter 3's)"),
    "ablation_examples": Param("int", 'sentences per victim and ablation (the first of the same order; 0: none)'),
    "ablations": Param("list[str]", 'ablations run'),
    "lam": Param("float", 'lambda of lambda * L_X + (1 - lambda) * L_U (SAME: 0.8)'),
    "dynamic_weights": Param("bool", "SAME's dynamic exit weights (0.1 before the exit layer, 1.2^(i-e) from it on)"),
    "word_level": Param("bool", 'gradient-guided word swaps'),
    "char_level": Param("bool", 'character mutations (swap, insertion, deletion, homoglyph)'),
    "reference_quirks": Param("bool", "the reference code's behaviour (accumulated gradient, last beam's best, ...)"),
    "beam_width": Param("int", 'beam width (SAME: 5)'),
    "max_iterations": Param("int", 'beam-search iterations at most (SAME: 10)'),
    "top_n": Param("int", 'candidates per level and expansion (SAME: 100)'),
    "top_k": Param("int", 'words mutated at the character level (SAME: 10)'),
    "max_rate": Param("float", 'words changed at most, as a fraction of the words (SAME: 0.1) ...'),
    "min_words": Param("int", '... and never fewer than this many (SAME: 3)'),
    "query_budget": Param("Optional[int]", 'model evaluations per sentence (None: unlimited, as in the paper)'),
    "chunk_size": Param("Optional[int]", 'candidates per scoring batch (the result does not depend on it)'),
    "tie_break": Param("bool", "rank same-layer candidates by that exit's entropy (a departure from the paper)"),
    "seed": Param("int", "seeds the sentence order and the attack's random choices"),
    "batch_size": Param("int", 'texts per victim forward'),
    "timing_batch_size": Param("int", 'batch size of the wall-clock measurement'),
    "timing_repeats": Param("int", 'timed passes over each set (the fastest counts)'),
    "transfer": Param("bool", "run each victim's adversarial sentences through the other victim"),
})


def same_config(**params: Any) -> SameConfig:
    """Chapter 4's config from the notebook's flat parameters.

    ``victim_profile`` names the profile whose chapter-1 victims are attacked. The profile's
    ``common`` keys (task, backbone, max_length, data_file) are accepted and must agree with
    those victims'. The attack settings (``lam``, ``beam_width``, ...) are flat parameters.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed), a value of the
            wrong type, or a common key that disagrees with chapter 1's.
    """
    p = SAME_SCHEMA.complete(params)
    victims = victims_config(p, "chapter 4", set(params))
    settings = SameSettings.from_dict({k: p.pop(k) for k in SETTING_KEYS if k in p})
    return SameConfig.from_dict({"multi_exit": victims, "settings": settings, **p})


# -- chapter 4 -------------------------------------------------------------------------------

def _timing(model, clean: Encoded, adv: Encoded, policy: ExitPolicy, cfg: SameConfig) -> dict[str, Any]:
    """Wall-clock of the deployed (batched early-exit) model on the clean and adversarial sets."""
    def timed(data: Encoded, p: ExitPolicy | None):
        return time_inference(model, data, cfg.timing_batch_size, p, repeats=cfg.timing_repeats)

    timing = {"clean": timed(clean, policy), "adversarial": timed(adv, policy), "all_layers": timed(clean, None)}
    timing["slowdown"] = timing["adversarial"]["seconds"] / timing["clean"]["seconds"]
    return timing


def _ablations(cfg: SameConfig, name: str, value: float, main: dict[str, Any], depth: int) -> dict[str, Any]:
    """SAME and each ablation on the first ``ablation_examples`` sentences of ``name``."""
    if not cfg.ablation_examples:
        return {}
    n = min(cfg.ablation_examples, cfg.num_examples)
    out = {"same": {"summary": same_summary(main["results"][:n], depth, cfg.settings),
                    "seconds": float(sum(r["seconds"] for r in main["results"][:n])), **_exits(main["results"][:n])}}
    for variant in cfg.ablations:
        unit = run_same_unit(cfg.unit(name, value, variant, n))
        out[variant] = {"summary": unit["summary"], "seconds": unit["seconds"], "attack": unit["attack"],
                        **_exits(unit["results"])}
    return out


def _exits(results: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The per-sentence ``clean_exit_layer`` and ``adv_exit_layer`` of an attack's results."""
    return {"clean_exit_layer": [r["original_exit_layer"] for r in results],
            "adv_exit_layer": [r["perturbed_exit_layer"] for r in results]}


@stage("same")
def _run_same(cfg: SameConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    chapter1 = run_multi_exit(cfg.multi_exit)
    depth = chapter1["num_layers"]
    tokenizer = load_tokenizer(cfg.multi_exit.entropy_model.backbone)
    max_length = cfg.multi_exit.data.max_length
    out: dict[str, Any] = {"task": chapter1["task"], "backbone": chapter1["backbone"], "num_layers": depth,
                           "num_examples": cfg.num_examples, "ablation_examples": cfg.ablation_examples,
                           "settings": cfg.settings.to_dict(), "victims": {}}
    models, policies, mains = {}, {}, {}
    for name in cfg.victims:
        point = chapter1["victims"][name]["operating_point"]
        policies[name] = ExitPolicy(name, point["value"])
        models[name], _ = trained_model(cfg.multi_exit.victim(name))
        mains[name] = run_same_unit(cfg.unit(name, point["value"]))
        clean, adv, _ = unit_texts(mains[name], tokenizer, max_length)
        # the fast scoring path gives a full forward's exit layers (here on the final texts)
        agreement = {key: paths_agreement(models[name], data, policies[name], cfg.batch_size)
                     for key, data in (("clean", clean), ("adversarial", adv))}
        main = {k: v for k, v in mains[name].items() if k != "_entry"}
        out["victims"][name] = {"policy": name, "policy_value": point["value"], "test_accuracy": point["metric"],
                                "main": main, "timing": _timing(models[name], clean, adv, policies[name], cfg),
                                "scoring_agreement": agreement,
                                "ablations": _ablations(cfg, name, point["value"], main, depth)}
    if cfg.transfer and len(cfg.victims) == 2:
        out["transfer"] = {f"{s}->{t}": {"source": s, "target": t,
                                         **replay(mains[s], models[t], policies[t], tokenizer, max_length,
                                                  cfg.batch_size)}
                           for s, t in (cfg.victims, cfg.victims[::-1])}
    out["seconds"] = time.perf_counter() - started
    return no_nan(out)


def _variant_unit(cfg: SameConfig, victim: str, variant: str) -> None:
    """A task of :func:`same_graph`: ``variant`` against ``victim`` at its operating point."""
    value = run_multi_exit(cfg.multi_exit)["victims"][victim]["operating_point"]["value"]
    run_same_unit(cfg.unit(victim, value, variant, cfg.variants()[variant]))


def same_graph(cfg: SameConfig) -> dict[str, Task]:
    """Chapter 4's stages: chapter 1's, then one task per (victim, variant), side by side, then the chapter's record."""
    chapter1 = multi_exit_stage(cfg.multi_exit)
    units = {part_name("same", cfg, victim, variant): Task(_variant_unit, (cfg, victim, variant), (chapter1,))
             for variant in cfg.variants() for victim in cfg.victims}
    return multi_exit_graph(cfg.multi_exit) | units | stage_task("same", cfg, _run_same, seed=cfg.seed,
                                                                 needs=(chapter1, *units))


def run_same(cfg: SameConfig) -> dict[str, Any]:
    """Chapter 4's record (cached; each (victim, variant) unit is cached on its own too, and
    the units run side by side first: :func:`same_graph`)."""
    return run_stages("same", cfg, _run_same, same_graph(cfg), seed=cfg.seed)


# -- reading the record ----------------------------------------------------------------------

def victim_row(name: str, v: dict[str, Any]) -> dict[str, Any]:
    """One victim's record of the ``same`` summary section."""
    s = v["main"]["summary"]
    e = s["efficiency_all"]
    return {
        "policy": v["policy"], "threshold": v["policy_value"],
        "examples": s["examples"], "attacked": s["attacked"], "skipped": s["skipped"],
        "succeeded": s["succeeded"],
        "mean_exit_layer_clean": e["mean_exit_layer_clean"], "mean_exit_layer_adv": e["mean_exit_layer_adv"],
        "speedup_clean": e["speedup_clean"], "speedup_adv": e["speedup_adv"],
        "efficiency_gain_clean": e["efficiency_gain_clean"], "efficiency_gain_adv": e["efficiency_gain_adv"],
        "efficiency_gain_reduction": e["efficiency_gain_reduction"],
        "accuracy_before": s["accuracy_before"], "accuracy_after": s["accuracy_after"],
        "success_rate": s["success_rate"], "perturbation_rate": s["perturbation_rate_attacked"],
        "perturbation_rate_succeeded": s["perturbation_rate"], "max_words_changed": s["max_words_changed"],
        "budget_violations": s["budget_violations"],
        "queries_per_example": s["queries_per_example"], "seconds_per_example": s["seconds_per_example"],
        "efficacy_clean": e.get("efficacy_clean"), "efficacy_adv": e.get("efficacy_adv"),
        "wilcoxon_p": e.get("wilcoxon_p"), "intervals": s.get("intervals"),
        "wallclock_clean_seconds": v["timing"]["clean"]["seconds"],
        "wallclock_adversarial_seconds": v["timing"]["adversarial"]["seconds"],
        "wallclock_slowdown": v["timing"]["slowdown"],
    }


def same_summary_section(record: dict[str, Any]) -> dict[str, Any]:
    """The ``same`` section of ``costeff-same summary --json``: one record per victim."""
    victims = {name: victim_row(name, v) for name, v in record["victims"].items()}
    reductions = [r["efficiency_gain_reduction"] for r in victims.values()
                  if r["efficiency_gain_reduction"] is not None]
    exits = [_exits(v["main"]["results"]) for v in record["victims"].values()]
    interval = reduction_interval([e["clean_exit_layer"] for e in exits], [e["adv_exit_layer"] for e in exits],
                                  record["num_layers"])
    return {"task": record["task"], "backbone": record["backbone"], "num_layers": record["num_layers"],
            "num_examples": record["num_examples"], "ablation_examples": record["ablation_examples"],
            "mean_efficiency_gain_reduction": float(np.mean(reductions)) if reductions else None,
            "mean_efficiency_gain_reduction_interval": no_nan(interval),
            "paper_mean_efficiency_gain_reduction": PAPER_REDUCTION,
            "verdict": verdicts.quantitative(PAPER_REDUCTION, no_nan(interval), REDUCTION_TOLERANCE),
            "ablation_tests": {name: ablation_tests(v["ablations"], record["num_layers"])
                               for name, v in record["victims"].items() if v["ablations"]},
            "transfer": {key: transfer_row(t, record["num_layers"]) for key, t in record.get("transfer", {}).items()},
            "seconds": record["seconds"], **victims}


def ablation_tests(ablations: dict[str, Any], depth: int) -> dict[str, Any]:
    """Full SAME against each ablation on the same sentences: each one's efficiency-gain
    reduction with its interval, the paired interval of SAME's minus the ablation's, and
    :func:`~costeff_same.verdicts.comparison` (``beats``: the part the ablation removes helps)."""
    full = ablations["same"]
    out = {}
    for variant, a in ablations.items():
        if variant == "same" or "adv_exit_layer" not in a:
            continue
        difference = no_nan(reduction_difference_interval(full["clean_exit_layer"], full["adv_exit_layer"],
                                                          a["adv_exit_layer"], depth))
        out[variant] = {"efficiency_gain_reduction": no_nan(reduction_interval(a["clean_exit_layer"],
                                                                               a["adv_exit_layer"], depth)),
                        "same_minus_ablation": difference,
                        "verdict": verdicts.comparison(difference) if verdicts.finite(difference) else None}
    return out


def transfer_row(t: dict[str, Any], depth: int) -> dict[str, Any]:
    """One transfer direction: the target's efficiency-gain reduction on the source's
    adversarial sentences, with its interval and :func:`~costeff_same.verdicts.shift`."""
    row = {"source": t["source"], "target": t["target"],
           "efficiency_gain_reduction": t["efficiency"].get("efficiency_gain_reduction"),
           "accuracy_before": t["accuracy_before"], "accuracy_after": t["accuracy_after"],
           "success_rate_on_target": t["success_rate_on_target"]}
    if "adv_exit_layer" in t:
        interval = no_nan(reduction_interval(t["clean_exit_layer"], t["adv_exit_layer"], depth))
        row.update(interval=interval, verdict=verdicts.shift(interval) if verdicts.finite(interval) else None)
    return row


#: SAME's headline (Chen et al., 2023, abstract): the slowdown attack cuts the efficiency gain by about 80%
PAPER_REDUCTION = 0.80
#: "about 80%": a figure within 5 points of our interval counts as reproduced
REDUCTION_TOLERANCE = 0.05


def cli_rows(profile: str, overrides: dict[str, Any], victim: str | None = None) -> list[dict[str, Any]]:
    """``costeff-same attack --recipe same``: run (or read) the main SAME unit of each victim.

    Args:
        profile: the parameter profile (its ``04_same`` chapter parameters).
        overrides: ``--set`` values.
        victim: only this victim (None: the profile's victims).

    Returns:
        One :func:`victim_row`-like record per victim (without the chapter's timing).
    """
    params = {**load_profile(profile).get("04_same", {}), **overrides}
    cfg = same_config(**params)
    chapter1 = run_multi_exit(cfg.multi_exit)
    rows = []
    for name in [victim] if victim else cfg.victims:
        value = chapter1["victims"][name]["operating_point"]["value"]
        unit = run_same_unit(cfg.unit(name, value))
        s, e = unit["summary"], unit["summary"]["efficiency_all"]
        rows.append({"victim": name, "recipe": "same", "policy": name, "threshold": value,
                     **{k: s[k] for k in ("examples", "attacked", "skipped", "succeeded", "accuracy_before",
                                          "accuracy_after", "success_rate", "queries_per_example",
                                          "seconds_per_example", "max_words_changed", "budget_violations")},
                     "perturbation_rate": s["perturbation_rate_attacked"],
                     **{k: e[k] for k in ("mean_exit_layer_clean", "mean_exit_layer_adv", "speedup_clean",
                                          "speedup_adv", "efficiency_gain_clean", "efficiency_gain_adv",
                                          "efficiency_gain_reduction")},
                     "seconds": unit["seconds"]})
    return rows
