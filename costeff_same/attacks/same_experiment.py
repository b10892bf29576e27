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

The sentences are a seeded shuffle of chapter 1's test split (the split's stored order
groups the labels, so its first sentences all share one label); the ablations use the
first ``ablation_examples`` of the same order.

Every (victim, variant) is a cached unit (``same_attack-<hash>``) that also stores the
texts it sent to the model (``work/candidates.jsonl.gz``: ``benchmarks/same_scoring.py``
replays them); :func:`run_same` gathers the units, times inference and runs the transfer
into one record (``same-<hash>``).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import (
    ConfigError,
    DataConfig,
    StageConfig,
    TrainedModelConfig,
    check_parameters,
    load_profile,
)
from ..exits import ExitPolicy, early_exit_forward, simulate_exits
from ..experiments import VICTIMS, MultiExitExperimentConfig, run_multi_exit
from ..metrics import efficiency_gain_reduction, exit_stats
from ..results import is_cached, load_or_run, load_result
from .experiment import COMMON_KEYS, _no_nan, summarize, victims_config
from .victim import MultiExitVictim

#: ablation name -> the settings it changes (papers.md section 2; each on ``ablation_examples`` sentences)
ABLATIONS: dict[str, dict[str, Any]] = {
    "uniform_only": {"lam": 0.0},             # DeepSloth-style: only the uniform term
    "cross_only": {"lam": 1.0},               # only the cross-prediction term
    "no_dynamic_weights": {"dynamic_weights": False},
    "word_only": {"char_level": False},
    "char_only": {"word_level": False},
    "reference_quirks": {"reference_quirks": True},
}

ABLATION_LABELS = {
    "same": "SAME (ours, fixed)", "uniform_only": "uniform term only (DeepSloth-style)",
    "cross_only": "cross-prediction term only", "no_dynamic_weights": "no dynamic weights",
    "word_only": "word level only", "char_only": "character level only",
    "reference_quirks": "reference quirks on",
}


