"""SAME's attack units: one SAME variant against one victim at one operating point, cached.

SAME (Chen et al., 2023; :mod:`costeff_same.attacks.same_chen_2023`) with its settings
(:class:`SameSettings`), the ablations that switch one part off (:data:`ABLATIONS`), the
other variants (:data:`VARIANTS`: held to meaning, smaller word budgets), and the
unit (:class:`SameUnitConfig`, :func:`run_same_unit`), which also stores the texts it sent
to the model (``work/candidates.jsonl.gz``, :func:`stored_candidates`:
``benchmarks/same_scoring.py`` replays them).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from costeff_same.attacks.same_chen_2023 import build
from costeff_same.attacks.sentences import attack_sentences
from costeff_same.attacks.units import attack_all, load_victim, meaning, summarize
from costeff_same.core.metrics import efficiency_change
from costeff_same.engine.results import load_or_run, no_nan, stage
from costeff_same.foundations.config import ConfigError, StageConfig
from costeff_same.zoo import VictimModel

#: ablation name -> the settings it changes (Chen et al., 2023, section 5; each on ``ablation_examples`` sentences)
ABLATIONS: dict[str, dict[str, Any]] = {
    "uniform_only": {"lam": 0.0},             # DeepSloth-style: only the uniform term
    "cross_only": {"lam": 1.0},               # only the cross-prediction term
    "no_dynamic_weights": {"dynamic_weights": False},
    "word_only": {"char_level": False},
    "char_only": {"word_level": False},
    "reference_quirks": {"reference_quirks": True},
    "no_tie_break": {"tie_break": False},     # the paper's ranking (exit layer alone)
}
#: SAME's word budget curve: ``budget_<k>`` changes at most ``k`` words (the paper: max(3, 10%))
BUDGETS = (1, 2, 3)
#: variant name -> the settings it changes: the ablations, the constrained variant and the budgets
VARIANTS: dict[str, dict[str, Any]] = {
    **ABLATIONS,
    "constrained": {"constrained": True},     # held to meaning (not in the paper)
    **{f"budget_{k}": {"max_rate": 0.0, "min_words": k} for k in BUDGETS},
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
        constrained: the constrained variant (near-neighbour swaps, a sentence-similarity
            floor; not in the paper).
        min_similarity: its least angular similarity to the original (Universal Sentence Encoder).
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
    constrained: bool = False
    min_similarity: float = 0.84

    def __post_init__(self):
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"lam={self.lam} must be in [0, 1]")
        if not (self.word_level or self.char_level):
            raise ConfigError("word_level and char_level cannot both be false")
        for key in ("beam_width", "max_iterations", "top_n", "top_k"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be >= 1")
        if not 0 <= self.max_rate <= 1 or self.min_words < 0 or (self.max_rate == 0 and self.min_words == 0):
            raise ConfigError(f"max_rate={self.max_rate} must be in [0, 1] (0: a fixed budget of min_words) and "
                              f"min_words={self.min_words} >= 0, not both 0")

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
        victim: the trained model of chapter 1, or a model a stage saved (chapter 5's).
        victim_name: its name in the chapter (``entropy``, ``patience``, ``costeff``, ...).
        policy: the exit policy name.
        policy_value: its threshold (entropy, nats) or patience (layers).
        variant: ``same`` or one of :data:`VARIANTS` (the ablations, ``constrained``, ``budget_<k>``).
        settings: the attack's settings (the variant's changes applied).
        num_examples: sentences attacked (the first of the seeded order).
        seed: seeds the sentence order and the attack's random choices.
        batch_size: texts per victim forward.
        store_candidates: keep the texts sent to the model (for ``benchmarks/same_scoring.py``).
    """

    victim: VictimModel
    victim_name: str
    policy: str
    policy_value: float
    variant: str
    settings: SameSettings
    num_examples: int
    seed: int = 0
    batch_size: int = 64
    store_candidates: bool = True

    def label(self) -> str:
        """``<variant> on <victim name>``."""
        return f"{self.variant} on {self.victim_name}"

    def __post_init__(self):
        if self.variant != "same" and self.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {self.variant!r}; accepted: same, {', '.join(VARIANTS)}")
        if self.num_examples < 1:
            raise ConfigError(f"num_examples={self.num_examples} must be >= 1")


@stage("same_attack")
def _run_same_unit(cfg: SameUnitConfig, workdir: Path) -> dict[str, Any]:
    victim = load_victim(cfg.victim, cfg.policy, cfg.policy_value, cfg.batch_size, recording=cfg.store_candidates)
    attack = build(victim, **cfg.settings.build_kwargs())
    texts, labels, indices = attack_sentences(cfg.victim.data, cfg.num_examples, cfg.seed, who="SAME here")
    results, seconds = attack_all(attack, texts, labels, cfg.seed, desc=f"attack {cfg.label()}")
    if cfg.store_candidates:
        with gzip.open(workdir / "candidates.jsonl.gz", "wt") as handle:
            for all_exits, batch in victim.log:
                handle.write(json.dumps({"all_exits": all_exits, "texts": batch}) + "\n")
    depth = victim.num_layers
    return {
        "victim": cfg.victim_name, "variant": cfg.variant, "policy": cfg.policy, "policy_value": cfg.policy_value,
        "num_layers": depth, "attack": repr(attack), "seconds": seconds, "queries": victim.num_queries,
        "cache_hits": victim.num_cache_hits, "gradient_calls": attack.transformation.gradients.calls,
        "summary": same_summary(results, depth, cfg.settings), "meaning": meaning(results),
        "results": results, "test_indices": indices,
    }


def run_same_unit(cfg: SameUnitConfig) -> dict[str, Any]:
    """One (victim, variant) unit's record (cached)."""
    return load_or_run("same_attack", cfg, _run_same_unit, seed=cfg.seed)


def stored_candidates(unit_record: dict[str, Any]) -> list[tuple[bool, list[str]]]:
    """The batches of texts a unit sent to the model, in order (``(all_exits, texts)`` pairs).

    Raises:
        FileNotFoundError: when the unit did not store them.
    """
    path = Path(unit_record["_entry"]) / "work" / "candidates.jsonl.gz"
    with gzip.open(path, "rt") as handle:
        return [(row["all_exits"], row["texts"]) for row in map(json.loads, handle)]


# -- figures ---------------------------------------------------------------------------------

def same_summary(results: list[dict[str, Any]], depth: int, settings: SameSettings) -> dict[str, Any]:
    """SAME's figures for one (victim, variant) from its per-sentence results.

    Args:
        results: :meth:`AttackResult.to_dict` of every sentence.
        depth: L.
        settings: the attack's settings (for the word budget).

    Returns:
        :func:`costeff_same.attacks.units.summarize`'s figures (accuracy, success rate,
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
    return no_nan({
        **base,
        "efficiency_all": efficiency_change(clean, adv, depth),
        "perturbation_rate_attacked": float(rates[attacked].mean()) if attacked.any() else float("nan"),
        "words_changed_attacked": float(changed[attacked].mean()) if attacked.any() else float("nan"),
        "max_words_changed": int(changed.max(initial=0)),
        "budget_violations": int((changed > budgets).sum()),
        "exit_shift": [int(b) - int(a) for a, b in zip(clean, adv)],
    })
