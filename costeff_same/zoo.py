"""The model zoo: the trained, cached multi-exit models every chapter reads.

- :func:`encoded_splits`: a task's three splits, subsampled and tokenised (memoised in
  memory for the two most recent tasks; a pure function of its config).
- :func:`trained_model`: one fine-tuned multi-exit model (trained once through
  :func:`costeff_same.engine.training.train`, then loaded from the results cache);
  :func:`model_task` the same training as a task of a stage graph.
- :func:`load_entry_model`: the model a cached stage saved in its work folder.
- :class:`StageModel` and :func:`victim_model`: a model named by the stage that saved it
  (COST-EFF's models, which chapter 5 attacks), beside chapter 1's :class:`TrainedModelConfig`.

Chapter 1's two victims and their operating points are in :mod:`costeff_same.victims`;
COST-EFF's models in :mod:`costeff_same.compression.pipeline`; the sentences the attacks
attack in :mod:`costeff_same.attacks.sentences`.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from costeff_same.core.backbones import load_backbone, load_tokenizer
from costeff_same.core.data import TaskData, load_data, subsample
from costeff_same.core.encoding import Encoded
from costeff_same.core.modeling import MultiExitBertForSequenceClassification, from_backbone
from costeff_same.engine.parallel import Task, stage_task
from costeff_same.engine.results import load_entry, load_or_run, stage
from costeff_same.engine.training import train
from costeff_same.foundations import runtime
from costeff_same.foundations.config import DataConfig, StageConfig, TrainedModelConfig, backbone_field
from costeff_same.foundations.storage import atomic


def prepared_data(cfg: DataConfig, tokenizer) -> tuple[TaskData, dict[str, Encoded]]:
    """Load, subsample and encode the task's three splits (``train``, ``validation``, ``test``)."""
    task = load_data(cfg)
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
    """The model a cached stage saved as ``work/model`` in its entry, in eval mode, on the run's
    device (:func:`costeff_same.foundations.runtime.resolve_device`)."""
    model = MultiExitBertForSequenceClassification.from_pretrained(Path(record["_entry"]) / "work" / "model")
    return model.to(runtime.resolve_device()).eval()


def trained_model(cfg: TrainedModelConfig) -> tuple[MultiExitBertForSequenceClassification, dict[str, Any]]:
    """The fine-tuned model of ``cfg`` (trained once, then loaded from the cache) and its record."""
    record = load_or_run("model", cfg, _train_model, seed=cfg.train.seed)
    return load_entry_model(record), record


def model_task(cfg: TrainedModelConfig) -> dict[str, Task]:
    """``{task name: Task}`` that trains the model of ``cfg`` on a stage graph
    (:mod:`costeff_same.engine.parallel`); done when the model is cached."""
    return stage_task("model", cfg, _train_model, seed=cfg.train.seed)


@dataclasses.dataclass(frozen=True)
class StageModel(StageConfig):
    """A model that a cached stage saved (``work/model`` of its entry), named by the stage and
    its entry key, with the data and the backbone it was trained on.

    It is how an attack names a victim that is not one of chapter 1's trained models (those
    are :class:`TrainedModelConfig`): COST-EFF's slender model, its TA and its ablations
    (chapter 5). The entry key covers the stage's config and code, so a unit that attacks
    the model is recomputed when either changes.

    Attributes:
        stage: the stage's registered name (``costeff_recover``, ``costeff_ta``, ...).
        entry: its :func:`~costeff_same.engine.results.entry_key`.
        data: the task the model was trained on (the attacks draw its test sentences).
        backbone: the backbone whose tokenizer the model reads.
    """

    stage: str
    entry: str
    data: DataConfig
    backbone: str = backbone_field("minilm-l6")

    def label(self) -> str:
        """``<stage> <entry>``."""
        return f"{self.stage} {self.entry}"


#: what an attack can attack: one of chapter 1's trained models or a model a stage saved
VictimModel = TrainedModelConfig | StageModel


def entry_model(record: dict[str, Any], data: DataConfig, backbone: str) -> StageModel:
    """The :class:`StageModel` of the model a cached stage's record (from
    :func:`~costeff_same.engine.results.load_or_run`) saved in its entry."""
    stage_name, key = Path(record["_entry"]).name.rsplit("-", 1)
    return StageModel(stage=stage_name, entry=key, data=data, backbone=backbone)


def victim_model(victim: VictimModel) -> MultiExitBertForSequenceClassification:
    """The model ``victim`` names, in eval mode: chapter 1's trained once and then read from
    the cache; a :class:`StageModel`'s read from its stage's entry.

    Raises:
        FileNotFoundError: for a :class:`StageModel` whose entry is not in the cache (its
            stage must run first).
    """
    if isinstance(victim, TrainedModelConfig):
        return trained_model(victim)[0]
    return load_entry_model(load_entry(victim.stage, victim.entry))


def victim_backbone(victim: VictimModel) -> str:
    """The backbone whose tokenizer ``victim`` reads."""
    return victim.train.backbone if isinstance(victim, TrainedModelConfig) else victim.backbone
