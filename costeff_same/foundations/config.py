"""Typed, hashable stage configs (the minGPT/nanoGPT way: defaults, and loud failure).

Every stage of an experiment is described by a frozen dataclass. ``from_dict`` rejects
unknown keys and values of the wrong type with a message naming the key, the value and
what is accepted; ``config_hash`` is a stable sha256 of the canonical JSON form, used as
the key of the results cache (:mod:`costeff_same.engine.results`).

Profiles (``configs/{smoke,default,paper}.yaml``) hold the notebook parameters of each
chapter; :func:`load_profile` reads and checks one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from costeff_same.foundations.integrity import sha256_file
from costeff_same.foundations.paths import CONFIGS_DIR
from costeff_same.foundations.pins import backbone_digest
from costeff_same.foundations.registry import EXIT_POOLINGS, EXIT_STYLES, PRECISIONS, REGIMES, TASK_METRICS, TASKS

PROFILES = ("smoke", "default", "paper")


class ConfigError(ValueError):
    """A configuration value is unknown, missing or of the wrong type."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; return it in canonical form.

    Accepts an int where a float is expected and a list where a tuple is expected
    (YAML has no tuples). Raises :class:`ConfigError` otherwise.
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}={value!r} is not {' or '.join(_type_name(a) for a in args)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} must be a list, got {type(value).__name__}")
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(_coerce(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping for {tp.__name__}, got {value!r}")
        return tp.from_dict(value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r} must be an integer, got {type(value).__name__}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} must be a number, got {type(value).__name__}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} must be a string, got {type(value).__name__}")
        return value
    raise ConfigError(f"{key}: unsupported annotation {tp!r}")


