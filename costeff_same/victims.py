"""Chapter 1's two victims, trained and evaluated at their operating points.

The DeeBERT-style victim (``deebert`` exits, two-stage training, entropy exit; Xin et al.,
2020) and the PABEE-style victim (``pabee`` exits, depth-weighted training, patience exit;
Zhou et al., 2020), each with its per-exit metric, threshold or patience sweeps, its
operating point (chosen on the validation split: the fastest setting whose validation
metric is within ``tolerance`` of its last exit's), measured FLOPs and batched wall-clock
(:func:`costeff_same.evaluation.evaluate_victim`). The record is cached
(``multi_exit-<key>``); chapter 1 presents it and the attack chapters attack its victims at
their operating points (:func:`victims_config` reads chapter 1's parameters of a profile).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from costeff_same.core.backbones import load_tokenizer
from costeff_same.engine.parallel import Task, run_stages, stage_name, stage_task
from costeff_same.engine.results import stage
from costeff_same.evaluation import evaluate_victim
from costeff_same.foundations.config import (
    DATA_KEYS,
    ConfigError,
    DataConfig,
    StageConfig,
    TrainConfig,
    TrainedModelConfig,
    check_range,
    load_profile,
    pick,
)
from costeff_same.foundations.registry import VICTIMS
from costeff_same.foundations.schema import Param, Schema
from costeff_same.zoo import model_task, prepared_data, trained_model

#: the data parameters of every chapter (the profile's ``common`` mapping; :class:`DataConfig`)
DATA_PARAMS = {
    "task": Param("str", 'task: rotten_tomatoes, imdb, a GLUE task (sst2, mrpc, ...) or local'),
    "train_file": Param("Optional[str]", 'task local: the training file (.csv, .tsv or .jsonl)'),
    "validation_file": Param("Optional[str]", 'task local: the validation file (None: cut from train_file)'),
    "test_file": Param("Optional[str]", 'task local: the test file (None: cut from train_file)'),
    "text_column": Param("Optional[str]", "local files: the text column (None: GLUE's layouts recognised)"),
    "text_pair_column": Param("Optional[str]", "local files: the second sentence's column (pair tasks)"),
    "label_column": Param("Optional[str]", "local files: the label column"),
    "metric": Param("Optional[str]", "task metric: accuracy, f1, matthews, pearson_spearman (None: the task's)"),
    "backbone": Param("str", 'backbone: minilm-l6 (packaged), tiny-random, a local folder or a hub id'),
    "max_length": Param("int", 'tokens per example; longer texts are truncated and counted'),
    "eval_file": Param("Optional[str]", "evaluate (and attack) on this file instead of the test split"),
    "train_overlap": Param("str", "eval texts also in the training data: drop (default) or keep"),
}
#: chapter 1 keys an attack chapter must share with the victims it attacks
COMMON_KEYS = tuple(k for k in DATA_PARAMS if k not in ("eval_file", "train_overlap"))
#: keys an attack chapter may set for itself: where chapter 1's victims are evaluated and attacked
EVALUATION_KEYS = ("eval_file", "train_overlap")


@dataclasses.dataclass(frozen=True)
class MultiExitExperimentConfig(StageConfig):
    """Chapter 1: the two victims and how they are evaluated.

    Attributes:
        entropy_model: the DeeBERT-style model (``deebert`` heads, ``two_stage``).
        patience_model: the PABEE-style model (``pabee`` heads, ``weighted``).
        data: the task.
        entropy_thresholds: entropy thresholds (nats) of the sweep.
        patience_values: patience values of the sweep.
        tolerance: an operating point may lose at most this much validation metric
            against its model's last exit (0.01 = 1 point).
        timing_examples_batch1: examples timed at batch 1.
        timing_batch_size: the batch size of the batched wall-clock measurement.
    """

    data: DataConfig
    entropy_model: TrainConfig
    patience_model: TrainConfig
    entropy_thresholds: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(14))
    patience_values: tuple[int, ...] = (1, 2, 3, 4, 5)
    tolerance: float = 0.01
    timing_examples_batch1: int = 200
    timing_batch_size: int = 64

    def __post_init__(self):
        if not self.entropy_thresholds or not self.patience_values:
            raise ConfigError("entropy_thresholds and patience_values must each hold at least one value")
        for i, value in enumerate(self.entropy_thresholds):
            check_range(f"entropy_thresholds[{i}]", value, 0)
        for i, value in enumerate(self.patience_values):
            if value < 1:
                raise ConfigError(f"patience_values[{i}]={value} must be >= 1 (layers)")
        check_range("tolerance", self.tolerance, 0, 1, high_open=True)
        for key in ("timing_examples_batch1", "timing_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be >= 1")

    def victim(self, name: str) -> TrainedModelConfig:
        """The trained-model config of victim ``entropy`` or ``patience``."""
        if name not in VICTIMS:
            raise ConfigError(f"unknown victim {name!r}; accepted: {', '.join(VICTIMS)}")
        return TrainedModelConfig(self.data.for_training(), self.entropy_model if name == "entropy" else self.patience_model)

    def policy_values(self, name: str) -> tuple[float, ...]:
        """The sweep of victim ``name``'s policy."""
        return self.entropy_thresholds if name == "entropy" else tuple(float(p) for p in self.patience_values)


