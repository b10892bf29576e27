"""Chapter 3: accuracy attacks against multi-exit models (SAME's RQ1, Chen et al., 2023).

Do attacks made to flip a model's answer also slow a multi-exit model down? PWWS,
TextFooler and DeepWordBug attack the DeeBERT-style (entropy exit) and PABEE-style
(patience exit) victims of chapter 1, each at its operating point, on the first
``num_examples`` sentences of chapter 1's test split. For each (victim, recipe):

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

TextFooler runs once per value of ``textfooler_min_cos_sims``: its word-embedding threshold
0.5 was set in counter-fitted space, and MiniLM's input embeddings (our offline substitute)
give few neighbours at 0.5 (:func:`candidates_per_word`), so lower values are run beside it
(unit keys ``textfooler_cos0.4`` ...).

Each (victim, recipe) is a cached unit (``accuracy_attack-<hash>``), shared by the chapter
and ``costeff-same attack``; :func:`run_accuracy_attacks` gathers them into one record
(``accuracy_attacks-<hash>``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import (
    ConfigError,
    DataConfig,
    StageConfig,
    TrainedModelConfig,
    check_parameters,
    load_profile,
)
from ..exits import ExitPolicy
from ..experiments import VICTIMS, MultiExitExperimentConfig, multi_exit_config, run_multi_exit
from ..metrics import efficiency_gain_reduction, exit_stats
from ..results import load_or_run
from . import RECIPES

#: TextFooler's word-embedding threshold (Jin et al., 2020), set in counter-fitted space
PAPER_MIN_COS_SIM = 0.5

#: chapter 1 keys shared through the profile's ``common`` mapping; chapter 3 takes them from chapter 1
COMMON_KEYS = ("task", "data_file", "backbone", "max_length")


@dataclasses.dataclass(frozen=True)
class AccuracyAttackUnitConfig(StageConfig):
    """One recipe against one victim at one operating point (a cached unit).

    Attributes:
        victim: the trained model of chapter 1.
        victim_name: ``entropy`` or ``patience``.
        policy: the exit policy name.
        policy_value: its threshold (entropy, nats) or patience (layers).
        recipe: ``pwws``, ``textfooler`` or ``deepwordbug``.
        num_examples: the first this many sentences of chapter 1's test split.
        min_cos_sim: TextFooler's least cosine similarity of a swap to its word (None for
            the other recipes).
        query_budget: model evaluations per example (None: unlimited).
        seed: seeds the attacks' random choices.
        batch_size: texts per victim forward.
    """

    victim: TrainedModelConfig
    victim_name: str
    policy: str
    policy_value: float
    recipe: str
    num_examples: int
    min_cos_sim: float | None = None
    query_budget: int | None = None
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {self.recipe!r}; accepted: {', '.join(RECIPES)}")
        if self.num_examples < 1:
            raise ConfigError(f"num_examples={self.num_examples} must be >= 1")

    @property
    def key(self) -> str:
        """The unit's name in the chapter's record: the recipe, plus TextFooler's threshold when
        it is not the paper's 0.5 (``textfooler_cos0.4``)."""
        if self.recipe == "textfooler" and self.min_cos_sim is not None and self.min_cos_sim != PAPER_MIN_COS_SIM:
            return f"textfooler_cos{self.min_cos_sim:g}"
        return self.recipe


