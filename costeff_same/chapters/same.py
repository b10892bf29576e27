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
- how well SAME's texts keep their meaning: sentence similarity under the Universal Sentence
  Encoder and the label-flip rate (:func:`costeff_same.attacks.units.meaning`);
- WAFFLE (Coalson et al., 2023; :mod:`costeff_same.attacks.waffle_coalson_2023`), the other
  slowdown attack, on the same sentences, victims and word budget;
- ablations and variants on the first ``ablation_examples`` sentences (:data:`VARIANTS`: each
  part switched off, ``no_tie_break``, the ``constrained`` variant held to meaning, and the
  word budgets of the budget curve, ``budget_1`` ... ``budget_3``);
- SAME at the reference code's operating points (entropy 0.19, patience 4) on the same
  ``ablation_examples`` sentences;
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

from costeff_same.attacks.same_units import (
    ABLATIONS,
    BUDGETS,
    VARIANTS,
    SameSettings,
    SameUnitConfig,
    run_same_unit,
    same_summary,
)
from costeff_same.attacks.transfer import replay, unit_texts
from costeff_same.attacks.units import RecipeUnitConfig, meaning, run_recipe_unit
from costeff_same.chapters.same_summary import exit_layers
from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.encoding import Encoded
from costeff_same.core.exits import ExitPolicy
from costeff_same.core.metrics import time_inference
from costeff_same.engine.parallel import Task, part_name, run_stages, stage_task
from costeff_same.engine.results import no_nan, stage, without_entry
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
        budgets: the word budgets of the budget curve (words; each a variant on the ablation sentences).
        constrained_variant: run the constrained variant (held to meaning) on the ablation sentences.
        waffle: run WAFFLE on the ``num_examples`` sentences beside SAME.
        reference_entropy: SAME also at this entropy threshold (nats; the reference code's 0.19;
            None: not run), on the ablation sentences.
        reference_patience: ... and at this patience (layers; the reference code's 4).
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
    budgets: tuple[int, ...] = BUDGETS
    constrained_variant: bool = True
    waffle: bool = True
    reference_entropy: float | None = 0.19
    reference_patience: int | None = 4
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
        for k in self.budgets:
            choice("budget", k, BUDGETS)

    @property
    def ablation_count(self) -> int:
        """Sentences of every variant but full SAME (the first of the same order)."""
        return min(self.ablation_examples, self.num_examples)

    def variants(self) -> dict[str, int]:
        """``{variant: sentences}`` of the SAME units run against each victim: SAME on
        ``num_examples``; each ablation, the constrained variant and each budget on the first
        ``ablation_examples`` of them."""
        n = self.ablation_count
        others = [*self.ablations, *(["constrained"] if self.constrained_variant else []),
                  *(f"budget_{k}" for k in self.budgets)]
        return {"same": self.num_examples, **({v: n for v in others} if n else {})}

    def reference_points(self) -> dict[str, float]:
        """``{victim: policy value}`` of the reference code's operating points that are run."""
        points = {"entropy": self.reference_entropy, "patience": self.reference_patience}
        return {v: float(points[v]) for v in self.victims if points[v] is not None and self.ablation_count}

    def unit(self, victim: str, policy_value: float, variant: str = "same",
             num_examples: int | None = None) -> SameUnitConfig:
        """The unit config of ``variant`` against ``victim`` at ``policy_value`` (the main unit,
        SAME on every sentence, also stores its candidates)."""
        settings = self.settings if variant == "same" else self.settings.replace(**VARIANTS[variant])
        n = num_examples or self.num_examples
        return SameUnitConfig(
            victim=self.multi_exit.victim(victim), victim_name=victim, policy=victim,
            policy_value=float(policy_value), variant=variant, settings=settings,
            num_examples=n, seed=self.seed, batch_size=self.batch_size,
            store_candidates=variant == "same" and n == self.num_examples)

    def waffle_unit(self, victim: str, policy_value: float) -> RecipeUnitConfig:
        """WAFFLE against ``victim`` at ``policy_value`` on SAME's sentences (SAME's default word budget)."""
        return RecipeUnitConfig(
            victim=self.multi_exit.victim(victim), victim_name=victim, policy=victim,
            policy_value=float(policy_value), recipe="waffle", num_examples=self.num_examples,
            query_budget=self.settings.query_budget, seed=self.seed, batch_size=self.batch_size)


SETTING_KEYS = tuple(f.name for f in dataclasses.fields(SameSettings))
#: chapter 4's notebook parameters (defaults: ``configs/default.yaml``)
SAME_SCHEMA = Schema("04_same", {
    **VICTIM_PARAMS,
    "num_examples": Param("int", "test sentences attacked per victim (seeded, label-balanced; chapter 3's)"),
    "ablation_examples": Param("int", 'sentences per victim and ablation (the first of the same order; 0: none)'),
    "ablations": Param("list[str]", 'ablations run'),
    "budgets": Param("list[int]", "word budgets of the budget curve (on the ablation sentences)"),
    "constrained_variant": Param("bool", "SAME held to meaning too (on the ablation sentences)"),
    "waffle": Param("bool", "WAFFLE (Coalson et al., 2023) beside SAME on the same sentences"),
    "reference_entropy": Param("Optional[float]", "SAME also at this entropy threshold (reference: 0.19)"),
    "reference_patience": Param("Optional[int]", "SAME also at this patience (reference: 4; None: not run)"),
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
    "min_similarity": Param("float", "the constrained variant's least angular USE similarity"),
    "seed": Param("int", "seeds the sentence order and the attack's random choices"),
    "batch_size": Param("int", 'texts per victim forward'),
    "timing_batch_size": Param("int", 'batch size of the wall-clock measurement'),
    "timing_repeats": Param("int", 'timed passes over each set (the fastest counts)'),
    "transfer": Param("bool", "run each victim's adversarial sentences through the other victim"),
})


def same_config(**params: Any) -> SameConfig:
    """Chapter 4's config from the notebook's flat parameters.

    ``victim_profile`` names the profile whose chapter-1 victims are attacked. The profile's
    ``common`` keys (task, backbone, max_length and the local files) are accepted and must agree with
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
    """SAME and each other variant (:meth:`SameConfig.variants`) on the first ``ablation_examples``
    sentences of ``name``."""
    n = cfg.ablation_count
    if not n:
        return {}
    first = main["results"][:n]
    out = {"same": {"summary": same_summary(first, depth, cfg.settings), "meaning": meaning(first),
                    "seconds": float(sum(r["seconds"] for r in first)), **exit_layers(first)}}
    for variant in cfg.variants():
        if variant != "same":
            out[variant] = _unit_entry(run_same_unit(cfg.unit(name, value, variant, n)))
    return out


def _unit_entry(unit: dict[str, Any]) -> dict[str, Any]:
    """What the chapter keeps of a unit beside the main one: its figures, meaning, seconds, attack and exits."""
    return {"summary": unit["summary"], "meaning": unit["meaning"], "seconds": unit["seconds"],
            "attack": unit["attack"], "policy_value": unit["policy_value"], **exit_layers(unit["results"])}


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
        main = without_entry(mains[name])
        out["victims"][name] = {"policy": name, "policy_value": point["value"], "test_accuracy": point["metric"],
                                "main": main, "timing": _timing(models[name], clean, adv, policies[name], cfg),
                                "scoring_agreement": agreement,
                                "ablations": _ablations(cfg, name, point["value"], main, depth)}
        if cfg.waffle:
            out["victims"][name]["waffle"] = _unit_entry(run_recipe_unit(cfg.waffle_unit(name, point["value"])))
        if name in cfg.reference_points():
            out["victims"][name]["reference_point"] = _unit_entry(run_same_unit(
                cfg.unit(name, cfg.reference_points()[name], "same", cfg.ablation_count)))
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


def _waffle_unit(cfg: SameConfig, victim: str) -> None:
    """A task of :func:`same_graph`: WAFFLE against ``victim`` at its operating point."""
    value = run_multi_exit(cfg.multi_exit)["victims"][victim]["operating_point"]["value"]
    run_recipe_unit(cfg.waffle_unit(victim, value))


def _reference_unit(cfg: SameConfig, victim: str) -> None:
    """A task of :func:`same_graph`: SAME against ``victim`` at the reference code's operating point."""
    run_same_unit(cfg.unit(victim, cfg.reference_points()[victim], "same", cfg.ablation_count))


def same_graph(cfg: SameConfig) -> dict[str, Task]:
    """Chapter 4's stages: chapter 1's, then one task per (victim, variant), WAFFLE and reference
    point, side by side, then the chapter's record."""
    chapter1 = multi_exit_stage(cfg.multi_exit)
    units = {part_name("same", cfg, victim, variant): Task(_variant_unit, (cfg, victim, variant), (chapter1,))
             for variant in cfg.variants() for victim in cfg.victims}
    if cfg.waffle:
        units |= {part_name("same", cfg, victim, "waffle"): Task(_waffle_unit, (cfg, victim), (chapter1,))
                  for victim in cfg.victims}
    units |= {part_name("same", cfg, victim, "reference"): Task(_reference_unit, (cfg, victim), (chapter1,))
              for victim in cfg.reference_points()}
    return multi_exit_graph(cfg.multi_exit) | units | stage_task("same", cfg, _run_same, seed=cfg.seed,
                                                                 needs=(chapter1, *units), exclusive=True)


def run_same(cfg: SameConfig) -> dict[str, Any]:
    """Chapter 4's record (cached; each (victim, variant) unit is cached on its own too, and
    the units run side by side first: :func:`same_graph`)."""
    return run_stages("same", cfg, _run_same, same_graph(cfg), seed=cfg.seed)


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
