"""The seed study: every chapter's stages once per seed, and the spread of the headline figures.

``costeff-same study --profile default --seeds 0 1 2`` (``make study``) runs chapters 1-6
under the profile with each seed (:func:`with_seed`: chapters 1 and 2 train with it;
chapters 3 to 6 attack that seed's models and draw their sentences and random choices with
it), every stage of every seed on one stage graph (:func:`study_graph`). Every stage is
cached as its own entry (a seed is part of every config), so a study resumes where it
stopped and seed 0 of ``make book`` is shared. The study's aggregate record
(``results/study/<profile>.json``, written atomically) lists the seeds that finished and
their wall time; the values themselves are always read back from the cache, so a figure is
never taken from code that has changed since (:func:`study_section`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from costeff_same.chapters.accuracy_attacks import accuracy_attacks_config, accuracy_attacks_graph, run_accuracy_attacks
from costeff_same.chapters.costeff import costeff_config, costeff_graph, run_costeff
from costeff_same.chapters.defences import defences_config, defences_graph, run_defences
from costeff_same.chapters.multi_exit import multi_exit_config, multi_exit_graph, run_multi_exit
from costeff_same.chapters.same import run_same, same_config, same_graph
from costeff_same.chapters.same_vs_costeff import run_same_vs_costeff, same_vs_costeff_config, same_vs_costeff_graph
from costeff_same.engine.parallel import Task, run_graph
from costeff_same.engine.results import atomic_write_json, is_cached
from costeff_same.foundations.config import ConfigError, load_profile
from costeff_same.foundations.paths import results_dir


@dataclass(frozen=True)
class Chapter:
    """How the study runs one chapter: its config builder (from the notebook's flat
    parameters), its runner (the cached record), its stage graph (:mod:`costeff_same.engine.parallel`)
    and the stage name of its record."""

    config: Callable[..., Any]
    run: Callable[[Any], dict[str, Any]]
    graph: Callable[[Any], dict[str, Task]]
    stage: str


#: ``{chapter: Chapter}``: what one seed of the study runs, in order
RUNNERS: dict[str, Chapter] = {
    "01_multi_exit": Chapter(multi_exit_config, run_multi_exit, multi_exit_graph, "multi_exit"),
    "02_costeff": Chapter(costeff_config, run_costeff, costeff_graph, "costeff"),
    "03_accuracy_attacks": Chapter(accuracy_attacks_config, run_accuracy_attacks, accuracy_attacks_graph,
                                   "accuracy_attacks"),
    "04_same": Chapter(same_config, run_same, same_graph, "same"),
    "05_same_vs_costeff": Chapter(same_vs_costeff_config, run_same_vs_costeff, same_vs_costeff_graph,
                                  "same_vs_costeff"),
    "06_defences": Chapter(defences_config, run_defences, defences_graph, "defences"),
}


def with_seed(params: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """A chapter's notebook parameters with every seed set to ``seed`` (None: unchanged).

    Chapters that attack chapter 1's victims (they have ``victim_profile``) also attack the
    victims trained with ``seed`` (``victim_seed``).
    """
    if seed is None:
        return dict(params)
    out = {**params, "seed": seed}
    if "victim_profile" in params:
        out["victim_seed"] = seed
    return out


def study_path(profile: str) -> Path:
    """Where the aggregate record of ``profile``'s seed study lives."""
    return results_dir() / "study" / f"{profile}.json"


def load_study(profile: str) -> dict[str, Any] | None:
    """The aggregate record of ``profile``'s seed study (None: no study has finished a seed)."""
    path = study_path(profile)
    return json.loads(path.read_text()) if path.exists() else None


def chapters_graph(params: dict[str, dict[str, Any]]) -> dict[str, Task]:
    """Every stage of the chapters of ``params`` (``{chapter: its notebook parameters}``) as
    one graph: the union of the chapters' graphs, in which a stage shared by two chapters
    (chapter 1's victims, say) is one task. A chapter's record that times inference runs
    alone (:attr:`costeff_same.engine.parallel.Task.exclusive`); every other stage runs
    beside the others, across the chapters' boundaries. A chapter whose record is cached
    needs none of its stages and adds none.

    Raises:
        ConfigError: for a chapter without a stage graph (the accepted ones are listed) or a
            bad parameter.
    """
    unknown = [c for c in params if c not in RUNNERS]
    if unknown:
        raise ConfigError(f"no stage graph for chapter(s) {unknown}; accepted: {', '.join(RUNNERS)}")
    graph: dict[str, Task] = {}
    for chapter, values in params.items():
        spec = RUNNERS[chapter]
        cfg = spec.config(**values)
        if not is_cached(spec.stage, cfg):
            graph |= spec.graph(cfg)
    return graph


def study_graph(profile: str, seeds: list[int], chapters: list[str]) -> dict[str, Task]:
    """Every stage of ``chapters`` under ``profile`` for every seed, as one graph
    (:func:`chapters_graph` of each seed's parameters)."""
    params = load_profile(profile)
    graph: dict[str, Task] = {}
    for seed in seeds:
        graph |= chapters_graph({chapter: with_seed(params.get(chapter, {}), seed) for chapter in chapters})
    return graph


