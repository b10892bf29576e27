"""Attack units: one attack against one victim at one operating point, cached.

An attack unit loads a cached victim (:func:`load_victim`: a zoo model behind its exit
policy), attacks a list of test sentences one by one (:func:`attack_all`) and summarises
the per-sentence results (:func:`summarize`: accuracy before and after, success rate,
perturbation rate, queries, seconds, and the efficiency change of
:func:`costeff_same.core.metrics.efficiency_change`) and how well its texts keep their meaning
(:func:`meaning`: sentence similarity and label flips). The unit of a recipe
(:class:`RecipeUnitConfig`: the accuracy recipes of chapter 3 and WAFFLE) lives here; SAME's
in :mod:`costeff_same.attacks.same_units`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from costeff_same.attacks import SLOWDOWN_RECIPES, build_recipe
from costeff_same.attacks.constraints import MinWordLength, StopwordModification, sentence_encoder
from costeff_same.attacks.sentences import attack_sentences
from costeff_same.attacks.text import AttackedText
from costeff_same.attacks.victim import MultiExitVictim
from costeff_same.attacks.word_vectors import WORD_VECTORS, neighbour_swap
from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.exits import ExitPolicy
from costeff_same.core.metrics import efficiency_change
from costeff_same.core.statistics import efficacy_interval, mean_interval, reduction_interval
from costeff_same.engine.results import load_or_run, no_nan, stage
from costeff_same.foundations import progress
from costeff_same.foundations.config import ConfigError, DataConfig, StageConfig
from costeff_same.foundations.registry import RECIPES
from costeff_same.zoo import VictimModel, victim_backbone, victim_model

#: TextFooler's word-embedding threshold (Jin et al., 2020), set in counter-fitted space
PAPER_MIN_COS_SIM = 0.5


class RecordingVictim(MultiExitVictim):
    """A victim that also keeps every batch of texts it sends to the model (cache misses).

    Attributes:
        log: one ``(all_exits, texts)`` pair per model evaluation call.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[tuple[bool, list[str]]] = []

    def _run(self, texts, all_exits):
        self.log.append((all_exits, list(texts)))
        return super()._run(texts, all_exits)


def load_victim(model: VictimModel, policy: str, policy_value: float, batch_size: int,
                recording: bool = False) -> MultiExitVictim:
    """The zoo's model of ``model`` behind exit policy ``policy`` at ``policy_value``.

    Args:
        model: chapter 1's trained model, or a model a cached stage saved (:class:`~costeff_same.zoo.StageModel`).
        policy: ``entropy``, ``patience`` or ``maxprob``; ``policy_value`` its threshold
            (nats) or patience (layers).
        batch_size: texts per model forward.
        recording: a :class:`RecordingVictim` that logs the texts it scores.
    """
    cls = RecordingVictim if recording else MultiExitVictim
    return cls(victim_model(model), load_tokenizer(victim_backbone(model)), ExitPolicy(policy, policy_value),
               max_length=model.data.max_length, batch_size=batch_size)


def attack_all(attack, texts: list[str], labels: list[int], seed: int,
               desc: str = "attack") -> tuple[list[dict[str, Any]], float]:
    """Every sentence's :meth:`AttackResult.to_dict`, and the seconds the attacks took
    (a progress bar named ``desc`` counts the sentences)."""
    started = time.perf_counter()
    pairs = progress.bar(list(zip(texts, labels)), desc=desc, unit="sentence")
    results = [attack.attack(text, label, seed).to_dict() for text, label in pairs]
    return results, time.perf_counter() - started


