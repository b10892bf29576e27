"""The model zoo: the trained, cached multi-exit models every chapter reads.

- :func:`encoded_splits`: a task's three splits, subsampled and tokenised (memoised in
  memory for the two most recent tasks; a pure function of its config).
- :func:`trained_model`: one fine-tuned multi-exit model (trained once through
  :func:`costeff_same.engine.training.train`, then loaded from the results cache).
- :func:`load_entry_model`: the model a cached stage saved in its work folder.

Chapter 1's two victims and their operating points are in :mod:`costeff_same.victims`;
COST-EFF's models in :mod:`costeff_same.compression.pipeline`; the sentences the attacks
attack in :mod:`costeff_same.attacks.sentences`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from costeff_same.core.backbones import load_backbone, load_tokenizer
from costeff_same.core.data import Encoded, TaskData, load_task, subsample
from costeff_same.core.modeling import MultiExitBertForSequenceClassification, from_backbone
from costeff_same.engine.results import load_or_run, stage
from costeff_same.engine.training import set_threads, train
from costeff_same.foundations.config import DataConfig, TrainedModelConfig
from costeff_same.foundations.storage import atomic


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
    save_model(model, workdir / "model", backbone.tokenizer)
    return {
        "task": task.name, "metric": task.metric, "num_labels": task.num_labels,
        "split": task.split_record, "truncated": {s: d.truncated for s, d in data.items()},
        "examples": {s: len(d) for s, d in data.items()}, "history": history,
    }


def save_model(model: MultiExitBertForSequenceClassification, folder: Path, tokenizer=None) -> None:
    """Save ``model`` (and ``tokenizer``) with ``save_pretrained`` into ``folder``, atomically:
    written to a temporary folder beside it and moved into place.

    Raises:
        StorageError: for a full disk or a folder that cannot be written (no half-written
            ``folder`` is left).
    """
    with atomic(Path(folder), folder=True) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)


def load_entry_model(record: dict[str, Any]) -> MultiExitBertForSequenceClassification:
    """The model a cached stage saved as ``work/model`` in its entry, in eval mode."""
    return MultiExitBertForSequenceClassification.from_pretrained(Path(record["_entry"]) / "work" / "model").eval()


def trained_model(cfg: TrainedModelConfig) -> tuple[MultiExitBertForSequenceClassification, dict[str, Any]]:
    """The fine-tuned model of ``cfg`` (trained once, then loaded from the cache) and its record."""
    record = load_or_run("model", cfg, _train_model, seed=cfg.train.seed)
    return load_entry_model(record), record