@dataclasses.dataclass(frozen=True)
class SameSettings(StageConfig):
    """The attack's settings (:func:`costeff_same.attacks.same_chen_2023.build`'s arguments).

    Attributes:
        lam: lambda of ``lambda * L_X + (1 - lambda) * L_U`` (0.8).
        dynamic_weights: SAME's dynamic exit weights.
        word_level: gradient-guided word swaps.
        char_level: character mutations.
        reference_quirks: the reference code's behaviour (accumulated gradient, last beam's
            best, no multi-piece swaps).
        beam_width: beam width (5).
        max_iterations: beam-search iterations (10).
        top_n: candidates per level and expansion (100).
        top_k: words mutated at the character level (10).
        max_rate: changed words at most, as a fraction of the words (0.1) ...
        min_words: ... and never fewer than this (3).
        query_budget: model evaluations per sentence (None: unlimited, as in the paper).
        chunk_size: candidates per scoring batch (scoring stops after the first batch that
            holds a success; the result does not depend on it).
        tie_break: rank candidates that exit at the same layer by the entropy of that exit
            (a departure from the paper, which ranks by exit layer alone).
    """

    lam: float = 0.8
    dynamic_weights: bool = True
    word_level: bool = True
    char_level: bool = True
    reference_quirks: bool = False
    beam_width: int = 5
    max_iterations: int = 10
    top_n: int = 100
    top_k: int = 10
    max_rate: float = 0.1
    min_words: int = 3
    query_budget: int | None = None
    chunk_size: int | None = 32
    tie_break: bool = True

    def __post_init__(self):
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"lam={self.lam} must be in [0, 1]")
        if not (self.word_level or self.char_level):
            raise ConfigError("word_level and char_level cannot both be false")
        for key in ("beam_width", "max_iterations", "top_n", "top_k"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be >= 1")
        if not 0 < self.max_rate <= 1 or self.min_words < 0:
            raise ConfigError(f"max_rate={self.max_rate} must be in (0, 1] and min_words={self.min_words} >= 0")

    def budget(self, num_words: int) -> int:
        """Words a sentence of ``num_words`` words may have changed."""
        return max(self.min_words, math.ceil(self.max_rate * num_words))

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~costeff_same.attacks.same_chen_2023.build`."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SameUnitConfig(StageConfig):
    """One SAME variant against one victim at one operating point (a cached unit).

    Attributes:
        victim: the trained model of chapter 1.
        victim_name: ``entropy`` or ``patience``.
        policy: the exit policy name.
        policy_value: its threshold (entropy, nats) or patience (layers).
        variant: ``same`` or an ablation of :data:`ABLATIONS`.
        settings: the attack's settings (the variant's changes applied).
        num_examples: sentences attacked (the first of the seeded order).
        seed: seeds the sentence order and the attack's random choices.
        batch_size: texts per victim forward.
        store_candidates: keep the texts sent to the model (for ``benchmarks/same_scoring.py``).
    """

    victim: TrainedModelConfig
    victim_name: str
    policy: str
    policy_value: float
    variant: str
    settings: SameSettings
    num_examples: int
    seed: int = 0
    batch_size: int = 64
    store_candidates: bool = True

    def __post_init__(self):
        if self.variant != "same" and self.variant not in ABLATIONS:
            raise ConfigError(f"unknown variant {self.variant!r}; accepted: same, {', '.join(ABLATIONS)}")
        if self.num_examples < 1:
            raise ConfigError(f"num_examples={self.num_examples} must be >= 1")


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
            if name not in VICTIMS:
                raise ConfigError(f"unknown victim {name!r}; accepted: {', '.join(VICTIMS)}")
        for name in self.ablations:
            if name not in ABLATIONS:
                raise ConfigError(f"unknown ablation {name!r}; accepted: {', '.join(ABLATIONS)}")
        if self.num_examples < 1 or self.ablation_examples < 0 or self.timing_repeats < 1:
            raise ConfigError(f"num_examples={self.num_examples} must be >= 1, ablation_examples="
                              f"{self.ablation_examples} >= 0 and timing_repeats={self.timing_repeats} >= 1")

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
CHAPTER4_PARAMETERS = {
    "victim_profile": str, "victims": list, "num_examples": int, "ablation_examples": int, "ablations": list,
    "seed": int, "batch_size": int, "timing_batch_size": int, "timing_repeats": int, "transfer": bool,
    **{k: object for k in SETTING_KEYS}, **{k: object for k in COMMON_KEYS},
}


def same_config(**params: Any) -> SameConfig:
    """Chapter 4's config from the notebook's flat parameters.

    ``victim_profile`` names the profile whose chapter-1 victims are attacked. The profile's
    ``common`` keys (task, backbone, max_length, data_file) are accepted and must agree with
    those victims'. The attack settings (``lam``, ``beam_width``, ...) are flat parameters.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed), a value of the
            wrong type, or a common key that disagrees with chapter 1's.
    """
    check_parameters(params, CHAPTER4_PARAMETERS)
    p = dict(params)
    victims = victims_config(p, "chapter 4")
    settings = SameSettings.from_dict({k: p.pop(k) for k in SETTING_KEYS if k in p})
    return SameConfig.from_dict({"multi_exit": victims, "settings": settings, **p})


# -- sentences -------------------------------------------------------------------------------

def same_examples(data: DataConfig, n: int, seed: int) -> tuple[list[str], list[int]]:
    """``n`` sentences of chapter 1's test split, in a seeded shuffle of it.

    The split itself (``subsample(test, eval_size, seed)``, as chapter 1 prepares it) keeps
    the data file's order, which groups the labels; the shuffle gives both labels.

    Raises:
        ConfigError: for a sentence-pair task.
    """
    from ..data import load_task, subsample

    task = load_task(data.task, data.seed, data.data_file)
    if task.has_pairs:
        raise ConfigError(f"task {task.name!r} has sentence pairs; SAME here takes single sentences")
    test = subsample(task.splits["test"], data.eval_size, data.seed)
    order = np.random.default_rng(seed).permutation(len(test))[:n]
    return [test["text"][int(i)] for i in order], [int(test["label"][int(i)]) for i in order]


# -- one unit --------------------------------------------------------------------------------

class RecordingVictim(MultiExitVictim):
    """A victim that also keeps every batch of texts it sends to the model (cache misses).

    Attributes:
        log: one list of texts per model evaluation call, with the path (``all_exits``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[tuple[bool, list[str]]] = []

    def _run(self, texts, all_exits):
        self.log.append((all_exits, list(texts)))
        return super()._run(texts, all_exits)


def load_victim(unit: SameUnitConfig, recording: bool = False) -> MultiExitVictim:
    """The unit's victim: chapter 1's cached model behind its policy at ``policy_value``."""
    from ..backbones import load_tokenizer
    from ..experiments import trained_model

    model, _ = trained_model(unit.victim)
    tokenizer = load_tokenizer(unit.victim.train.backbone)
    cls = RecordingVictim if recording else MultiExitVictim
    return cls(model, tokenizer, ExitPolicy(unit.policy, unit.policy_value), max_length=unit.victim.data.max_length,
               batch_size=unit.batch_size)


def _run_unit(cfg: SameUnitConfig, workdir: Path) -> dict[str, Any]:
    from ..training import set_threads
    from .same_chen_2023 import build

    set_threads()
    victim = load_victim(cfg, recording=cfg.store_candidates)
    attack = build(victim, **cfg.settings.build_kwargs())
    texts, labels = same_examples(cfg.victim.data, cfg.num_examples, cfg.seed)
    started = time.perf_counter()
    results = [attack.attack(text, label, cfg.seed).to_dict() for text, label in zip(texts, labels)]
    seconds = time.perf_counter() - started
    if cfg.store_candidates:
        with gzip.open(workdir / "candidates.jsonl.gz", "wt") as handle:
            for all_exits, batch in victim.log:
                handle.write(json.dumps({"all_exits": all_exits, "texts": batch}) + "\n")
    depth = victim.num_layers
    return {
        "victim": cfg.victim_name, "variant": cfg.variant, "policy": cfg.policy, "policy_value": cfg.policy_value,
        "num_layers": depth, "attack": repr(attack), "seconds": seconds, "queries": victim.num_queries,
        "cache_hits": victim.num_cache_hits, "gradient_calls": attack.transformation.gradients.calls,
        "summary": same_summary(results, depth, cfg.settings), "results": results,
    }


def run_unit(cfg: SameUnitConfig) -> dict[str, Any]:
    """One (victim, variant) unit's record (cached)."""
    return load_or_run("same_attack", cfg, _run_unit, seed=cfg.seed)


def stored_candidates(unit_record: dict[str, Any]) -> list[tuple[bool, list[str]]]:
    """The batches of texts a unit sent to the model, in order (``(all_exits, texts)`` pairs).

    Raises:
        FileNotFoundError: when the unit did not store them.
    """
    path = Path(unit_record["_entry"]) / "work" / "candidates.jsonl.gz"
    with gzip.open(path, "rt") as handle:
        return [(row["all_exits"], row["texts"]) for row in map(json.loads, handle)]


# -- figures ---------------------------------------------------------------------------------

def _stats(layers: np.ndarray, depth: int) -> dict[str, Any]:
    s = exit_stats(layers, depth)
    return {"mean_exit_layer": s["mean_exit_layer"], "speedup": s["speedup"],
            "efficiency_gain": s["efficiency_gain"], "histogram": s["histogram"]}


def efficiency(clean: np.ndarray, adv: np.ndarray, depth: int) -> dict[str, Any]:
    """Before/after efficiency of the same sentences: ``(N,)`` clean and adversarial exit layers."""
    clean, adv = np.asarray(clean), np.asarray(adv)
    if len(clean) == 0:
        return {"examples": 0}
    before, after = _stats(clean, depth), _stats(adv, depth)
    return {
        "examples": len(clean),
        **{f"{k}_clean": v for k, v in before.items()}, **{f"{k}_adv": v for k, v in after.items()},
        "efficiency_gain_reduction": efficiency_gain_reduction(before["efficiency_gain"], after["efficiency_gain"]),
        "later": float(np.mean(adv > clean)), "earlier": float(np.mean(adv < clean)),
        "mean_shift": float(np.mean(adv - clean)),
    }


def same_summary(results: list[dict[str, Any]], depth: int, settings: SameSettings) -> dict[str, Any]:
    """SAME's figures for one (victim, variant) from its per-sentence results.

    Args:
        results: :meth:`AttackResult.to_dict` of every sentence.
        depth: L.
        settings: the attack's settings (for the word budget).

    Returns:
        :func:`costeff_same.attacks.experiment.summarize`'s figures (accuracy, success rate,
        perturbation rate over successful attacks, queries and seconds per attacked sentence,
        efficiency over attacked and over successful sentences), plus ``efficiency_all``
        (over all sentences, skipped ones at their clean exit), ``perturbation_rate_attacked``,
        ``max_words_changed`` and ``budget_violations`` (sentences with more words changed
        than ``max(min_words, ceil(max_rate * words))``: 0 unless a constraint is broken).
    """
    base = summarize(results, depth)
    status = np.array([r["status"] for r in results])
    attacked = status != "skipped"
    clean = np.array([r["original_exit_layer"] for r in results])
    adv = np.array([r["perturbed_exit_layer"] for r in results])
    rates = np.array([r["perturbation_rate"] for r in results], dtype=float)
    changed = np.array([r["words_changed"] for r in results])
    budgets = np.array([settings.budget(r["num_words"]) for r in results])
    return _no_nan({
        **base,
        "efficiency_all": efficiency(clean, adv, depth),
        "perturbation_rate_attacked": float(rates[attacked].mean()) if attacked.any() else float("nan"),
        "words_changed_attacked": float(changed[attacked].mean()) if attacked.any() else float("nan"),
        "max_words_changed": int(changed.max(initial=0)),
        "budget_violations": int((changed > budgets).sum()),
        "exit_shift": [int(b) - int(a) for a, b in zip(clean, adv)],
    })


# -- chapter 4 -------------------------------------------------------------------------------

@torch.inference_mode()
def exit_layers(model, tokenizer, texts: list[str], policy: ExitPolicy, max_length: int, batch_size: int,
                early_exit: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` exit layers and predictions of ``texts`` by batched early exit or a full forward."""
    layers, preds = np.zeros(len(texts), dtype=np.int64), np.zeros(len(texts), dtype=np.int64)
    for idx, batch in _batches(tokenizer, texts, max_length, batch_size):
        if early_exit:
            out = early_exit_forward(model, batch["input_ids"], batch["attention_mask"], policy,
                                     batch.get("token_type_ids"))
            layers[idx], preds[idx] = out.exit_layer.numpy(), out.logits.argmax(-1).numpy()
        else:
            decision = simulate_exits(model(**batch).exit_logits, policy)
            layers[idx], preds[idx] = decision.exit_layer, decision.predictions
    return layers, preds


def _batches(tokenizer, texts: list[str], max_length: int, batch_size: int):
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    out = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        out.append((idx, dict(tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length,
                                        padding="longest", return_tensors="pt"))))
    return out


@torch.inference_mode()
def time_texts(model, tokenizer, texts: list[str], policy: ExitPolicy | None, max_length: int, batch_size: int,
               repeats: int) -> dict[str, float]:
    """Measured wall-clock of inference over ``texts`` (batches by length, tokenised beforehand).

    Args:
        policy: None runs every layer; otherwise batched early exit (rows leave at their exit).
        repeats: timed passes (after one warm-up); the fastest counts.

    Returns:
        ``{"seconds", "ms_per_example", "examples"}`` (seconds for one pass over all texts).
    """
    batches = _batches(tokenizer, texts, max_length, batch_size)

    def one_pass():
        for _, b in batches:
            if policy is None:
                model(**b)
            else:
                early_exit_forward(model, b["input_ids"], b["attention_mask"], policy, b.get("token_type_ids"))

    one_pass()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        one_pass()
        best = min(best, time.perf_counter() - start)
    return {"seconds": best, "ms_per_example": 1000 * best / max(1, len(texts)), "examples": len(texts)}


def _adversarial_texts(unit: dict[str, Any]) -> tuple[list[str], list[str], np.ndarray]:
    clean = [r["original_text"] for r in unit["results"]]
    adv = [r["perturbed_text"] for r in unit["results"]]
    return clean, adv, np.array([r["label"] for r in unit["results"]])


def _run_same(cfg: SameConfig, workdir: Path) -> dict[str, Any]:
    from ..backbones import load_tokenizer
    from ..experiments import trained_model
    from ..training import set_threads

    set_threads()
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
        value = chapter1["victims"][name]["operating_point"]["value"]
        policies[name] = ExitPolicy(name, value)
        models[name], _ = trained_model(cfg.multi_exit.victim(name))
        main = run_unit(cfg.unit(name, value))
        mains[name] = main
        clean, adv, labels = _adversarial_texts(main)
        model, policy = models[name], policies[name]
        # wall-clock of the deployed (batched early-exit) model on the clean and adversarial sets
        timing = {
            "clean": time_texts(model, tokenizer, clean, policy, max_length, cfg.timing_batch_size,
                                cfg.timing_repeats),
            "adversarial": time_texts(model, tokenizer, adv, policy, max_length, cfg.timing_batch_size,
                                      cfg.timing_repeats),
            "all_layers": time_texts(model, tokenizer, clean, None, max_length, cfg.timing_batch_size,
                                     cfg.timing_repeats),
        }
        timing["slowdown"] = timing["adversarial"]["seconds"] / timing["clean"]["seconds"]
        # the fast scoring path gives a full forward's exit layers (here on the final texts)
        agreement = {}
        for key, texts in (("clean", clean), ("adversarial", adv)):
            a = exit_layers(model, tokenizer, texts, policy, max_length, cfg.batch_size, early_exit=True)
            b = exit_layers(model, tokenizer, texts, policy, max_length, cfg.batch_size, early_exit=False)
            agreement[key] = {"exit_layer": float(np.mean(a[0] == b[0])), "prediction": float(np.mean(a[1] == b[1]))}
        ablations = {}
        if cfg.ablation_examples:
            n = min(cfg.ablation_examples, cfg.num_examples)
            ablations["same"] = {"summary": same_summary(main["results"][:n], depth, cfg.settings),
                                 "seconds": float(sum(r["seconds"] for r in main["results"][:n]))}
            for variant in cfg.ablations:
                unit = run_unit(cfg.unit(name, value, variant, n))
                ablations[variant] = {"summary": unit["summary"], "seconds": unit["seconds"],
                                      "attack": unit["attack"]}
        main = dict(main)
        main.pop("_entry", None)
        out["victims"][name] = {"policy": name, "policy_value": value,
                                "test_accuracy": chapter1["victims"][name]["operating_point"]["metric"],
                                "main": main, "timing": timing, "scoring_agreement": agreement,
                                "ablations": ablations}
    if cfg.transfer and len(cfg.victims) == 2:
        out["transfer"] = {}
        for source, target in (cfg.victims, cfg.victims[::-1]):
            clean, adv, labels = _adversarial_texts(mains[source])
            attacked = np.array([r["status"] != "skipped" for r in mains[source]["results"]])
            c_layers, c_preds = exit_layers(models[target], tokenizer, clean, policies[target], max_length,
                                            cfg.batch_size)
            a_layers, a_preds = exit_layers(models[target], tokenizer, adv, policies[target], max_length,
                                            cfg.batch_size)
            out["transfer"][f"{source}->{target}"] = {
                "source": source, "target": target,
                "efficiency": efficiency(c_layers, a_layers, depth),
                "efficiency_attacked": efficiency(c_layers[attacked], a_layers[attacked], depth),
                "accuracy_before": float(np.mean(c_preds == labels)),
                "accuracy_after": float(np.mean(a_preds == labels)),
                "success_rate_on_target": float(np.mean(a_layers[attacked] == depth)) if attacked.any() else None,
            }
    out["seconds"] = time.perf_counter() - started
    return _no_nan(out)


def run_same(cfg: SameConfig) -> dict[str, Any]:
    """Chapter 4's record (cached; each (victim, variant) unit is cached on its own too)."""
    return load_or_run("same", cfg, _run_same, seed=cfg.seed)


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
        "wallclock_clean_seconds": v["timing"]["clean"]["seconds"],
        "wallclock_adversarial_seconds": v["timing"]["adversarial"]["seconds"],
        "wallclock_slowdown": v["timing"]["slowdown"],
    }