@dataclasses.dataclass(frozen=True)
class StageConfig:
    """Base class of every stage config: typed ``from_dict``, ``to_dict`` and ``config_hash``."""

    @classmethod
    def from_dict(cls, values: dict[str, Any], prefix: str = "") -> typing.Self:
        """Build the config from a mapping, checking every key and type.

        Raises:
            ConfigError: on an unknown key (the accepted keys are listed) or a value of
                the wrong type.
        """
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(prefix + u for u in unknown)} for {cls.__name__}; "
                f"accepted: {', '.join(names)}"
            )
        kwargs = {k: _coerce(prefix + k, v, hints[k]) for k, v in values.items()}
        try:
            return cls(**kwargs)
        except TypeError as err:  # a required field is missing
            raise ConfigError(f"{cls.__name__}: {err}") from None

    def label(self) -> str:
        """A few words that tell a reader of the terminal which unit this is (``pwws on entropy``);
        empty when the stage name says enough. Not part of the key."""
        return ""

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able data (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def key_data(self) -> dict[str, Any]:
        """What keys this config: its class name and fields, nested configs by their own
        key data, and every local file (a field declared with :func:`file_field`) by its
        path *and* the sha256 of its content, so an edited file, or a same-named file in
        another folder, keys another entry."""
        out: dict[str, Any] = {"kind": type(self).__name__}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("backbone", False):
                out[f.name] = {"name": value, "sha256": backbone_digest(value)}
            else:
                out[f.name] = _key_value(value, f.metadata.get("file", False))
        return out

    def config_hash(self) -> str:
        """Stable 16-hex-digit key: sha256 of the canonical JSON of :meth:`key_data`."""
        blob = json.dumps(self.key_data(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> typing.Self:
        """A copy with some fields changed (checked like ``from_dict``)."""
        return type(self).from_dict({**dataclasses.asdict(self), **changes})


def file_field(default: str | None = None) -> Any:
    """A dataclass field holding a local file path: the file's content keys the config."""
    return dataclasses.field(default=default, metadata={"file": True})


def backbone_field(default: str) -> Any:
    """A dataclass field naming a backbone: its digest (the pinned files' sha256) keys the config."""
    return dataclasses.field(default=default, metadata={"backbone": True})


def _key_value(value: Any, is_file: bool) -> Any:
    if isinstance(value, StageConfig):
        return value.key_data()
    if isinstance(value, (tuple, list)):
        return [_key_value(v, False) for v in value]
    if is_file and value is not None:
        path = Path(value)
        return {"path": value, "sha256": sha256_file(path) if path.is_file() else None}
    return json.loads(json.dumps(value))


def choice(key: str, value: str, accepted: typing.Iterable[str]) -> str:
    """Return ``value`` if it is one of ``accepted``.

    Raises:
        ConfigError: naming the value and the accepted ones.
    """
    accepted = tuple(accepted)
    if value not in accepted:
        raise ConfigError(f"unknown {key} {value!r}; accepted: {', '.join(accepted)}")
    return value


def check_range(key: str, value: float, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` if it is a finite number in the interval from ``low`` to ``high``.

    Args:
        key: the parameter's name (for the message).
        value: the value to check.
        low, high: the bounds (None: unbounded on that side).
        low_open, high_open: exclude the bound itself.

    Raises:
        ConfigError: for NaN, an infinity or a value outside the interval, naming the value
            and the accepted interval.
    """
    left = "-inf" if low is None else f"{low:g}"
    right = "inf" if high is None else f"{high:g}"
    accepted = f"{'(' if low_open or low is None else '['}{left}, {right}{')' if high_open or high is None else ']'}"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ConfigError(f"{key}={value!r} is not accepted; accepted: a finite number in {accepted}")
    return value


def pick(params: dict[str, Any], keys: typing.Iterable[str]) -> dict[str, Any]:
    """The entries of ``params`` whose key is one of ``keys`` (absent keys are left out)."""
    return {k: params[k] for k in keys if k in params}


def profile_path(profile: str) -> Path:
    """Path of ``configs/<profile>.yaml``; raises :class:`ConfigError` for an unknown profile."""
    choice("profile", profile, PROFILES)
    return CONFIGS_DIR / f"{profile}.yaml"


def load_profile(profile: str) -> dict[str, dict[str, Any]]:
    """The notebook parameters of every chapter under ``profile``.

    The YAML file has a ``common`` mapping merged under each chapter's own mapping
    (keys ``01_multi_exit`` ...). Returns ``{chapter: parameters}``.

    Raises:
        ConfigError: for an unknown profile or a malformed file.
    """
    path = profile_path(profile)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "chapters" not in data:
        raise ConfigError(f"{path}: expected a mapping with 'common' and 'chapters'")
    common = data.get("common") or {}
    return {
        chapter: {**common, **(params or {})} for chapter, params in data["chapters"].items()
    }


# -- stage configs --------------------------------------------------------------------



@dataclasses.dataclass(frozen=True)
class DataConfig(StageConfig):
    """Which task, from which files, and how much of it.

    Attributes:
        task: a task of :data:`costeff_same.foundations.registry.TASKS`.
        train_file: the user's training file for ``task='local'`` (``.csv``, ``.tsv``, ``.jsonl``).
        validation_file, test_file: the user's validation and test files (``task='local'``);
            a missing one is cut from ``train_file`` by the seeded, stratified split.
        text_column, text_pair_column, label_column: the local files' columns (None: GLUE's
            layouts are recognised by their column names).
        metric: the task metric (``accuracy``, ``f1``, ``matthews``, ``pearson_spearman``);
            None: the task's (GLUE's for a GLUE task).
        eval_file: evaluate and attack on this file's texts instead of the task's test split
            (same labels; cross-dataset evaluation).
        train_overlap: ``drop`` (default) or ``keep`` the evaluation texts from another file
            that also occur in the training data (compared up to case, punctuation, whitespace).
        seed: seeds the split and subsampling.
        max_length: tokens per example (longer texts are truncated and counted).
        train_size: subsample the training split to this many examples (None: all).
        eval_size: subsample validation and test to this many examples each (None: all).
    """

    task: str = "rotten_tomatoes"
    train_file: str | None = file_field()
    validation_file: str | None = file_field()
    test_file: str | None = file_field()
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    metric: str | None = None
    eval_file: str | None = file_field()
    train_overlap: str = "drop"
    seed: int = 0
    max_length: int = 64
    train_size: int | None = None
    eval_size: int | None = None

    def __post_init__(self):
        choice("task", self.task, TASKS)
        choice("train_overlap", self.train_overlap, ("drop", "keep"))
        if self.metric is not None:
            choice("metric", self.metric, TASK_METRICS)
        if self.max_length < 8:
            raise ConfigError(f"max_length={self.max_length} must be >= 8")
        for key in ("train_file", "validation_file", "test_file"):
            if getattr(self, key) is not None and self.task != "local":
                raise ConfigError(f"{key}={getattr(self, key)!r} is read only with task='local', not "
                                  f"task={self.task!r}; set task=local, or evaluate on another file with eval_file")
        if self.task == "local" and not self.train_file:
            raise ConfigError("task='local' needs train_file (a .csv, .tsv or .jsonl path)")
        named = {k: getattr(self, k) for k in ("text_column", "text_pair_column", "label_column")}
        if any(named.values()) and not (self.task == "local" or self.eval_file):
            raise ConfigError(f"{', '.join(f'{k}={v!r}' for k, v in named.items() if v)} name columns of local "
                              "files: set task=local (with train_file) or eval_file")
        for key in ("train_size", "eval_size"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be >= 1 or None (all)")

    def for_training(self) -> typing.Self:
        """The same data without the evaluation file: what a model trained on it depends on
        (a victim is trained once, whatever file it is evaluated on)."""
        return self.replace(eval_file=None, train_overlap="drop")


DATA_KEYS = tuple(f.name for f in dataclasses.fields(DataConfig))


@dataclasses.dataclass(frozen=True)
class TrainConfig(StageConfig):
    """How one multi-exit model is fine-tuned (:func:`costeff_same.engine.training.train`).

    Attributes:
        backbone: a backbone of :mod:`costeff_same.core.backbones`.
        exit_style: ``deebert``, ``pabee`` or ``costeff`` heads.
        exit_pooling: what each exit reads: ``cls`` (the papers) or ``mean`` (masked mean of
            the token states; see :mod:`costeff_same.core.modeling`).
        regime: ``joint`` (sum of exit losses), ``weighted`` (PABEE: sum_j j*CE_j / sum_j j),
            ``two_stage`` (DeeBERT: backbone + last exit, then the other exits on the
            frozen backbone).
        gradient_equilibrium: ElasticBERT/COST-EFF gradient rescaling.
        epochs: epochs of the (first) stage.
        exit_epochs: epochs of the second stage of ``two_stage``.
        batch_size: examples per step.
        learning_rate: peak learning rate (linear warm-up then linear decay).
        exit_learning_rate: learning rate of the second stage of ``two_stage``.
        warmup_ratio: fraction of steps spent warming up.
        weight_decay: AdamW weight decay (not on biases and LayerNorms).
        seed: seeds initialisation, data order and dropout.
        checkpoint_every: steps between resumable checkpoints.
        precision: ``fp32``, or ``bf16``: the training forward pass under bfloat16 autocast
            (the weights, the optimiser and every evaluation stay float32).
    """

    backbone: str = backbone_field("minilm-l6")
    exit_style: str = "deebert"
    exit_pooling: str = "mean"
    regime: str = "joint"
    gradient_equilibrium: bool = False
    epochs: int = 2
    exit_epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 5e-5
    exit_learning_rate: float = 5e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 0
    checkpoint_every: int = 50
    precision: str = "fp32"

    def __post_init__(self):
        choice("exit_style", self.exit_style, EXIT_STYLES)
        choice("precision", self.precision, PRECISIONS)
        choice("exit_pooling", self.exit_pooling, EXIT_POOLINGS)
        choice("regime", self.regime, REGIMES)
        for key in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be >= 1")
        if self.exit_epochs < 0:
            raise ConfigError(f"exit_epochs={self.exit_epochs} must be >= 0")
        check_range("learning_rate", self.learning_rate, 0, 1, low_open=True)
        check_range("exit_learning_rate", self.exit_learning_rate, 0, 1, low_open=True)
        check_range("warmup_ratio", self.warmup_ratio, 0, 1, high_open=True)
        check_range("weight_decay", self.weight_decay, 0)


@dataclasses.dataclass(frozen=True)
class TrainedModelConfig(StageConfig):
    """The cache key of one trained multi-exit model: its data and its training."""

    data: DataConfig
    train: TrainConfig

    def label(self) -> str:
        """``<exit style> on <task>, seed <seed>``."""
        return f"{self.train.exit_style} on {self.data.task}, seed {self.train.seed}"
