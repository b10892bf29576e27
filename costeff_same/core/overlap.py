"""Evaluation texts that also occur in the training data.

Public sentiment sets share sentences (several are cut from the same Rotten Tomatoes
snippets), so a victim evaluated on another file may have been trained on some of its
texts. :func:`training_overlap` finds them after :func:`normalised` (case, punctuation and
whitespace), and the task loader leaves them out unless the user keeps them.
"""

from __future__ import annotations

import re
import unicodedata

from datasets import Dataset

_PUNCTUATION = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")

#: what to do with evaluation texts that occur in the training data
OVERLAP_CHOICES = ("drop", "keep")


def normalised(text: str) -> str:
    """``text`` compared up to case, punctuation and whitespace: NFKC, lower case, every
    character that is neither a letter, a digit nor a space removed, runs of whitespace one space.

    >>> normalised("It's  a GREAT film!") == normalised("its a great film")
    True
    """
    text = _PUNCTUATION.sub("", unicodedata.normalize("NFKC", text).lower())
    return _SPACE.sub(" ", text).strip()


def _keys(ds: Dataset) -> list[tuple[str, ...]]:
    columns = [ds["text"]] + ([ds["text_pair"]] if "text_pair" in ds.column_names else [])
    return [tuple(normalised(t) for t in row) for row in zip(*columns)]


def training_overlap(evaluation: Dataset, train: Dataset) -> list[int]:
    """Rows of ``evaluation`` whose text (both sentences of a pair) occurs in ``train``, normalised.

    Returns:
        The row indices, ascending.
    """
    seen = set(_keys(train))
    return [i for i, key in enumerate(_keys(evaluation)) if key in seen]


def without_training_overlap(evaluation: Dataset, train: Dataset, keep: bool) -> tuple[Dataset, dict[str, int]]:
    """``evaluation`` without the rows it shares with ``train`` (all of it when ``keep``).

    Returns:
        ``(split, {"rows", "in_training_data", "left_out", "evaluated"})``.
    """
    shared = training_overlap(evaluation, train)
    kept = evaluation if keep or not shared else evaluation.select(sorted(set(range(len(evaluation))) - set(shared)))
    return kept, {"rows": len(evaluation), "in_training_data": len(shared),
                  "left_out": 0 if keep else len(shared), "evaluated": len(kept)}
