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

from .attacks.experiment import accuracy_attacks_config, accuracy_attacks_summary
from .attacks.same_experiment import same_config, same_summary_section
from .compression.experiment import costeff_config, costeff_summary
from .config import StageConfig, load_profile
from .experiments import multi_exit_config, multi_exit_summary
from .results import is_cached, load_result


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