@dataclasses.dataclass(frozen=True)
class AccuracyAttacksConfig(StageConfig):
    """Chapter 3: every recipe against every victim of chapter 1.

    Attributes:
        multi_exit: chapter 1's config (the victims and their operating points).
        victims: victim names (``entropy``, ``patience``).
        recipes: recipe names (``pwws``, ``textfooler``, ``deepwordbug``).
        textfooler_min_cos_sims: TextFooler runs once per value of its word-embedding cosine
            threshold: the paper's 0.5 (set in counter-fitted space) and, because MiniLM's input
            embeddings (our offline substitute) are less tight, lower values.
        num_examples: test sentences per victim.
        query_budget: model evaluations per attacked example (None: unlimited).
        seed: seeds the attacks.
        batch_size: texts per victim forward.
    """

    multi_exit: MultiExitExperimentConfig
    victims: tuple[str, ...] = VICTIMS
    recipes: tuple[str, ...] = tuple(RECIPES)
    textfooler_min_cos_sims: tuple[float, ...] = (0.5,)
    num_examples: int = 200
    query_budget: int | None = None
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self):
        for name in self.victims:
            if name not in VICTIMS:
                raise ConfigError(f"unknown victim {name!r}; accepted: {', '.join(VICTIMS)}")
        for name in self.recipes:
            if name not in RECIPES:
                raise ConfigError(f"unknown recipe {name!r}; accepted: {', '.join(RECIPES)}")
        if self.num_examples < 1:
            raise ConfigError(f"num_examples={self.num_examples} must be >= 1")
        if self.query_budget is not None and self.query_budget < 1:
            raise ConfigError(f"query_budget={self.query_budget} must be >= 1 or null (unlimited)")
        if not self.textfooler_min_cos_sims or not all(-1 <= c <= 1 for c in self.textfooler_min_cos_sims):
            raise ConfigError(f"textfooler_min_cos_sims={list(self.textfooler_min_cos_sims)} must be a non-empty "
                              "list of cosine similarities in [-1, 1]")

    def units(self, victim: str, recipe: str, policy_value: float) -> list[AccuracyAttackUnitConfig]:
        """The unit configs of ``recipe`` against ``victim`` at ``policy_value`` (TextFooler: one per threshold)."""
        values = self.textfooler_min_cos_sims if recipe == "textfooler" else (None,)
        return [AccuracyAttackUnitConfig(
            victim=self.multi_exit.victim(victim), victim_name=victim, policy=victim, policy_value=float(policy_value),
            recipe=recipe, num_examples=self.num_examples, min_cos_sim=value, query_budget=self.query_budget,
            seed=self.seed, batch_size=self.batch_size) for value in values]


CHAPTER3_PARAMETERS = {
    "victim_profile": str, "victims": list, "recipes": list, "textfooler_min_cos_sims": list, "num_examples": int,
    "query_budget": (int, type(None)), "seed": int, "batch_size": int,
    **{k: object for k in COMMON_KEYS},
}


def accuracy_attacks_config(**params: Any) -> AccuracyAttacksConfig:
    """Chapter 3's config from the notebook's flat parameters.

    ``victim_profile`` names the profile whose chapter-1 victims are attacked (its
    ``01_multi_exit`` parameters). The profile's ``common`` keys (task, backbone,
    max_length, data_file) are accepted and must agree with those victims'.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed), a value of the
            wrong type, or a common key that disagrees with chapter 1's.
    """
    check_parameters(params, CHAPTER3_PARAMETERS)
    p = dict(params)
    victims = victims_config(p, "chapter 3")
    return AccuracyAttacksConfig.from_dict({"multi_exit": victims, **p})


def victims_config(params: dict[str, Any], chapter: str) -> MultiExitExperimentConfig:
    """Chapter 1's config for the victims an attack chapter attacks.

    Pops ``victim_profile`` (default ``"default"``) and the profile's ``common`` keys
    (:data:`COMMON_KEYS`) from ``params`` in place; each common key given must equal chapter
    1's value under that profile.

    Raises:
        ConfigError: for an unknown profile, or a common key that disagrees with chapter 1's
            (naming both values and ``chapter``).
    """
    chapter1 = load_profile(params.pop("victim_profile", "default"))["01_multi_exit"]
    for key in COMMON_KEYS:
        if key in params:
            value = params.pop(key)
            if chapter1.get(key) != value:
                raise ConfigError(f"{key}={value!r} differs from chapter 1's {chapter1.get(key)!r}: {chapter} "
                                  "attacks chapter 1's victims; change victim_profile instead")
    return multi_exit_config(**chapter1)


# -- running one unit ------------------------------------------------------------------------

def test_examples(data: DataConfig, n: int) -> tuple[list[str], list[int]]:
    """The first ``n`` sentences and labels of chapter 1's test split (in its order).

    Raises:
        ConfigError: for a sentence-pair task.
    """
    from ..data import load_task, subsample

    task = load_task(data.task, data.seed, data.data_file)
    if task.has_pairs:
        raise ConfigError(f"task {task.name!r} has sentence pairs; the accuracy attacks take single sentences")
    test = subsample(task.splits["test"], data.eval_size, data.seed)  # as prepared_data does for chapter 1
    n = min(n, len(test))
    return list(test["text"][:n]), [int(y) for y in test["label"][:n]]


