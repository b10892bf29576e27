"""The label rule of a user's data file: which labels are classes, which a regression target,
and which are refused (blank, NaN, strings, negative, a single class, gaps, 1-based).

A local file has no declared label set, so :func:`label_rule` decides it by one stated
rule (:data:`LABEL_RULE`), which :func:`costeff_same.core.data.load_local` prints, and
refuses by name every label that fits no reading of it: ``0.0/1.0`` and ``true/false``
are classes, never a regression target, and labels 0 and 5 are not six classes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class LabelError(ValueError):
    """A label of a data file is blank, not a number, or does not fit a label set."""


#: how :func:`label_rule` decides the kind of a local file's labels (printed when it applies)
LABEL_RULE = ("whole numbers 0..K-1 (0.0/1.0 included) are K classes, every class present; true/false are "
              "classes 0/1; numbers that are not all whole are a regression target")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def label_rule(labels: list[Any], where: str, num_labels: int | None = None) -> tuple[np.ndarray, int, str]:
    """Decide the label kind of a local file by :data:`LABEL_RULE`, and check every label.

    Args:
        labels: the ``label`` column, one value per row.
        where: the file (for messages).
        num_labels: the label set's size, when the caller knows it (1: regression); None
            applies the rule.

    Returns:
        ``(labels, num_labels, rule)``: ``(N,)`` int64 class indices (float32 for
        regression), the number of classes (1 for regression), and the rule as applied, in words.

    Raises:
        LabelError: for a blank or NaN label, a string, an infinity, a negative class, a
            single class, a class 0 that never appears (1-based labels), classes that never
            appear between the others (gaps), or a label outside a given label set; each
            names the value, its row and what is accepted.
    """
    blank = [i for i, v in enumerate(labels) if _missing(v)]
    if blank:
        raise LabelError(f"{where}: {len(blank)} blank or NaN label(s), first at row(s) {blank[:5]}; "
                         "every example needs a label")
    if labels and all(isinstance(v, (bool, np.bool_)) for v in labels):
        values = np.asarray(labels, dtype=np.int64)
        if len(set(values.tolist())) < 2:
            raise LabelError(f"{where}: every label is {bool(values[0])}; at least two classes are needed")
        return values, 2, "labels true/false read as classes 0 (false) and 1 (true)"
    for i, v in enumerate(labels):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise LabelError(f"{where}: label {v!r} at row {i} is not a number; accepted: {LABEL_RULE}")
        if not math.isfinite(v):
            raise LabelError(f"{where}: label {v!r} at row {i} is not finite; accepted: finite numbers")
    values = np.asarray(labels, dtype=np.float64)
    if num_labels == 1 or (num_labels is None and not np.all(values == np.round(values))):
        return values.astype(np.float32), 1, "labels are numbers that are not all whole: regression (one output)"
    if num_labels is not None:
        bad = [i for i, v in enumerate(values) if v != round(v) or not 0 <= v < num_labels]
        if bad:
            raise LabelError(f"{where}: label {labels[bad[0]]!r} at row {bad[0]} is outside the label set; "
                            f"accepted: an integer in 0..{num_labels - 1}")
        return values.astype(np.int64), num_labels, f"labels are classes 0..{num_labels - 1} (given)"
    classes = sorted(set(values.astype(np.int64).tolist()))
    if classes[0] < 0:
        row = int(np.argmax(values < 0))
        raise LabelError(f"{where}: label {labels[row]!r} at row {row} is negative; classification labels are "
                         f"0..K-1 ({LABEL_RULE})")
    if len(classes) < 2:
        raise LabelError(f"{where}: every label is {classes[0]}: a single class; at least two classes are needed")
    absent = sorted(set(range(classes[-1] + 1)) - set(classes))
    if absent == [0] or (absent and absent == list(range(classes[0]))):
        raise LabelError(f"{where}: labels run {classes[0]}..{classes[-1]} and class 0 never appears (1-based "
                         "labels?); classification labels are 0..K-1 with every class present: subtract "
                         f"{classes[0]}")
    if absent:
        raise LabelError(f"{where}: classes {absent[:10]} never appear between labels {classes[:10]}; "
                         "classification labels are 0..K-1 with every class present")
    kind = "whole numbers" if any(isinstance(v, (float, np.floating)) for v in labels) else "integers"
    return values.astype(np.int64), len(classes), f"labels are {kind}: {len(classes)} classes 0..{classes[-1]}"
