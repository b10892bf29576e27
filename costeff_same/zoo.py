"""The model zoo: the trained, cached multi-exit models every chapter reads.

- :func:`encoded_splits`: a task's three splits, subsampled and tokenised (memoised in
  memory for the two most recent tasks; a pure function of its config).
- :func:`trained_model`: one fine-tuned multi-exit model (trained once through
  :func:`costeff_same.engine.training.train`, then loaded from the results cache).
- :func:`load_entry_model`: the model a cached stage saved in its work folder.
- :func:`attack_sentences`: the test sentences an attack chapter attacks.

Chapter 1's two victims and their operating points are in :mod:`costeff_same.victims`;
COST-EFF's models in :mod:`costeff_same.compression.pipeline`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from costeff_same.core.backbones import load_backbone, load_tokenizer
from costeff_same.core.data import Encoded, TaskData, load_task, subsample
from costeff_same.core.modeling import MultiExitBertForSequenceClassification, from_backbone
from costeff_same.engine.results import load_or_run, stage
from costeff_same.engine.training import set_threads, train
from costeff_same.foundations.config import ConfigError, DataConfig, TrainedModelConfig


def prepared_data(cfg: DataConfig, tokenizer) -> tuple[TaskData, dict[str, Encoded]]:
    """Load, subsample and encode the task's three splits (``train``, ``validation``, ``test``)."""
    task = load_task(cfg.task, cfg.seed, cfg.data_file)
    sizes = {"train": cfg.train_size, "validation": cfg.eval_size, "test": cfg.eval_size}
    encoded = {split: Encoded(subsample(task.splits[split], sizes[split], cfg.seed), tokenizer, cfg.max_length)
               for split in ("train", "validation", "test")}
    return task, encoded


@functools.lru_cache(maxsize=2)
def _encoded_splits(cfg: DataConfig, backbone: str, key: str) -> tuple[TaskData, dict[str, Encoded]]:
    return prepared_data(cfg, load_tokenizer(backbone))


def encoded_splits(cfg: DataConfig, backbone: str) -> tuple[TaskData, dict[str, Encoded]]:
    """:func:`prepared_data` with ``backbone``'s tokenizer, memoised by the config's key
    (which includes the content of a local data file)."""
    return _encoded_splits(cfg, backbone, cfg.config_hash())


@stage("model")
def _train_model(cfg: TrainedModelConfig, workdir: Path) -> dict[str, Any]:
    set_threads()
    backbone = load_backbone(cfg.train.backbone, seed=cfg.train.seed)
    task, data = prepared_data(cfg.data, backbone.tokenizer)
    model = from_backbone(backbone.model, task.num_labels, cfg.train.exit_style, cfg.train.gradient_equilibrium,
                          seed=cfg.train.seed, exit_pooling=cfg.train.exit_pooling)
    history = train(model, data["train"], cfg.train, workdir)
    model.save_pretrained(workdir / "model")
    backbone.tokenizer.save_pretrained(workdir / "model")
    return {
        "task": task.name, "metric": task.metric, "num_labels": task.num_labels,
        "split": task.split_record, "truncated": {s: d.truncated for s, d in data.items()},
        "examples": {s: len(d) for s, d in data.items()}, "history": history,
    }


def load_entry_model(record: dict[str, Any]) -> MultiExitBertForSequenceClassification:
    """The model a cached stage saved as ``work/model`` in its entry, in eval mode."""
    return MultiExitBertForSequenceClassification.from_pretrained(Path(record["_entry"]) / "work" / "model").eval()


def trained_model(cfg: TrainedModelConfig) -> tuple[MultiExitBertForSequenceClassification, dict[str, Any]]:
    """The fine-tuned model of ``cfg`` (trained once, then loaded from the cache) and its record."""
    record = load_or_run("model", cfg, _train_model, seed=cfg.train.seed)
    return load_entry_model(record), record


def balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded order of examples in which every prefix keeps the labels' proportions.

    The examples are shuffled with ``seed``; each gets its rank within its label as a
    fraction of that label's count, and the order sorts by it. So the first ``n`` hold each
    label in proportion to ``labels`` (within one example), whatever ``n``.

    Args:
        labels: ``(N,)`` integer labels.
        seed: seeds the shuffle.

    Returns:
        ``(N,)`` int64, a permutation of 0..N-1.
    """
    labels = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    fraction = np.empty(len(labels))
    for label in np.unique(labels):
        members = order[labels[order] == label]
        fraction[members] = (np.arange(len(members)) + 0.5) / len(members)
    return order[np.argsort(fraction[order], kind="stable")]


def attack_sentences(data: DataConfig, n: int, seed: int,
                   who: str = "this attack") -> tuple[list[str], list[int], list[int]]:
    """The ``n`` test sentences every attack chapter attacks: the first ``n`` of
    :func:`balanced_order` of the test split as chapter 1 prepares it.

    Chapters 3 and 4 (and any attack with the same ``seed``) draw the same sentences, with
    both labels in proportion to the split.

    Args:
        data: the task (its ``eval_size`` subsample of the test split, as chapter 1's).
        n: how many (at most the split's size).
        seed: seeds the order.
        who: named in the error.

    Returns:
        The sentences, their labels and their indices in chapter 1's test split.

    Raises:
        ConfigError: for a sentence-pair task.
    """
    task = load_task(data.task, data.seed, data.data_file)
    if task.has_pairs:
        raise ConfigError(f"task {task.name!r} has sentence pairs; {who} takes single sentences")
    test = subsample(task.splits["test"], data.eval_size, data.seed)
    order = balanced_order(np.asarray(test["label"]), seed)[:n]
    return ([test["text"][int(i)] for i in order], [int(test["label"][int(i)]) for i in order],
            [int(i) for i in order])
