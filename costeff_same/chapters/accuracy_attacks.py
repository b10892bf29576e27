"""Chapter 3: accuracy attacks against multi-exit models (SAME's RQ1, Chen et al., 2023).

Do attacks made to flip a model's answer also slow a multi-exit model down? PWWS,
TextFooler and DeepWordBug attack the DeeBERT-style (entropy exit) and PABEE-style
(patience exit) victims of chapter 1, each at its operating point, on ``num_examples``
sentences of chapter 1's test split: the seeded, label-balanced selection
:func:`costeff_same.attacks.sentences.attack_sentences` that chapter 4 attacks too. For each (victim, recipe):

- accuracy before and after the attack (over all examples; misclassified ones are skipped
  and stay wrong), attack success rate (succeeded / attacked), perturbation rate
  (changed words / words, over successful attacks), model queries and seconds per
  attacked example;
- the efficiency metrics on the same examples, clean against adversarial: mean exit layer,
  speedup ``L / mean exit layer``, efficiency gain ``g = 1 - mean exit layer / L`` and the
  efficiency-gain reduction ``(g_clean - g_adv) / g_clean`` (SAME's measure; the paper's
  exact formula is unverified). "Adversarial" is the text each attack returns for an
  attacked example (the successful one, or the best found when it failed: what an attacker
  would submit). The figures over successful attacks only are given too, and a paired
  Wilcoxon signed-rank test of the per-example exit-layer shifts says whether the change
  is significant.

TextFooler swaps words among counter-fitted vectors, as its paper does (built here:
:mod:`costeff_same.attacks.word_vectors`), once per value of ``textfooler_min_cos_sims`` (the
paper's 0.5), and beside them among MiniLM's input embeddings, the stand-in before, once per
value of ``textfooler_stand_in_min_cos_sims`` (0.5; a lower value such as 0.4 gives the stand-in
more candidates, as MiniLM's space gives few at 0.5:
:func:`~costeff_same.attacks.units.candidates_per_word`); unit keys ``textfooler``,
``textfooler_minilm``, ``textfooler_minilm_cos0.4``. Every unit also measures
how well its texts keep their meaning (:func:`~costeff_same.attacks.units.meaning`).

Each (victim, recipe) is a cached unit (``recipe_attack-<hash>``), shared by the chapter
and ``costeff-same attack``; :func:`run_accuracy_attacks` gathers them into one record
(``accuracy_attacks-<hash>``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from costeff_same import verdicts
from costeff_same.attacks.units import RecipeUnitConfig, run_recipe_unit
from costeff_same.core.statistics import holm
from costeff_same.engine.parallel import Task, part_name, run_stages, stage_task
from costeff_same.engine.results import stage
from costeff_same.foundations.config import ConfigError, StageConfig, choice
from costeff_same.foundations.registry import RECIPES, VICTIMS
from costeff_same.foundations.schema import Param, Schema
from costeff_same.victims import (
    VICTIM_PARAMS,
    MultiExitExperimentConfig,
    multi_exit_graph,
    multi_exit_stage,
    run_multi_exit,
    victims_config,
)


@dataclasses.dataclass(frozen=True)
class AccuracyAttacksConfig(StageConfig):
    """Chapter 3: every recipe against every victim of chapter 1.

    Attributes:
        multi_exit: chapter 1's config (the victims and their operating points).
        victims: victim names (``entropy``, ``patience``).
        recipes: recipe names (``pwws``, ``textfooler``, ``deepwordbug``).
        textfooler_min_cos_sims: TextFooler runs once per value of its word-embedding cosine
            threshold among the counter-fitted vectors (the paper's 0.5).
        textfooler_stand_in_min_cos_sims: ... and once per value among MiniLM's input
            embeddings (the stand-in; empty: none).
        num_examples: test sentences per victim.
        query_budget: model evaluations per attacked example (None: unlimited).
        seed: seeds the attacks.
        batch_size: texts per victim forward.
    """

    multi_exit: MultiExitExperimentConfig
    victims: tuple[str, ...] = VICTIMS
    recipes: tuple[str, ...] = tuple(RECIPES)
    textfooler_min_cos_sims: tuple[float, ...] = (0.5,)
    textfooler_stand_in_min_cos_sims: tuple[float, ...] = (0.5,)
    num_examples: int = 200
    query_budget: int | None = 300
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self):
        for name in self.victims:
            choice("victim", name, VICTIMS)
        for name in self.recipes:
            choice("recipe", name, RECIPES)
        if self.num_examples < 1:
            raise ConfigError(f"num_examples={self.num_examples} must be >= 1")
        if self.query_budget is not None and self.query_budget < 1:
            raise ConfigError(f"query_budget={self.query_budget} must be >= 1 or null (unlimited)")
        if not self.textfooler_min_cos_sims or not all(
                -1 <= c <= 1 for c in self.textfooler_min_cos_sims + self.textfooler_stand_in_min_cos_sims):
            raise ConfigError(f"textfooler_min_cos_sims={list(self.textfooler_min_cos_sims)} must be a non-empty "
                              "list of cosine similarities in [-1, 1], and textfooler_stand_in_min_cos_sims="
                              f"{list(self.textfooler_stand_in_min_cos_sims)} a list of them")

    def units(self, victim: str, recipe: str, policy_value: float) -> list[RecipeUnitConfig]:
        """The unit configs of ``recipe`` against ``victim`` at ``policy_value`` (TextFooler: one per
        word space and threshold)."""
        runs = [(None, None)]
        if recipe == "textfooler":
            runs = ([("counter_fitted", v) for v in self.textfooler_min_cos_sims]
                    + [("minilm", v) for v in self.textfooler_stand_in_min_cos_sims])
        return [RecipeUnitConfig(
            victim=self.multi_exit.victim(victim), victim_name=victim, policy=victim, policy_value=float(policy_value),
            recipe=recipe, num_examples=self.num_examples, min_cos_sim=value, word_vectors=vectors,
            query_budget=self.query_budget, seed=self.seed, batch_size=self.batch_size) for vectors, value in runs]


#: chapter 3's notebook parameters (defaults: ``configs/default.yaml``)
ACCURACY_ATTACKS_SCHEMA = Schema("03_accuracy_attacks", {
    **VICTIM_PARAMS,
    "recipes": Param("list[str]", 'attack recipes'),
    "textfooler_min_cos_sims": Param("list[float]", 'TextFooler once per cosine threshold (counter-fitted)'),
    "textfooler_stand_in_min_cos_sims": Param("list[float]", "... and among MiniLM's embeddings ([]: none)"),
    "num_examples": Param("int", "test sentences per victim (seeded, label-balanced; chapter 4's with the same seed)"),
    "query_budget": Param("Optional[int]", 'model evaluations per attacked example (None: unlimited)'),
    "seed": Param("int", "seeds the sentence selection and the attacks' random choices (character edits)"),
    "batch_size": Param("int", 'texts per victim forward'),
})


def accuracy_attacks_config(**params: Any) -> AccuracyAttacksConfig:
    """Chapter 3's config from the notebook's flat parameters.

    ``victim_profile`` names the profile whose chapter-1 victims are attacked (its
    ``01_multi_exit`` parameters). The profile's ``common`` keys (task, backbone,
    max_length and the local files) are accepted and must agree with those victims'.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed), a value of the
            wrong type, or a common key that disagrees with chapter 1's.
    """
    p = ACCURACY_ATTACKS_SCHEMA.complete(params)
    victims = victims_config(p, "chapter 3", set(params))
    return AccuracyAttacksConfig.from_dict({"multi_exit": victims, **p})


# -- chapter 3 -------------------------------------------------------------------------------

@stage("accuracy_attacks")
def _run_accuracy_attacks(cfg: AccuracyAttacksConfig, workdir: Path) -> dict[str, Any]:
    chapter1 = run_multi_exit(cfg.multi_exit)
    out: dict[str, Any] = {"task": chapter1["task"], "backbone": chapter1["backbone"],
                           "num_layers": chapter1["num_layers"], "num_examples": cfg.num_examples,
                           "query_budget": cfg.query_budget, "victims": {}}
    for name in cfg.victims:
        point = chapter1["victims"][name]["operating_point"]
        recipes = {}
        ch1 = chapter1["victims"][name]
        for unit_cfg in (u for r in cfg.recipes for u in cfg.units(name, r, point["value"])):
            unit = run_recipe_unit(unit_cfg)
            # the clean queries reproduce chapter 1's test exits on the same sentences (the
            # fraction that agree; batching can move a borderline entropy by float rounding)
            unit["chapter1_agreement"] = float(np.mean(
                [(r["original_exit_layer"], r["original_prediction"])
                 == (ch1["test_exit_layer"][i], ch1["test_predictions"][i])
                 for r, i in zip(unit["results"], unit["test_indices"])]))
            unit.pop("_entry", None)
            recipes[unit_cfg.key] = unit
        out["victims"][name] = {"policy": name, "policy_value": point["value"],
                                "test_accuracy": point["metric"], "recipes": recipes}
    return out


def _recipe_units(cfg: AccuracyAttacksConfig, victim: str, recipe: str) -> None:
    """A task of :func:`accuracy_attacks_graph`: ``recipe``'s units against ``victim`` at its operating point."""
    value = run_multi_exit(cfg.multi_exit)["victims"][victim]["operating_point"]["value"]
    for unit in cfg.units(victim, recipe, value):
        run_recipe_unit(unit)


