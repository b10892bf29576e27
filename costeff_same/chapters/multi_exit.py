"""Chapter 1: multi-exit BERT and exit policies (DeeBERT, Xin et al., 2020; PABEE, Zhou et al., 2020).

The chapter presents the two victims of :mod:`costeff_same.victims`: its config builder
(:func:`multi_exit_config`, from the notebook's flat parameters), its cached run
(:func:`run_multi_exit`) and its section of ``costeff-same summary --json``
(:func:`multi_exit_summary`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costeff_same.core.statistics import speedup_difference_interval
from costeff_same.selection import paired_test
from costeff_same.victims import (
    MULTI_EXIT_SCHEMA,
    MultiExitExperimentConfig,
    multi_exit_config,
    multi_exit_graph,
    run_multi_exit,
)

__all__ = ["MULTI_EXIT_SCHEMA", "MultiExitExperimentConfig", "multi_exit_config", "multi_exit_graph",
           "multi_exit_summary", "run_multi_exit"]


def multi_exit_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable chapter-1 section of ``costeff-same summary --json``."""
    victims = record["victims"]
    out = {"task": record["task"], "backbone": record["backbone"], "num_layers": record["num_layers"],
           "metric": record["metric"]}
    for name, v in victims.items():
        op = v["operating_point"]
        out[name] = {
            "exit_style": v["exit_style"], "regime": v["regime"],
            "per_exit_accuracy": v["per_exit_test"], "final_exit_accuracy": v["final_exit_metric"],
            "operating_point": {"policy": name, "threshold": op["value"], "accuracy": op["metric"],
                                "speedup": op["speedup"], "mean_exit_layer": op["mean_exit_layer"],
                                "flops_per_example": op["flops_per_example"]},
            "wallclock_speedup_batch64": v["timing"][max(v["timing"], key=int)]["wallclock_speedup"],
            "wallclock_speedup_batch1": v["timing"]["1"]["wallclock_speedup"],
            "validation_accuracy": op["validation_metric"],
            "validation_final_exit_accuracy": v["per_exit_validation"][-1],
            "intervals": {**op.get("intervals", {}), "final_exit_accuracy": v.get("final_exit_interval")},
        }
        if "test_final_predictions" in v:
            out[name]["against_last_exit"] = paired_test(record["metric"], v["test_predictions"],
                                                         v["test_final_predictions"], record["test_labels"])
    out["final_exit_accuracy"] = victims["entropy"]["final_exit_metric"]
    out["per_exit_accuracy"] = victims["entropy"]["per_exit_test"]
    if {"entropy", "patience"} <= set(victims) and "test_labels" in record:
        pat, ent = victims["patience"], victims["entropy"]
        out["patience_vs_entropy"] = {
            **paired_test(record["metric"], pat["test_predictions"], ent["test_predictions"], record["test_labels"]),
            "speedup_difference": speedup_difference_interval(np.asarray(pat["test_exit_layer"]),
                                                              np.asarray(ent["test_exit_layer"]), record["num_layers"]),
        }
    return out

