"""The machine-readable summary of every finished chapter (``costeff-same summary --json``).

Each chapter registers a :class:`Section`: how to build its config from the profile's
notebook parameters, the name of its cached result, and how to summarise that record.
The summary only reads the cache: it never trains or attacks. Keep its keys stable: the
project's figures are checked against it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from costeff_same.attacks.units import run_accuracy_unit
from costeff_same.chapters.accuracy_attacks import accuracy_attacks_config, accuracy_attacks_summary, unit_row
from costeff_same.chapters.costeff import costeff_config, costeff_summary
from costeff_same.chapters.multi_exit import multi_exit_config, multi_exit_summary
from costeff_same.chapters.same import same_config, same_summary_section
from costeff_same.engine.results import is_cached, load_result
from costeff_same.foundations.config import StageConfig, load_profile


@dataclass(frozen=True)
class Section:
    """One chapter's entry in the summary."""

    chapter: str                                   # notebook name, e.g. "01_multi_exit"
    result_name: str                               # the cache name its run_* uses
    build: Callable[..., StageConfig]              # notebook parameters -> config
    summarize: Callable[[dict[str, Any]], dict[str, Any]]


SECTIONS: dict[str, Section] = {
    "multi_exit": Section("01_multi_exit", "multi_exit", multi_exit_config, multi_exit_summary),
    "costeff": Section("02_costeff", "costeff", costeff_config, costeff_summary),
    "accuracy_attacks": Section("03_accuracy_attacks", "accuracy_attacks", accuracy_attacks_config,
                                accuracy_attacks_summary),
    "same": Section("04_same", "same", same_config, same_summary_section),
}


def summary(profile: str) -> dict[str, Any]:
    """``{"profile": ..., "<section>": {...} or {"status": "not run"}}`` for every section."""
    params = load_profile(profile)
    out: dict[str, Any] = {"profile": profile}
    for key, section in SECTIONS.items():
        config = section.build(**params.get(section.chapter, {}))
        if is_cached(section.result_name, config):
            out[key] = {"status": "done", **section.summarize(load_result(section.result_name, config))}
        else:
            out[key] = {"status": "not run", "config_hash": config.config_hash()}
    return out


def accuracy_attack_rows(profile: str) -> list[dict[str, Any]] | None:
    """Chapter 3's (victim, recipe) figures under ``profile``, from the cache only (None: not run).

    Reads the chapter record when it is cached, else whichever (victim, recipe) units are
    (chapter 4 sets SAME beside them).
    """
    params = load_profile(profile).get("03_accuracy_attacks")
    if params is None:
        return None
    cfg = accuracy_attacks_config(**params)
    if is_cached("accuracy_attacks", cfg):
        return accuracy_attacks_summary(load_result("accuracy_attacks", cfg))["records"]
    if not is_cached("multi_exit", cfg.multi_exit):
        return None
    chapter1 = load_result("multi_exit", cfg.multi_exit)
    rows = []
    for name in cfg.victims:
        value = chapter1["victims"][name]["operating_point"]["value"]
        for recipe in cfg.recipes:
            for unit in cfg.units(name, recipe, value):
                if is_cached("accuracy_attack", unit):
                    rows.append(unit_row(name, value, run_accuracy_unit(unit)))
    return rows or None