#: the parameters with which an attack chapter names its victims (:func:`victims_config`)
VICTIM_PARAMS = {
    "victim_profile": Param("str", 'the profile whose chapter-1 victims are attacked'),
    "victim_seed": Param("Optional[int]", "attack the victims trained with this seed (None: the profile's)"),
    **{k: Param(DATA_PARAMS[k].kind, f"must equal chapter 1's {k}") for k in COMMON_KEYS},
    **{k: DATA_PARAMS[k] for k in EVALUATION_KEYS},
    "victims": Param("list[str]", 'victims: entropy (DeeBERT-style), patience (PABEE-style)'),
}


#: chapter 1's notebook parameters (defaults: ``configs/default.yaml``)
MULTI_EXIT_SCHEMA = Schema("01_multi_exit", {
    **DATA_PARAMS,
    "seed": Param("int", 'seeds the split, initialisation, data order and dropout'),
    "train_size": Param("Optional[int]", 'subsample the training split to this many examples (None: all)'),
    "eval_size": Param("Optional[int]", 'subsample validation and test to this many examples each (None: all)'),
    "epochs": Param("int", 'fine-tuning epochs (DeeBERT stage 1, PABEE)'),
    "exit_epochs": Param("int", 'DeeBERT stage 2 epochs: exits trained on the frozen backbone'),
    "batch_size": Param("int", 'examples per training step'),
    "learning_rate": Param("float", 'peak learning rate (linear warm-up over 10% of steps, then linear decay)'),
    "exit_learning_rate": Param("float", "learning rate of DeeBERT's stage 2"),
    "exit_pooling": Param("str", 'what each exit reads: cls (the papers) or mean (MiniLM is a mean-pooling encoder)'),
    "precision": Param("str", "training forward pass: fp32, or bf16 autocast (float32 weights; evaluation fp32)"),
    "entropy_thresholds": Param("list[float]", 'sweep (nats)'),
    "patience_values": Param("list[int]", 'patience sweep (layers)'),
    "tolerance": Param("float", 'operating point: lose at most this much validation metric against the last exit'),
    "timing_examples_batch1": Param("int", 'examples timed at batch 1'),
    "timing_batch_size": Param("int", 'batch size of the batched wall-clock measurement'),
})


def multi_exit_config(**params: Any) -> MultiExitExperimentConfig:
    """Build chapter 1's config from the notebook's flat parameters.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed) or a value of
            the wrong type.
    """
    p = MULTI_EXIT_SCHEMA.complete(params)
    data = DataConfig.from_dict(pick(p, DATA_KEYS))
    common = pick(p, ("backbone", "seed", "batch_size", "learning_rate", "epochs", "exit_pooling", "precision"))
    entropy = TrainConfig.from_dict({**common, "exit_style": "deebert", "regime": "two_stage",
                                     **pick(p, ("exit_epochs", "exit_learning_rate"))})
    patience = TrainConfig.from_dict({**common, "exit_style": "pabee", "regime": "weighted"})
    rest = pick(p, ("entropy_thresholds", "patience_values", "tolerance", "timing_examples_batch1",
                    "timing_batch_size"))
    return MultiExitExperimentConfig.from_dict({"data": data, "entropy_model": entropy,
                                                "patience_model": patience, **rest})