def same_summary_section(record: dict[str, Any]) -> dict[str, Any]:
    """The ``same`` section of ``costeff-same summary --json``: one record per victim."""
    victims = {name: victim_row(name, v) for name, v in record["victims"].items()}
    reductions = [r["efficiency_gain_reduction"] for r in victims.values() if r["efficiency_gain_reduction"] is not None]
    return {"task": record["task"], "backbone": record["backbone"], "num_layers": record["num_layers"],
            "num_examples": record["num_examples"], "ablation_examples": record["ablation_examples"],
            "mean_efficiency_gain_reduction": float(np.mean(reductions)) if reductions else None,
            "seconds": record["seconds"], **victims}


def accuracy_attack_rows(profile: str) -> list[dict[str, Any]] | None:
    """Chapter 3's (victim, recipe) figures under ``profile``, from the cache only (None: not run).

    Reads the chapter record when it is cached, else whichever (victim, recipe) units are.
    """
    from .experiment import accuracy_attacks_config, accuracy_attacks_summary, unit_row
    from .experiment import run_unit as run_accuracy_unit

    params = load_profile(profile).get("03_accuracy_attacks")
    if params is None:
        return None
    cfg = accuracy_attacks_config(**params)
    if is_cached("accuracy_attacks", cfg):
        return accuracy_attacks_summary(load_result("accuracy_attacks", cfg))["records"]
    if not is_cached("multi_exit", cfg.multi_exit):
        return None
    chapter1 = load_result("multi_exit", cfg.multi_exit)
    rows = []
    for name in cfg.victims:
        value = chapter1["victims"][name]["operating_point"]["value"]
        for recipe in cfg.recipes:
            unit = cfg.unit(name, recipe, value)
            if is_cached("accuracy_attack", unit):
                rows.append(unit_row(name, value, run_accuracy_unit(unit)))
    return rows or None


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
        unit = run_unit(cfg.unit(name, value))
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
