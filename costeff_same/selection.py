"""Threshold sweeps and the choice of an operating point, on validation, never on test.

- :func:`sweep`: the task metric and the efficiency of an exit policy at every value
  (entropy thresholds in nats, patience in layers), simulated from every exit's logits;
  with a FLOPs table, the measured FLOPs per example at each example's length and exit layer.
- :func:`operating_point`: the fastest setting whose *validation* metric is within
  ``tolerance`` of the model's last exit (the rule of chapters 1 and 2; see the methods page).
- :func:`matched` and :func:`comparisons`: COST-EFF's matched-FLOPs comparison (Shen et al.,
  2022, section 4): a multi-exit model's threshold is the one with the best validation metric
  among those whose test FLOPs per example lie within a tolerance of a static model's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costeff_same.core.exits import ExitPolicy, simulate_exits
from costeff_same.core.metrics import FlopsTable, exit_stats, mean_flops, task_metric
from costeff_same.foundations.records import SweepRow


def sweep(exit_logits: np.ndarray, labels: np.ndarray, metric: str, policy: str, values: tuple[float, ...],
          flops: tuple[FlopsTable, np.ndarray] | None = None) -> list[SweepRow]:
    """One row per policy value: ``policy``, ``value``, ``metric``, the exit statistics of
    :func:`~costeff_same.core.metrics.exit_stats` and, given ``flops = (table, lengths)``,
    ``flops_per_example``.

    Args:
        exit_logits: ``(L, N, C)`` every exit's logits.
        labels: ``(N,)``.
        metric: the task metric name.
        policy: ``entropy``, ``patience`` or ``maxprob``.
        values: the policy values (thresholds in nats, patience in layers).
        flops: a FLOPs table of the model and the ``(N,)`` token counts of the examples.
    """
    depth = exit_logits.shape[0]
    rows = []
    for value in values:
        decision = simulate_exits(exit_logits, ExitPolicy(policy, value))
        row = {"policy": policy, "value": float(value), "metric": task_metric(metric, decision.predictions, labels),
               **exit_stats(decision.exit_layer, depth)}
        if flops is not None:
            row["flops_per_example"] = mean_flops(flops[0], flops[1], decision.exit_layer)
        rows.append(row)
    return rows


def operating_point(val_sweep: list[SweepRow], final_val: float, tolerance: float) -> SweepRow:
    """The fastest sweep row whose validation metric is at least ``final_val - tolerance``.

    Ties in speedup go to the higher metric. When no row qualifies, the most accurate row
    is returned rather than failing.

    Args:
        val_sweep: :func:`sweep` rows on the validation split.
        final_val: the validation metric of the model's last exit.
        tolerance: the metric an operating point may lose (0.01 = 1 point).
    """
    ok = [r for r in val_sweep if r["metric"] >= final_val - tolerance]
    if not ok:
        ok = [max(val_sweep, key=lambda r: r["metric"])]
    return max(ok, key=lambda r: (r["speedup"], r["metric"]))


def matched(curve: dict[str, Any], budget: float, tolerance: float) -> dict[str, Any] | None:
    """The threshold of ``curve`` that matches a FLOPs ``budget`` (test FLOPs per example).

    Among thresholds whose test FLOPs per example are within ``tolerance`` of the budget,
    the one with the best *validation* metric (ties: fewer FLOPs); its test figures. None
    if no threshold matches.

    Args:
        curve: a model's evaluation, with ``sweep_validation`` and ``sweep_test`` rows
            carrying ``flops_per_example``.
        budget: FLOPs per example.
        tolerance: a fraction of the budget (0.1 = 10%).
    """
    test_rows = {r["value"]: r for r in curve["sweep_test"]}
    ok = [r for r in curve["sweep_validation"]
          if abs(test_rows[r["value"]]["flops_per_example"] - budget) <= tolerance * budget]
    if not ok:
        return None
    best = max(ok, key=lambda r: (r["metric"], -test_rows[r["value"]]["flops_per_example"]))
    test = test_rows[best["value"]]
    return {"threshold": best["value"], "validation_metric": best["metric"],
            "validation_flops_per_example": best["flops_per_example"],
            "metric": test["metric"], "flops_per_example": test["flops_per_example"],
            "mean_exit_layer": test["mean_exit_layer"]}


def comparisons(models: dict[str, dict[str, Any]], tolerance: float) -> list[dict[str, Any]]:
    """Every static model's budget, and each multi-exit model :func:`matched` to it.

    Args:
        models: ``{name: evaluation}``, each with ``kind`` (``static`` or ``multi_exit``),
            ``flops_per_example`` and ``final_exit_metric``.
        tolerance: a fraction of the budget.

    Returns:
        One row per static model: its budget and metric, and ``matches``: ``{multi-exit
        name: matched figures with at_least_as_accurate and test_flops_ratio, or None}``.
    """
    rows = []
    for name, m in models.items():
        if m["kind"] != "static":
            continue
        budget = m["flops_per_example"]
        row = {"baseline": name, "budget_flops": budget, "baseline_metric": m["final_exit_metric"],
               "baseline_flops_per_example": m["flops_per_example"], "matches": {}}
        for other, o in models.items():
            if o["kind"] == "multi_exit":
                match = matched(o, budget, tolerance)
                if match is not None:
                    match["at_least_as_accurate"] = match["metric"] >= m["final_exit_metric"]
                    match["test_flops_ratio"] = match["flops_per_example"] / m["flops_per_example"]
                row["matches"][other] = match
        rows.append(row)
    return rows