def accuracy_attacks_graph(cfg: AccuracyAttacksConfig) -> dict[str, Task]:
    """Chapter 3's stages: chapter 1's, then one task per (victim, recipe), side by side, then the chapter's record."""
    chapter1 = multi_exit_stage(cfg.multi_exit)
    units = {part_name("accuracy_attacks", cfg, victim, recipe): Task(_recipe_units, (cfg, victim, recipe), (chapter1,))
             for victim in cfg.victims for recipe in cfg.recipes}
    return multi_exit_graph(cfg.multi_exit) | units | stage_task(
        "accuracy_attacks", cfg, _run_accuracy_attacks, seed=cfg.seed, needs=(chapter1, *units))


def run_accuracy_attacks(cfg: AccuracyAttacksConfig) -> dict[str, Any]:
    """Chapter 3's record (cached; each (victim, recipe) unit is cached on its own too, and
    the units run side by side first: :func:`accuracy_attacks_graph`)."""
    return run_stages("accuracy_attacks", cfg, _run_accuracy_attacks, accuracy_attacks_graph(cfg), seed=cfg.seed)


SUMMARY_KEYS = ("examples", "attacked", "skipped", "succeeded", "failed", "accuracy_before", "accuracy_after",
                "success_rate", "perturbation_rate", "words_changed", "queries_per_example", "seconds_per_example")


