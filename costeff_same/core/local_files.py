"""A user's data file as they have it: csv, tsv or jsonl, in our layout or one of GLUE's.

:func:`read_table` reads one file into its texts, optional second sentences and raw labels.
The columns are the ones the user names (``text_column``, ``text_pair_column``,
``label_column``) or, when none is named, the first of :data:`LOCAL_LAYOUTS` whose column
names the file has: ours (``text``/``text_pair``/``label``), then GLUE's as it distributes
its files (``sentence``; ``sentence1``/``sentence2``; ``question``/``sentence``;
``question1``/``question2``; ``premise``/``hypothesis``; MRPC's ``#1 String``/``#2 String``/
``Quality``; QQP's ``is_duplicate``). A UTF-8 byte-order mark (GLUE's files start with one)
is skipped, and GLUE's tsv files quote nothing, so a quote is part of a text.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCAL_SUFFIXES = (".csv", ".tsv", ".jsonl")
#: the column layouts a local file may have, ``(text, text pair or None, label)``, tried in order
LOCAL_LAYOUTS: tuple[tuple[str, str | None, str], ...] = (
    ("text", "text_pair", "label"), ("text", None, "label"),
    ("#1 String", "#2 String", "Quality"),
    ("sentence1", "sentence2", "label"), ("question1", "question2", "label"),
    ("question1", "question2", "is_duplicate"), ("question", "sentence", "label"),
    ("premise", "hypothesis", "label"), ("sentence", None, "label"),
)


class LocalFileError(ValueError):
    """A local data file is missing, of an unsupported kind, unparsable or without the needed columns."""


@dataclass(frozen=True)
class Table:
    """The examples of one local file.

    Attributes:
        path: the file.
        texts: ``(N,)`` first sentences.
        pairs: ``(N,)`` second sentences, or None for a single-sentence file.
        labels: ``(N,)`` raw label values (checked later by :func:`costeff_same.core.labels.label_rule`).
        columns: ``{"text", "text_pair", "label"}``: the file's column each came from.
    """

    path: Path
    texts: list[str]
    pairs: list[str] | None
    labels: list[Any]
    columns: dict[str, str | None]


def _frame(path: Path):
    import pandas as pd

    if path.suffix not in LOCAL_SUFFIXES:
        raise LocalFileError(f"data file {str(path)!r} has suffix {path.suffix!r}; accepted: {', '.join(LOCAL_SUFFIXES)}")
    if not path.is_file():
        raise LocalFileError(f"data file {str(path)!r} does not exist")
    try:
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True, encoding="utf-8-sig")
        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", encoding="utf-8-sig",
                           keep_default_na=False,
                           quoting=csv.QUOTE_NONE if path.suffix == ".tsv" else csv.QUOTE_MINIMAL)
    except (ValueError, pd.errors.ParserError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LocalFileError(f"data file {str(path)!r} cannot be parsed as {path.suffix}: {err}") from err


def _layout(path: Path, found: list[str], named: tuple[str | None, str | None, str | None]):
    text, pair, label = named
    if text is None and pair is None and label is None:
        layout = next((lay for lay in LOCAL_LAYOUTS if all(c in found for c in lay if c is not None)), None)
        if layout is None:
            accepted = "; ".join("/".join(c for c in lay if c is not None) for lay in LOCAL_LAYOUTS)
            raise LocalFileError(f"data file {str(path)!r} has no known column layout; found columns {found}; "
                                 f"accepted layouts (text[, pair], label): {accepted}; or name the columns "
                                 "with text_column, text_pair_column and label_column")
        return layout
    if text is None or label is None:
        raise LocalFileError(f"data file {str(path)!r}: text_column={text!r}, label_column={label!r}; name both "
                             "(and text_pair_column for sentence pairs), or none to recognise GLUE's layouts")
    for key, column in (("text_column", text), ("text_pair_column", pair), ("label_column", label)):
        if column is not None and column not in found:
            raise LocalFileError(f"data file {str(path)!r} has no column {column!r} ({key}); "
                                 f"found columns {found}")
    return text, pair, label


def read_table(path: str | Path, text_column: str | None = None, text_pair_column: str | None = None,
               label_column: str | None = None) -> Table:
    """Read a ``.csv``, ``.tsv`` or ``.jsonl`` file's examples.

    Args:
        path: the file.
        text_column, text_pair_column, label_column: the columns to read; all None:
            recognise the layout by its column names (:data:`LOCAL_LAYOUTS`).

    Raises:
        LocalFileError: for a missing file, an unsupported suffix (the accepted ones are
            named), a file that cannot be parsed, a named column the file lacks, or columns
            of no known layout (the columns found and the layouts accepted are named), or an
            empty or whitespace-only text (its rows are named).
    """
    path = Path(path)
    frame = _frame(path)
    found = [str(c) for c in frame.columns]
    text, pair, label = _layout(path, found, (text_column, text_pair_column, label_column))
    texts = ["" if isinstance(t, float) else t for t in frame[text].tolist()]
    pairs = None if pair is None else ["" if isinstance(t, float) else t for t in frame[pair].tolist()]
    for column, values in ((text, texts), (pair, pairs or [])):
        bad = [i for i, t in enumerate(values) if not isinstance(t, str) or not t.strip()]
        if bad:
            raise LocalFileError(f"{path}: empty or whitespace-only {column!r} at row(s) {bad[:5]}")
    return Table(path, texts, pairs, frame[label].tolist(), {"text": text, "text_pair": pair, "label": label})
