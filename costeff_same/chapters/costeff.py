"""Chapter 2: COST-EFF against its baselines and ablations, at matched FLOPs (Shen et al., 2022, section 4).

The chapter presents the experiment of :mod:`costeff_same.compression.experiment`: its
config builder (:func:`costeff_config`, from the notebook's flat parameters), its cached
run (:func:`run_costeff`), its section of ``costeff-same summary --json``
(:func:`costeff_summary`) and ``costeff-same train`` (:func:`train_model`).
"""

from __future__ import annotations

from typing import Any

from costeff_same.compression.experiment import (
    COSTEFF_SCHEMA,
    PAPER_CLAIM,
    CostEffExperimentConfig,
    costeff_config,
    costeff_graph,
    run_costeff,
    static_names,
)
from costeff_same.compression.graph import stage_model
from costeff_same.compression.slenderize import shape_of
from costeff_same.core.metrics import count_parameters
from costeff_same.foundations.config import ConfigError
from costeff_same.selection import paired_test
from costeff_same.zoo import trained_model

__all__ = ["COSTEFF_SCHEMA", "PAPER_CLAIM", "CostEffExperimentConfig", "costeff_config", "costeff_graph",
           "costeff_summary", "run_costeff", "static_names", "train_model"]


def costeff_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable ``costeff`` section of ``costeff-same summary --json``."""
    models = record["models"]
    teacher, ta, costeff = models["teacher"], models["ta"], models["costeff"]

    def size(m):
        return {"parameters": m["parameters"], "parameters_without_embeddings": m["parameters_without_embeddings"],
                "deployed_parameters": m["deployed_parameters"],
                "single_exit_parameters": m["single_exit_parameters"], "flops_per_example": m["flops_per_example"]}

    wins = [r["baseline"] for r in record["comparisons"]
            if (r["matches"].get("costeff") or {}).get("at_least_as_accurate")]
    retention = record.get("retention_intervals", {})
    return {
        "task": record["task"], "backbone": record["backbone"], "metric": record["metric"],
        "teacher_accuracy": teacher["final_exit_metric"], "ta_accuracy": ta["final_exit_metric"],
        "costeff_final_exit_accuracy": costeff["final_exit_metric"], "retention": record["retention"],
        "intervals": {"teacher_accuracy": teacher.get("final_exit_interval"),
                      "ta_accuracy": ta.get("final_exit_interval"),
                      "costeff_final_exit_accuracy": costeff.get("final_exit_interval"),
                      "retention": retention.get("last_exit"),
                      "retention_operating_point": retention.get("operating_point")},
        "costeff_shape": costeff["shape"],
        "teacher": size(teacher), "costeff": size(costeff),
        "parameter_fraction": record["parameter_fraction"], "flops_fraction": record["flops_fraction"],
        "operating_points": {name: {"threshold": m["operating_point"]["threshold"],
                                    "accuracy": m["operating_point"]["metric"],
                                    "validation_accuracy": m["operating_point"]["validation_metric"],
                                    "flops_per_example": m["operating_point"]["flops_per_example"]}
                             for name, m in models.items()},
        "validation_final_exit_accuracy": {name: m["per_exit_validation"][-1] for name, m in models.items()},
        "ablations": {name: models[name]["final_exit_metric"] for name in ("no_ta", "final_importance")
                      if name in models},
        "ablation_tests": {name: paired_test(record["metric"], costeff["test_final_predictions"],
                                             models[name]["test_final_predictions"], record["test_labels"])
                           for name in ("no_ta", "final_importance")
                           if name in models and "test_final_predictions" in models[name]},
        "matched_budgets": [{"baseline": r["baseline"], "baseline_accuracy": r["baseline_metric"],
                             "costeff": _match_row(r["matches"].get("costeff"))} for r in record["comparisons"]],
        "budgets_costeff_at_least_as_accurate": wins,
    }


def _match_row(match: dict[str, Any] | None) -> dict[str, Any] | None:
    """One matched budget of the summary, with its paired test (difference, p-values, verdict)."""
    if match is None:
        return None
    row = {k: v for k, v in match.items() if k != "mcnemar"}
    if "mcnemar" in match:
        row.update(p_value=match["mcnemar"]["p_value"], p_holm=match["mcnemar"]["p_holm"])
    return row


def train_model(cfg: CostEffExperimentConfig, name: str) -> dict[str, Any]:
    """Train (or load from the cache) one model of the comparison; a short description of it.

    Raises:
        ConfigError: for a name that is not a model of ``cfg`` (the accepted ones are listed).
    """
    models = cfg.models()
    if name not in models:
        raise ConfigError(f"unknown model {name!r}; accepted: {', '.join(models)}")
    trained_model(cfg.teacher)
    kind, stage_cfg = models[name]
    model, record = stage_model(name, kind, stage_cfg)
    return {"model": name, "kind": kind, "config_hash": stage_cfg.config_hash(), "entry": record["_entry"],
            "shape": shape_of(model).to_dict(), "parameters": count_parameters(model),
            "parameters_without_embeddings": count_parameters(model, False),
            "seconds": record.get("seconds"), "best": record.get("best")}
