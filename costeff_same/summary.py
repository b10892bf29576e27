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

import pandas as pd

from costeff_same.attacks.units import run_recipe_unit
from costeff_same.chapters.accuracy_attacks import (
    accuracy_attacks_config,
    accuracy_attacks_summary,
    unit_row,
    with_shift_verdicts,
)
from costeff_same.chapters.costeff import costeff_config, costeff_summary
from costeff_same.chapters.defences import defences_config, defences_summary
from costeff_same.chapters.multi_exit import multi_exit_config, multi_exit_summary
from costeff_same.chapters.same import same_config
from costeff_same.chapters.same_summary import same_summary_section
from costeff_same.chapters.same_vs_costeff import same_vs_costeff_config, same_vs_costeff_summary
from costeff_same.engine.results import is_cached, load_result, no_nan
from costeff_same.foundations.config import StageConfig, load_profile
from costeff_same.reproduction import claims_frame, reproduction_section
from costeff_same.study import load_study, study_section, with_seed


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
    "same_vs_costeff": Section("05_same_vs_costeff", "same_vs_costeff", same_vs_costeff_config,
                               same_vs_costeff_summary),
    "defences": Section("06_defences", "defences", defences_config, defences_summary),
}


def summary(profile: str, with_study: bool = True) -> dict[str, Any]:
    """``{"profile": ..., "<section>": {...} or {"status": "not run"}, "reproduction": {...}}``.

    Args:
        profile: the parameter profile.
        with_study: where a seed study of ``profile`` is cached, add its ``study`` section
            (per-seed values of the headline figures) and judge each claim on every seed.
    """
    out = chapter_sections(load_profile(profile))
    study = load_study(profile) if with_study else None
    per_seed = None
    if study is not None:
        per_seed = {seed: chapter_sections(load_profile(profile), seed) for seed in study["seeds"]}
        out["study"] = study_section(per_seed)
    # undefined figures (nan: no example) are null, so the output is strict JSON
    return no_nan({"profile": profile, **out, "reproduction": reproduction_section(out, per_seed)})


def chapter_sections(params: dict[str, Any], seed: int | None = None,
                     only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every chapter's section from the cache, ``{"status": "not run"}`` where it is not cached.

    Args:
        params: the profile's notebook parameters, by chapter.
        seed: run every chapter with this seed instead of the profile's (a seed study).
        only: these sections only (keys of :data:`SECTIONS`).
    """
    out: dict[str, Any] = {}
    for key, section in SECTIONS.items():
        if only is not None and key not in only:
            continue
        config = section.build(**with_seed(params.get(section.chapter, {}), seed))
        if is_cached(section.result_name, config):
            out[key] = {"status": "done", **section.summarize(load_result(section.result_name, config))}
        else:
            out[key] = {"status": "not run", "config_hash": config.config_hash()}
    return out


def seed_spread(profile: str, key: str) -> dict[str, Any] | None:
    """The seed study's values of section ``key``'s headline figures under ``profile`` (the
    ``study`` section's entry), or None when no study of ``profile`` is cached."""
    study = load_study(profile)
    if study is None:
        return None
    params = load_profile(profile)
    return study_section({seed: chapter_sections(params, seed, (key,)) for seed in study["seeds"]}).get(key)


def seed_study(profile: str, key: str) -> tuple[str, pd.DataFrame | None]:
    """What a chapter says about seeds: a sentence, and :func:`seed_spread` as a table (one
    row per headline figure: mean, sample sd, min, max, seeds and each seed's value; None
    without a seed study of ``profile``)."""
    spread = seed_spread(profile, key)
    if not spread:
        return f"One seed: no seed study of profile {profile} is cached (make study runs one).", None
    rows = {name: {"mean": f["mean"], "sd": f["sd"], "min": f["min"], "max": f["max"], "seeds": f["seeds"],
                   **{f"seed {k}": v for k, v in f["values"].items()}} for name, f in spread.items()}
    table = pd.DataFrame(rows).T
    return (f"The seed study's {int(table['seeds'].max())} seeds: each headline figure's mean, sample "
            "standard deviation and range (each seed's values read from the cache).", table)


def chapter_closing(profile: str, key: str, section: dict[str, Any]) -> tuple[dict[str, str], pd.DataFrame,
                                                                             pd.DataFrame | None]:
    """What every chapter ends with: its claims judged (:func:`~costeff_same.reproduction.claims_frame`)
    and its figures across seeds (:func:`seed_study`).

    Returns:
        The values to glue (``claim_<key>``: each claim's verdict; ``claims_tally``: how many
        claims got each verdict, "2 reproduced, 1 not reproduced"; ``seed_note``), the claims
        table and the seed table (None without a seed study).
    """
    claims = claims_frame(key, section)
    note, seeds = seed_study(profile, key)
    tally = ", ".join(f"{n} {verdict}" for verdict, n in claims["verdict"].value_counts().items())
    return ({**{f"claim_{k}": v for k, v in claims["verdict"].items()}, "claims_tally": tally or "no claim",
             "seed_note": note}, claims, seeds)


def accuracy_attack_rows(profile: str) -> list[dict[str, Any]] | None:
    """Chapter 3's (victim, recipe) figures under ``profile``, from the cache only (None: not run).

    Reads the chapter record when it is cached, else whichever (victim, recipe) units are
    (chapter 4 sets SAME beside them), with their Holm-corrected shift verdicts.
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
                if is_cached("recipe_attack", unit):
                    rows.append(unit_row(name, value, run_recipe_unit(unit)))
    return with_shift_verdicts(rows) or None