def _run_unit(cfg: AccuracyAttackUnitConfig, workdir: Path) -> dict[str, Any]:
    from ..backbones import load_tokenizer
    from ..experiments import trained_model
    from ..training import set_threads
    from . import build_recipe
    from .victim import MultiExitVictim

    set_threads()
    model, _ = trained_model(cfg.victim)
    tokenizer = load_tokenizer(cfg.victim.train.backbone)
    victim = MultiExitVictim(model, tokenizer, ExitPolicy(cfg.policy, cfg.policy_value),
                             max_length=cfg.victim.data.max_length, batch_size=cfg.batch_size)
    options = {"min_cos_sim": cfg.min_cos_sim} if cfg.min_cos_sim is not None else {}
    attack = build_recipe(cfg.recipe, victim, query_budget=cfg.query_budget, **options)
    texts, labels = test_examples(cfg.victim.data, cfg.num_examples)
    started = time.perf_counter()
    results = [attack.attack(text, label, cfg.seed).to_dict() for text, label in zip(texts, labels)]
    seconds = time.perf_counter() - started
    return {
        "victim": cfg.victim_name, "recipe": cfg.recipe, "key": cfg.key, "min_cos_sim": cfg.min_cos_sim,
        "policy": cfg.policy, "policy_value": cfg.policy_value,
        "num_layers": model.num_layers, "attack": attack.describe(), "seconds": seconds,
        "queries": victim.num_queries, "cache_hits": victim.num_cache_hits,
        "summary": summarize(results, model.num_layers), "results": results,
    }


def candidates_per_word(data: DataConfig, min_cos_sim: float, sentences: int = 200) -> float:
    """Mean TextFooler candidates per attackable word of chapter 1's first test sentences.

    The MiniLM input-embedding neighbours (of at most 50) with cosine >= ``min_cos_sim``,
    averaged over the words the recipe may touch (not stopwords, at least 2 characters).
    """
    from .constraints import MinWordLength, StopwordModification
    from .text import AttackedText
    from .transformations import EmbeddingNeighbourSwap

    swap = EmbeddingNeighbourSwap.from_minilm(min_cos_sim=min_cos_sim)
    texts = [AttackedText(t) for t in test_examples(data, sentences)[0]]
    words = [t.words[i] for t in texts
             for i in StopwordModification().allowed_indices(t) & MinWordLength(2).allowed_indices(t)]
    return sum(len(swap.neighbours(w)) for w in words) / max(1, len(words))


def run_unit(cfg: AccuracyAttackUnitConfig) -> dict[str, Any]:
    """One (victim, recipe) unit's record (cached)."""
    return load_or_run("accuracy_attack", cfg, _run_unit, seed=cfg.seed)


# -- figures ---------------------------------------------------------------------------------

def _efficiency(clean: np.ndarray, adv: np.ndarray, depth: int) -> dict[str, Any]:
    if len(clean) == 0:
        return {"examples": 0}
    from scipy.stats import wilcoxon

    before, after = exit_stats(clean, depth), exit_stats(adv, depth)
    moved = adv != clean
    # paired two-sided Wilcoxon signed-rank test of the exit-layer shifts (1.0 when nothing moved)
    p_value = float(wilcoxon(adv[moved], clean[moved]).pvalue) if moved.sum() >= 1 else 1.0
    return {
        "examples": len(clean),
        "mean_exit_layer_clean": before["mean_exit_layer"], "mean_exit_layer_adv": after["mean_exit_layer"],
        "speedup_clean": before["speedup"], "speedup_adv": after["speedup"],
        "efficiency_gain_clean": before["efficiency_gain"], "efficiency_gain_adv": after["efficiency_gain"],
        "efficiency_gain_reduction": efficiency_gain_reduction(before["efficiency_gain"], after["efficiency_gain"]),
        "histogram_clean": before["histogram"], "histogram_adv": after["histogram"],
        "later": float(np.mean(adv > clean)), "earlier": float(np.mean(adv < clean)),
        "mean_shift": float(np.mean(adv - clean)), "wilcoxon_p": p_value,
    }


