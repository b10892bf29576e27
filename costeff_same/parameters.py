"""The notebooks' ``parameters`` cells, rendered from the chapters' schemas.

Each chapter declares its parameters once (a :class:`~costeff_same.foundations.schema.Schema`
in its config builder's module) with defaults from ``configs/default.yaml``; the
notebook's ``parameters`` cell is that schema rendered. :func:`sync_parameters_cell`
rewrites a notebook's cell from its schema (``costeff-same parameters --write``); the
tests check that every cell is up to date.
"""

from __future__ import annotations

import re

from costeff_same.chapters.accuracy_attacks import ACCURACY_ATTACKS_SCHEMA
from costeff_same.chapters.costeff import COSTEFF_SCHEMA
from costeff_same.chapters.defences import DEFENCES_SCHEMA
from costeff_same.chapters.same import SAME_SCHEMA
from costeff_same.chapters.same_vs_costeff import SAME_VS_COSTEFF_SCHEMA
from costeff_same.foundations.config import ConfigError
from costeff_same.foundations.paths import NOTEBOOKS_DIR
from costeff_same.foundations.schema import Schema
from costeff_same.reproduction import REPRODUCTION_SCHEMA
from costeff_same.victims import MULTI_EXIT_SCHEMA

SCHEMAS: dict[str, Schema] = {s.chapter: s for s in (MULTI_EXIT_SCHEMA, COSTEFF_SCHEMA, ACCURACY_ATTACKS_SCHEMA,
                                                     SAME_SCHEMA, SAME_VS_COSTEFF_SCHEMA, DEFENCES_SCHEMA,
                                                     REPRODUCTION_SCHEMA)}
CELL_HEADER = re.compile(r'^# %% tags=\[[^\]]*"parameters"[^\]]*\]\n', re.MULTILINE)
"""A jupytext percent-cell header whose tags include ``parameters`` (others, such as
``remove-cell``, may sit beside it)."""


def schema(chapter: str) -> Schema:
    """The schema of ``chapter``.

    Raises:
        ConfigError: for an unknown chapter (the accepted ones are listed).
    """
    if chapter not in SCHEMAS:
        raise ConfigError(f"unknown chapter {chapter!r}; accepted: {', '.join(SCHEMAS)}")
    return SCHEMAS[chapter]


def _split(chapter: str) -> tuple[str, str, str]:
    text = (NOTEBOOKS_DIR / f"{chapter}.py").read_text()
    match = CELL_HEADER.search(text)
    if match is None:
        raise ConfigError(f'notebooks/{chapter}.py has no parameters cell (a "# %% tags=[...]" header '
                          f'whose tags include "parameters")')
    head, rest = text[:match.end()], text[match.end():]
    cell, sep, tail = rest.partition("\n# %%")
    return head, cell.rstrip("\n") + "\n", sep + tail


def notebook_parameters_cell(chapter: str) -> str:
    """The text of the notebook's ``parameters`` cell as it is on disk."""
    return _split(chapter)[1]


def sync_parameters_cell(chapter: str) -> bool:
    """Rewrite the notebook's ``parameters`` cell from its schema; True if it changed."""
    head, cell, tail = _split(chapter)
    rendered = schema(chapter).parameters_cell()
    if cell == rendered:
        return False
    (NOTEBOOKS_DIR / f"{chapter}.py").write_text(head + rendered + tail)
    return True