@stage("multi_exit")
def _run_multi_exit(cfg: MultiExitExperimentConfig, workdir: Path) -> dict[str, Any]:
    tokenizer = load_tokenizer(cfg.entropy_model.backbone)
    task, data = prepared_data(cfg.data, tokenizer)
    victims = {}
    for name in VICTIMS:
        model, record = trained_model(cfg.victim(name))
        victims[name] = {
            "exit_style": model.config.exit_style, "regime": cfg.victim(name).train.regime,
            "history": record["history"],
            **evaluate_victim(model, data, task.metric, name, cfg.policy_values(name), cfg.tolerance,
                              cfg.timing_examples_batch1, cfg.timing_batch_size),
        }
    return {
        "task": task.name, "metric": task.metric, "backbone": cfg.entropy_model.backbone,
        "num_layers": victims["entropy"]["depth"], "split": task.split_record,
        "examples": {s: len(d) for s, d in data.items()},
        "truncated": {s: d.truncated for s, d in data.items()},
        "test_labels": data["test"].labels.tolist(), "victims": victims,
    }


def multi_exit_graph(cfg: MultiExitExperimentConfig) -> dict[str, Task]:
    """Chapter 1's stages (:mod:`costeff_same.engine.parallel`): the two victims' trainings,
    side by side, then the chapter's evaluation (:func:`multi_exit_stage` names it), alone:
    it times both inference paths."""
    models: dict[str, Task] = {}
    for name in VICTIMS:
        models |= model_task(cfg.victim(name))
    return models | stage_task("multi_exit", cfg, _run_multi_exit, seed=cfg.data.seed, needs=tuple(models),
                               exclusive=True)


def multi_exit_stage(cfg: MultiExitExperimentConfig) -> str:
    """The task name of chapter 1's evaluation in :func:`multi_exit_graph`: what a later chapter's tasks need."""
    return stage_name("multi_exit", cfg)


def run_multi_exit(cfg: MultiExitExperimentConfig) -> dict[str, Any]:
    """Chapter 1's result record (cached): the victims trained side by side, then evaluated here,
    one after the other (the wall-clock timings run on a quiet machine)."""
    return run_stages("multi_exit", cfg, _run_multi_exit, multi_exit_graph(cfg), seed=cfg.data.seed)



def victims_config(params: dict[str, Any], chapter: str, given: set[str]) -> MultiExitExperimentConfig:
    """Chapter 1's config for the victims an attack chapter attacks.

    Pops ``victim_profile``, ``victim_seed`` (the victims' training seed; None: the
    profile's), the profile's ``common`` keys (:data:`COMMON_KEYS`) and
    :data:`EVALUATION_KEYS` from ``params`` in place; each common key the caller gave
    (``given``) must equal chapter 1's value under that profile, and each evaluation key
    the caller gave replaces chapter 1's (the victims, trained without it, are the same).

    Raises:
        ConfigError: for an unknown profile, or a common key that disagrees with chapter 1's
            (naming both values and ``chapter``).
    """
    chapter1 = load_profile(params.pop("victim_profile"))["01_multi_exit"]
    victim_seed = params.pop("victim_seed", None)
    if victim_seed is not None:
        chapter1 = {**chapter1, "seed": victim_seed}
    for key in COMMON_KEYS:
        value = params.pop(key)
        if key in given and chapter1.get(key) != value:
            raise ConfigError(f"{key}={value!r} differs from chapter 1's {chapter1.get(key)!r}: {chapter} "
                              "attacks chapter 1's victims; change victim_profile instead")
    for key in EVALUATION_KEYS:   # where the victims are evaluated and attacked: the chapter's own
        value = params.pop(key)
        if key in given:
            chapter1 = {**chapter1, key: value}
    return multi_exit_config(**chapter1)