def unit_row(victim: str, policy_value: float, unit: dict[str, Any]) -> dict[str, Any]:
    """One (victim, recipe) record of the summary: the figures of :func:`summarize`, flattened."""
    s, e = unit["summary"], unit["summary"]["efficiency"]
    return {
        "victim": victim, "recipe": unit["key"], "min_cos_sim": unit["min_cos_sim"],
        "word_vectors": unit.get("word_vectors"), "policy": unit["policy"],
        "threshold": policy_value,
        **{k: s[k] for k in SUMMARY_KEYS},
        **{k: e.get(k) for k in ("mean_exit_layer_clean", "mean_exit_layer_adv", "speedup_clean", "speedup_adv",
                                 "efficiency_gain_clean", "efficiency_gain_adv", "efficiency_gain_reduction")},
        "efficiency_gain_reduction_succeeded": s["efficiency_succeeded"].get("efficiency_gain_reduction"),
        "efficacy_clean": e.get("efficacy_clean"), "efficacy_adv": e.get("efficacy_adv"),
        "wilcoxon_p": e.get("wilcoxon_p"), "intervals": s.get("intervals"), "meaning": unit.get("meaning"),
        "seconds": unit["seconds"],
    }


def accuracy_attacks_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The ``accuracy_attacks`` section of ``costeff-same summary --json``: one record per (victim, recipe)."""
    rows = [unit_row(name, v["policy_value"], unit)
            for name, v in record["victims"].items() for unit in v["recipes"].values()]
    return {"task": record["task"], "backbone": record["backbone"], "num_layers": record["num_layers"],
            "num_examples": record["num_examples"], "query_budget": record["query_budget"],
            "records": with_shift_verdicts(rows), "rq1": rq1_verdict(rows)}


#: SAME's RQ1 answer (Chen et al., 2023, section 5.1), the claim chapter 3 tests
RQ1_CLAIM = "accuracy attacks do not significantly reduce the efficiency of multi-exit models"


def with_shift_verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (:func:`unit_row`) with ``wilcoxon_p_holm``, Holm's correction of their Wilcoxon
    p-values as one family, and ``shift``, :func:`~costeff_same.verdicts.shift` of the
    efficiency-gain reduction's interval at that adjusted p-value (``increase``: the attack
    significantly reduced the efficiency gain; None where the interval is undefined)."""
    tested = [r for r in rows if r.get("wilcoxon_p") is not None and (r.get("intervals") or {}).get("attacked")]
    for row, p in zip(tested, holm([r["wilcoxon_p"] for r in tested])):
        reduction = row["intervals"]["attacked"]["efficiency_gain_reduction"]
        row["wilcoxon_p_holm"] = p
        row["shift"] = verdicts.shift(reduction, p) if verdicts.finite(reduction) else None
    return rows


def rq1_verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Chapter 3's answer to RQ1, by :func:`~costeff_same.verdicts.directional`: the claim holds
    for a (victim, recipe) whose efficiency-gain reduction is not a significant increase.

    Returns:
        ``claim``, ``pairs`` (the rows), ``tested`` (those with a defined interval),
        ``significant`` (significantly slower) and ``verdict``.
    """
    shifts = [r["shift"] for r in rows if r.get("shift") is not None]
    return {"claim": RQ1_CLAIM, "pairs": len(rows), "tested": len(shifts),
            "significant": sum(v == "increase" for v in shifts),
            "verdict": verdicts.directional(("no significant change", "decrease"), shifts)}
