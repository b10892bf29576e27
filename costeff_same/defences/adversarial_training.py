"""Training defence: slowdown-adversarial fine-tuning of a multi-exit victim.

Adversarial training (Goodfellow et al., 2015) trains a model on the
attack's own examples. DeepSloth (Hong et al., 2021) and WAFFLE (Coalson et al., 2023)
report that it gives little protection to early exit; this is the project's measurement
of it against SAME (Chen et al., 2023). Each round:

1. SAME (chapter 4's settings) attacks ``examples_per_round`` training sentences against
   the **current** model (round 1: the undefended victim, a cached
   :mod:`costeff_same.defences.units` unit that the guard's detector learns from too;
   later rounds: the model of the previous round, the next slice of the training order);
2. the model is fine-tuned on every round's adversarial texts so far, each with its
   sentence's **original label**, mixed with ``clean_examples`` clean training sentences,
   under the ``joint`` regime (every exit's cross-entropy, unweighted).

Why the original label at every exit: SAME works by making the early exits unsure (or
disagree); training each exit to be sure of the true label of the perturbed text,
which the perturbation was meant not to change, is what makes those exits fire again.
The alternative targets are worse: the label the last exit serves on the adversarial
text is wrong where the attack also flipped it, and the uniform distribution would
teach the exits the attacker's goal. The clean sentences keep clean accuracy and the
clean exits' confidence. Only training sentences are used; a test sentence never enters
(the record lists every sentence trained on, and the tests check it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from costeff_same.attacks.same_units import SameSettings
from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.encoding import Encoded
from costeff_same.defences.systems import DefenceConfig, training_sentences
from costeff_same.defences.units import DefenceAttackUnitConfig, attack_system, run_defence_attack
from costeff_same.engine.results import load_or_run, stage
from costeff_same.engine.training import train
from costeff_same.foundations.config import ConfigError, StageConfig, TrainConfig, TrainedModelConfig
from costeff_same.zoo import save_model, trained_model


@dataclasses.dataclass(frozen=True)
class AdversarialTrainingConfig(StageConfig):
    """Slowdown-adversarial fine-tuning of one of chapter 1's victims.

    Attributes:
        victim: the victim's trained model.
        victim_name: its name (``entropy``, ``patience``).
        policy: its exit policy; ``policy_value`` its operating point (kept after training).
        settings: SAME's settings (chapter 4's).
        rounds: attack-and-train rounds (2).
        examples_per_round: training sentences attacked per round.
        clean_examples: clean training sentences in every round's mix.
        epochs: epochs over each round's mix.
        learning_rate: peak learning rate (warm-up, then linear decay).
        batch_size: examples per step.
        attack_batch_size: texts per victim forward while attacking.
        seed: seeds the sentence order, the attacks and the training.
    """

    victim: TrainedModelConfig
    victim_name: str
    policy: str
    policy_value: float
    settings: SameSettings
    rounds: int = 2
    examples_per_round: int = 64
    clean_examples: int = 512
    epochs: int = 1
    learning_rate: float = 2e-5
    batch_size: int = 32
    attack_batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        for key in ("rounds", "examples_per_round", "clean_examples", "epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be >= 1")

    def round_unit(self, r: int) -> DefenceAttackUnitConfig:
        """The attack of round ``r`` (0-based) on the training sentences of its slice."""
        return DefenceAttackUnitConfig(victim=self.victim, victim_name=self.victim_name, policy=self.policy,
                                       policy_value=self.policy_value, defence=DefenceConfig("none"),
                                       settings=self.settings, split="train", offset=r * self.examples_per_round,
                                       num_examples=self.examples_per_round, seed=self.seed,
                                       batch_size=self.attack_batch_size)

    def clean_offset(self) -> int:
        """Where the clean sentences start in the training order (after every round's slice)."""
        return self.rounds * self.examples_per_round

    def train_config(self, r: int) -> TrainConfig:
        """Round ``r``'s fine-tuning (joint regime, the victim's backbone, pooling and precision)."""
        base = self.victim.train
        return TrainConfig(backbone=base.backbone, exit_style=base.exit_style, exit_pooling=base.exit_pooling,
                           regime="joint", epochs=self.epochs, batch_size=self.batch_size,
                           learning_rate=self.learning_rate, seed=self.seed * 100 + r, precision=base.precision)


def adversarial_texts(results: list[dict[str, Any]]) -> tuple[list[str], list[int], list[str]]:
    """The perturbed texts of the attacked (not skipped) sentences, their original labels and sentences."""
    kept = [r for r in results if r["status"] != "skipped"]
    return [r["perturbed_text"] for r in kept], [int(r["label"]) for r in kept], [r["original_text"] for r in kept]


@stage("adversarial_training")
def _run_adversarial_training(cfg: AdversarialTrainingConfig, workdir: Path) -> dict[str, Any]:
    model, _ = trained_model(cfg.victim)
    tokenizer = load_tokenizer(cfg.victim.train.backbone)
    data = cfg.victim.data
    clean_texts, clean_labels = training_sentences(data, cfg.clean_examples, cfg.clean_offset(), cfg.seed)
    adv_texts, adv_labels, sources, rounds = [], [], [], []
    for r in range(cfg.rounds):
        unit = cfg.round_unit(r)
        if r == 0:
            attacked = run_defence_attack(unit)
        else:
            texts, labels = training_sentences(data, unit.num_examples, unit.offset, cfg.seed)
            attacked = attack_system(model.eval(), unit, texts, labels)
        texts, labels, originals = adversarial_texts(attacked["results"])
        adv_texts += texts
        adv_labels += labels
        sources += originals
        mix = Encoded.from_texts(adv_texts + clean_texts, adv_labels + clean_labels, tokenizer, data.max_length)
        history = train(model, mix, cfg.train_config(r), workdir / f"round{r + 1}")
        rounds.append({"round": r + 1, "attack": attacked["summary"], "adversarial_texts": len(texts),
                       "training_examples": len(mix), "history": history})
    save_model(model.eval(), workdir / "model", tokenizer)
    return {"victim": cfg.victim_name, "rounds": rounds, "trained_sentences": sources + clean_texts,
            "adversarial_training_texts": adv_texts}


def run_adversarial_training(cfg: AdversarialTrainingConfig) -> dict[str, Any]:
    """The stage's record (cached; its entry's ``work/model`` is the defended model)."""
    return load_or_run("adversarial_training", cfg, _run_adversarial_training, seed=cfg.seed)