@dataclasses.dataclass(frozen=True)
class RecipeUnitConfig(StageConfig):
    """One recipe against one victim at one operating point (a cached unit).

    Attributes:
        victim: the trained model of chapter 1, or a model a stage saved (chapter 5's).
        victim_name: its name in the chapter (``entropy``, ``patience``, ``costeff``, ...).
        policy: the exit policy name.
        policy_value: its threshold (entropy, nats) or patience (layers).
        recipe: an accuracy recipe (``pwws``, ``textfooler``, ``deepwordbug``) or a slowdown
            recipe (``waffle``).
        num_examples: test sentences attacked (:func:`~costeff_same.attacks.sentences.attack_sentences`).
        min_cos_sim: TextFooler's least cosine similarity of a swap to its word (None: the
            recipe's default).
        word_vectors: the word space of TextFooler's or WAFFLE's swaps (None: the recipe's
            default, the counter-fitted vectors).
        query_budget: model evaluations per example (None: unlimited).
        seed: seeds the sentence selection and the attacks' random choices.
        batch_size: texts per victim forward.
    """

    victim: VictimModel
    victim_name: str
    policy: str
    policy_value: float
    recipe: str
    num_examples: int
    min_cos_sim: float | None = None
    word_vectors: str | None = None
    query_budget: int | None = None
    seed: int = 0
    batch_size: int = 64

    def label(self) -> str:
        """``<recipe> on <victim name>``."""
        return f"{self.recipe} on {self.victim_name}"

    def __post_init__(self):
        if self.recipe not in RECIPES + SLOWDOWN_RECIPES:
            raise ConfigError(f"unknown recipe {self.recipe!r}; accepted: {', '.join(RECIPES + SLOWDOWN_RECIPES)}")
        if self.word_vectors is not None and self.word_vectors not in WORD_VECTORS:
            raise ConfigError(f"unknown word_vectors {self.word_vectors!r}; accepted: {', '.join(WORD_VECTORS)}")
        if self.num_examples < 1:
            raise ConfigError(f"num_examples={self.num_examples} must be >= 1")

    @property
    def key(self) -> str:
        """The unit's name in the chapter's record: the recipe, plus its word space when it is not
        the counter-fitted one and its threshold when it is not the paper's 0.5
        (``textfooler``, ``textfooler_minilm``, ``textfooler_minilm_cos0.4``)."""
        key = self.recipe
        if self.word_vectors not in (None, "counter_fitted"):
            key += f"_{self.word_vectors}"
        if self.min_cos_sim is not None and self.min_cos_sim != PAPER_MIN_COS_SIM:
            key += f"_cos{self.min_cos_sim:g}"
        return key

    def options(self) -> dict[str, Any]:
        """The recipe's keyword arguments this unit sets (threshold, word space)."""
        return {k: v for k, v in (("min_cos_sim", self.min_cos_sim), ("word_vectors", self.word_vectors))
                if v is not None}


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
    return no_nan({
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
        "efficiency": efficiency_change(clean[attacked], adv[attacked], depth),
        "efficiency_succeeded": efficiency_change(clean[succeeded], adv[succeeded], depth),
        "intervals": attack_intervals(results, depth),
    })


def attack_intervals(results: list[dict[str, Any]], depth: int) -> dict[str, Any]:
    """95% bootstrap intervals (:mod:`costeff_same.core.statistics`) of an attack's figures.

    Args:
        results: :meth:`AttackResult.to_dict` of every example.
        depth: L.

    Returns:
        ``accuracy_before`` and ``accuracy_after`` (over all examples), ``success_rate``
        (over attacked ones), ``perturbation_rate`` (over successful ones); and, over the
        attacked examples (``attacked``) and over all (``all``): the efficiency-gain
        reduction (clean and adversarial exit layers resampled together), the mean exit
        layers and the efficacies, clean and adversarial. A figure with no example is None.
    """
    status = np.array([r["status"] for r in results])
    attacked, succeeded = status != "skipped", status == "succeeded"
    labels = np.array([r["label"] for r in results])
    clean = np.array([r["original_exit_layer"] for r in results])
    adv = np.array([r["perturbed_exit_layer"] for r in results])

    def share(values, mask=None):
        values = np.asarray(values, dtype=float)[mask if mask is not None else slice(None)]
        return mean_interval(values) if values.size else None

    def efficiency(mask):
        if not mask.any():
            return None
        return {"efficiency_gain_reduction": reduction_interval(clean[mask], adv[mask], depth),
                "mean_exit_layer_clean": mean_interval(clean[mask]), "mean_exit_layer_adv": mean_interval(adv[mask]),
                "efficacy_clean": efficacy_interval(clean[mask], depth),
                "efficacy_adv": efficacy_interval(adv[mask], depth)}

    return {
        "accuracy_before": share(np.array([r["original_prediction"] for r in results]) == labels),
        "accuracy_after": share(np.array([r["perturbed_prediction"] for r in results]) == labels),
        "success_rate": share(succeeded, attacked),
        "perturbation_rate": share([r["perturbation_rate"] for r in results], succeeded),
        "attacked": efficiency(attacked), "all": efficiency(np.ones(len(results), dtype=bool)),
    }