def summarize(results: list[dict[str, Any]], depth: int) -> dict[str, Any]:
    """The chapter's figures for one (victim, recipe) from its per-example results.

    Args:
        results: :meth:`AttackResult.to_dict` of every example.
        depth: L, the victim's number of layers.

    Returns:
        Counts, accuracy before/after, success rate, perturbation rate, queries and seconds
        per attacked example, and the efficiency before/after on the attacked examples
        (``efficiency``) and on the successful ones (``efficiency_succeeded``).
    """
    status = np.array([r["status"] for r in results])
    attacked = status != "skipped"
    succeeded = status == "succeeded"
    labels = np.array([r["label"] for r in results])
    clean = np.array([r["original_exit_layer"] for r in results])
    adv = np.array([r["perturbed_exit_layer"] for r in results])

    def mean(values, mask):
        values = np.asarray(values, dtype=float)[mask]
        return float(values.mean()) if values.size else float("nan")

    n_attacked = int(attacked.sum())
    return _no_nan({
        "examples": len(results), "attacked": n_attacked, "skipped": int((~attacked).sum()),
        "succeeded": int(succeeded.sum()), "failed": int((status == "failed").sum()),
        "accuracy_before": float(np.mean([r["original_prediction"] == y for r, y in zip(results, labels)])),
        "accuracy_after": float(np.mean([r["perturbed_prediction"] == y for r, y in zip(results, labels)])),
        "success_rate": float(succeeded.sum() / n_attacked) if n_attacked else float("nan"),
        "perturbation_rate": mean([r["perturbation_rate"] for r in results], succeeded),
        "words_changed": mean([r["words_changed"] for r in results], succeeded),
        "queries_per_example": mean([r["num_queries"] for r in results], attacked),
        "seconds_per_example": mean([r["seconds"] for r in results], attacked),
        "budget_exhausted": int(sum(r["budget_exhausted"] for r in results)),
        "efficiency": _efficiency(clean[attacked], adv[attacked], depth),
        "efficiency_succeeded": _efficiency(clean[succeeded], adv[succeeded], depth),
    })


def _no_nan(value: Any) -> Any:
    """``value`` with every float nan (an undefined figure: no examples) replaced by None (JSON null)."""
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


# -- chapter 3 -------------------------------------------------------------------------------

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
            unit = run_unit(unit_cfg)
            n = len(unit["results"])
            # the clean queries reproduce chapter 1's test exits on the same sentences (the
            # fraction that agree; batching can move a borderline entropy by float rounding)
            unit["chapter1_agreement"] = float(np.mean(
                [(r["original_exit_layer"], r["original_prediction"]) == (e, p)
                 for r, e, p in zip(unit["results"], ch1["test_exit_layer"][:n], ch1["test_predictions"][:n])]))
            unit.pop("_entry", None)
            recipes[unit_cfg.key] = unit
        out["victims"][name] = {"policy": name, "policy_value": point["value"],
                                "test_accuracy": point["metric"], "recipes": recipes}
    return out


def run_accuracy_attacks(cfg: AccuracyAttacksConfig) -> dict[str, Any]:
    """Chapter 3's record (cached; each (victim, recipe) unit is cached on its own too)."""
    return load_or_run("accuracy_attacks", cfg, _run_accuracy_attacks, seed=cfg.seed)


SUMMARY_KEYS = ("examples", "attacked", "skipped", "succeeded", "failed", "accuracy_before", "accuracy_after",
                "success_rate", "perturbation_rate", "words_changed", "queries_per_example", "seconds_per_example")


def unit_row(victim: str, policy_value: float, unit: dict[str, Any]) -> dict[str, Any]:
    """One (victim, recipe) record of the summary: the figures of :func:`summarize`, flattened."""
    s, e = unit["summary"], unit["summary"]["efficiency"]
    return {
        "victim": victim, "recipe": unit["key"], "min_cos_sim": unit["min_cos_sim"], "policy": unit["policy"],
        "threshold": policy_value,
        **{k: s[k] for k in SUMMARY_KEYS},
        **{k: e.get(k) for k in ("mean_exit_layer_clean", "mean_exit_layer_adv", "speedup_clean", "speedup_adv",
                                 "efficiency_gain_clean", "efficiency_gain_adv", "efficiency_gain_reduction")},
        "efficiency_gain_reduction_succeeded": s["efficiency_succeeded"].get("efficiency_gain_reduction"),
        "seconds": unit["seconds"],
    }


def accuracy_attacks_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The ``accuracy_attacks`` section of ``costeff-same summary --json``: one record per (victim, recipe)."""
    rows = [unit_row(name, v["policy_value"], unit)
            for name, v in record["victims"].items() for unit in v["recipes"].values()]
    return {"task": record["task"], "backbone": record["backbone"], "num_layers": record["num_layers"],
            "num_examples": record["num_examples"], "query_budget": record["query_budget"], "records": rows}