def run_study(profile: str, seeds: list[int], chapters: list[str] | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``chapters`` (default: all of :data:`RUNNERS`) under ``profile`` once per seed.

    Every stage of every seed and chapter runs on one graph (:func:`study_graph`), on the
    executor of the run settings (:mod:`costeff_same.foundations.runtime`: a local pool, or a
    Dask cluster); then each seed's chapter records are read back in order and the
    aggregate record is written. Running it again resumes from the cache.

    Raises:
        ConfigError: for no seeds, a negative seed, or an unknown chapter (the accepted
            ones are listed).
    """
    chapters = list(RUNNERS) if chapters is None else chapters
    unknown = [c for c in chapters if c not in RUNNERS]
    if unknown or not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"a study needs seeds >= 0 (got {seeds}) and chapters from {', '.join(RUNNERS)} "
                          f"(unknown: {unknown})")
    params = load_profile(profile)
    record = load_study(profile) or {"profile": profile, "seeds": [], "seconds": {}}
    started = time.perf_counter()
    graph = study_graph(profile, seeds, chapters)
    log(f"study {profile}: seeds {seeds}, {len(graph)} stages on one graph ...")
    run_graph(graph)
    record["graph_seconds"] = time.perf_counter() - started
    for seed in seeds:
        seconds = {}
        for chapter in chapters:
            spec = RUNNERS[chapter]
            t0 = time.perf_counter()
            spec.run(spec.config(**with_seed(params.get(chapter, {}), seed)))
            seconds[chapter] = time.perf_counter() - t0
        record["seeds"] = sorted(set(record["seeds"]) | {seed})
        record["seconds"][str(seed)] = seconds
        record["chapters"] = chapters
        atomic_write_json(study_path(profile), record)
    record["wall_seconds"] = time.perf_counter() - started
    atomic_write_json(study_path(profile), record)
    return record


def _records(section: dict[str, Any], value: str) -> dict[str, Any]:
    return {f"{r['victim']}/{r['recipe']}": r.get(value) for r in section.get("records", [])}


#: the headline figures whose spread over seeds the study reports: ``{name: reader}``; a
#: reader maps one seed's summary sections to ``{figure: value}``
HEADLINES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "multi_exit": lambda s: {f"{v} {k}": s[v]["operating_point"][k] for v in ("entropy", "patience") if v in s
                             for k in ("accuracy", "speedup")} | {"final_exit_accuracy": s["final_exit_accuracy"]},
    "costeff": lambda s: {"retention": s["retention"], "costeff_final_exit_accuracy": s["costeff_final_exit_accuracy"],
                          "teacher_accuracy": s["teacher_accuracy"]}
    | {f"vs {b['baseline']}": (b["costeff"] or {}).get("metric", np.nan) - b["baseline_accuracy"]
       for b in s["matched_budgets"]},
    "accuracy_attacks": lambda s: {f"reduction {k}": v for k, v in _records(s, "efficiency_gain_reduction").items()},
    "same": lambda s: {"mean_efficiency_gain_reduction": s["mean_efficiency_gain_reduction"]}
    | {f"reduction {v}": s[v]["efficiency_gain_reduction"] for v in ("entropy", "patience") if v in s},
    "same_vs_costeff": lambda s: {f"reduction {name}/{attack}": row["efficiency_gain_reduction"]
                                  for name, v in s["victims"].items() for attack, row in v["attacks"].items()}
    | {f"saving that survives {attack}": (d.get("saving_survives") or {}).get("estimate", np.nan)
       for attack, d in s["deployer"].items()},
    "defences": lambda s: {f"adaptive reduction {name}/{d}": v[d]["adaptive"]["efficiency_gain_reduction"]["estimate"]
                           for name, v in s["victims"].items() for d in s["defences"]}
    | {f"accuracy loss {name}/{d}": v[d]["clean_accuracy_loss"]["estimate"]
       for name, v in s["victims"].items() for d in s["defences"]},
}


def study_section(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The ``study`` section of the summary: each headline figure on every seed that is cached.

    Args:
        per_seed: ``{seed: the chapter sections of that seed}``.

    Returns:
        ``seeds`` and, per chapter, ``{figure: {"values": {seed: value}, "mean", "sd" (sample
        standard deviation; None for one seed), "min", "max", "seeds"}}``.
    """
    out: dict[str, Any] = {"seeds": sorted(per_seed)}
    for chapter, read in HEADLINES.items():
        values: dict[str, dict[str, float]] = {}
        for seed, sections in sorted(per_seed.items()):
            section = sections.get(chapter, {})
            if section.get("status") != "done":
                continue
            for name, value in read(section).items():
                if value is not None and np.isfinite(value):
                    values.setdefault(name, {})[str(seed)] = float(value)
        out[chapter] = {name: {"values": v, "mean": float(np.mean(list(v.values()))),
                               "sd": float(np.std(list(v.values()), ddof=1)) if len(v) > 1 else None,
                               "min": min(v.values()), "max": max(v.values()), "seeds": len(v)}
                        for name, v in values.items()}
    return out