def meaning(results: list[dict[str, Any]], encoder: str = "use") -> dict[str, Any]:
    """How well an attack's texts keep their meaning, with 95% bootstrap intervals.

    Args:
        results: :meth:`AttackResult.to_dict` of every example.
        encoder: the sentence encoder (``use``: the Universal Sentence Encoder port).

    Returns:
        ``similarity``: cosine similarity of each changed text (a word or more changed) to its
        original under ``encoder``; ``label_flip_rate``: share of the attacked examples whose
        served prediction changed (what an accuracy attack wants; a slowdown attack's side
        effect); ``changed``: the texts the first is over. A figure with no example is None.
    """
    attacked = [r for r in results if r["status"] != "skipped"]
    changed = [r for r in attacked if r["words_changed"] > 0]
    similarity = None
    if changed:
        embed = sentence_encoder(encoder)
        a, b = embed([r["original_text"] for r in changed]), embed([r["perturbed_text"] for r in changed])
        similarity = mean_interval((a * b).sum(-1).clamp(-1.0, 1.0).numpy())
    flips = [float(r["perturbed_prediction"] != r["original_prediction"]) for r in attacked]
    return no_nan({"encoder": encoder, "changed": len(changed), "similarity": similarity,
                   "label_flip_rate": mean_interval(np.array(flips)) if flips else None})


@stage("recipe_attack")
def _run_recipe_unit(cfg: RecipeUnitConfig, workdir: Path) -> dict[str, Any]:
    victim = load_victim(cfg.victim, cfg.policy, cfg.policy_value, cfg.batch_size)
    attack = build_recipe(cfg.recipe, victim, query_budget=cfg.query_budget, **cfg.options())
    texts, labels, indices = attack_sentences(cfg.victim.data, cfg.num_examples, cfg.seed, who="the accuracy attacks")
    results, seconds = attack_all(attack, texts, labels, cfg.seed, desc=f"attack {cfg.label()}")
    return {
        "victim": cfg.victim_name, "recipe": cfg.recipe, "key": cfg.key, "min_cos_sim": cfg.min_cos_sim,
        "word_vectors": cfg.word_vectors,
        "policy": cfg.policy, "policy_value": cfg.policy_value,
        "num_layers": victim.num_layers, "attack": attack.describe(), "seconds": seconds,
        "queries": victim.num_queries, "cache_hits": victim.num_cache_hits,
        "summary": summarize(results, victim.num_layers), "meaning": meaning(results),
        "results": results, "test_indices": indices,
    }


def run_recipe_unit(cfg: RecipeUnitConfig) -> dict[str, Any]:
    """One (victim, recipe) unit's record (cached)."""
    return load_or_run("recipe_attack", cfg, _run_recipe_unit, seed=cfg.seed)


def candidates_per_word(data: DataConfig, min_cos_sim: float, word_vectors: str = "counter_fitted",
                        sentences: int = 200, seed: int = 0) -> float:
    """Mean TextFooler candidates per attackable word of the attacked test sentences (:func:`attack_sentences`).

    The neighbours (of at most 50) in ``word_vectors`` with cosine >= ``min_cos_sim``,
    averaged over the words the recipe may touch (not stopwords, at least 2 characters).
    """
    swap = neighbour_swap(word_vectors, min_cos_sim=min_cos_sim)
    texts = [AttackedText(t) for t in attack_sentences(data, sentences, seed, who="TextFooler")[0]]
    words = [t.words[i] for t in texts
             for i in StopwordModification().allowed_indices(t) & MinWordLength(2).allowed_indices(t)]
    return sum(len(swap.neighbours(w)) for w in words) / max(1, len(words))
