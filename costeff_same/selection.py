"""Threshold sweeps and the choice of an operating point, on validation, never on test.

- :func:`sweep`: the task metric and the efficiency of an exit policy at every value
  (entropy thresholds in nats, patience in layers), simulated from every exit's logits;
  with a FLOPs table, the measured FLOPs per example at each example's length and exit layer.
  Every multi-exit model's entropy sweep reaches ln C, the largest entropy of C classes,
  where every example exits at the first exit (:func:`entropy_values`).
- :func:`operating_point`: the fastest setting whose *validation* metric is within
  ``tolerance`` of the model's last exit (the rule of chapters 1 and 2; see the methods page).
- :func:`matched` and :func:`comparisons`: COST-EFF's matched-FLOPs comparison (Shen et al.,
  2022, section 4): a multi-exit model's threshold is the one with the best validation metric
  among those whose test FLOPs per example lie within a tolerance of a static model's; each
  match is a paired test on the same test sentences (:func:`paired_test`), Holm-corrected
  across the budgets.
- :func:`deployer_comparison`: COST-EFF under an attack against the static slender model of
  its width and the teacher: which costs less, and how much of its FLOPs saving survives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costeff_same import verdicts
from costeff_same.core.exits import ExitPolicy, simulate_exits
from costeff_same.core.metrics import FlopsTable, exit_stats, mean_flops, task_metric
from costeff_same.core.statistics import (
    Interval,
    bootstrap_interval,
    holm,
    mcnemar_exact,
    mean_interval,
    paired_metric_interval,
)
from costeff_same.engine.results import no_nan
from costeff_same.foundations.records import SweepRow


def entropy_values(values: tuple[float, ...], num_classes: int) -> tuple[float, ...]:
    """Entropy thresholds (nats) that reach ln C: ``values``, with ``ln(num_classes)`` added
    when the largest is below it (a sweep that stops short hides the fastest settings)."""
    top = float(np.log(num_classes))
    return tuple(values) if values and max(values) >= top else (*values, top)


def sweep(exit_logits: np.ndarray, labels: np.ndarray, metric: str, policy: str, values: tuple[float, ...],
          flops: tuple[FlopsTable, np.ndarray] | None = None, per_example: bool = False) -> list[SweepRow]:
    """One row per policy value: ``policy``, ``value``, ``metric``, the exit statistics of
    :func:`~costeff_same.core.metrics.exit_stats`, given ``flops = (table, lengths)``
    ``flops_per_example``, and with ``per_example`` the ``(N,)`` ``predictions`` and
    ``exit_layer`` lists (for paired tests on the same examples).

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
        if per_example:
            row["predictions"] = decision.predictions.tolist()
            row["exit_layer"] = decision.exit_layer.tolist()
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


def paired_test(metric: str, predictions: np.ndarray, baseline: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Model A (``predictions``) against model B (``baseline``) on the same ``(N,)`` examples.

    Returns:
        ``difference``: the paired-bootstrap 95% interval of metric(A) - metric(B);
        ``mcnemar``: the exact McNemar test of their correctness (``a_only``, ``b_only``,
        ``p_value``); ``verdict``: :func:`~costeff_same.verdicts.comparison` at that p-value.
    """
    predictions, baseline, labels = np.asarray(predictions), np.asarray(baseline), np.asarray(labels)
    difference = paired_metric_interval(metric, predictions, baseline, labels)
    test = mcnemar_exact(predictions == labels, baseline == labels)
    return {"difference": difference, "mcnemar": test, "verdict": verdicts.comparison(difference, test["p_value"])}


def comparisons(models: dict[str, dict[str, Any]], tolerance: float, metric: str,
                labels: np.ndarray) -> list[dict[str, Any]]:
    """Every static model's budget, and each multi-exit model :func:`matched` to it and tested.

    Args:
        models: ``{name: evaluation}``, each with ``kind`` (``static`` or ``multi_exit``),
            ``flops_per_example``, ``final_exit_metric``, ``test_final_predictions`` and test
            sweep rows with per-example ``predictions``.
        tolerance: a fraction of the budget.
        metric: the task metric.
        labels: ``(N,)`` test labels.

    Returns:
        One row per static model: its budget and metric, and ``matches``: ``{multi-exit
        name: matched figures with at_least_as_accurate, test_flops_ratio and the
        :func:`paired_test` against the baseline (``difference``, ``mcnemar``, ``verdict``), or
        None}``. Each multi-exit model's McNemar p-values across the budgets form one family:
        they carry Holm's adjusted ``p_holm``, and the verdict is taken at it.
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
                    ours = next(r for r in o["sweep_test"] if r["value"] == match["threshold"])["predictions"]
                    match.update(paired_test(metric, ours, m["test_final_predictions"], labels))
                row["matches"][other] = match
        rows.append(row)
    for other in {o for r in rows for o in r["matches"]}:
        family = [r["matches"][other] for r in rows if r["matches"].get(other)]
        for match, p in zip(family, holm([f["mcnemar"]["p_value"] for f in family])):
            match["mcnemar"]["p_holm"] = p
            match["verdict"] = verdicts.comparison(match["difference"], p)
    return rows


def _ratio_of_means(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(b, axis=axis) / np.mean(a, axis=axis)


def deployer_comparison(costeff: dict[str, Any], static: dict[str, list[float]]) -> dict[str, Any]:
    """COST-EFF under one attack against the static slender model of its width and the teacher.

    On the same sentences (the attack's texts against COST-EFF, each at its own length):

    - ``static_minus_costeff_clean`` / ``_adv``: the paired interval of the static model's
      FLOPs minus COST-EFF's per example, and :func:`~costeff_same.verdicts.comparison`'s verdict
      (``beats``: COST-EFF costs less);
    - the same against the teacher (``teacher_minus_costeff_*``);
    - ``saving_survives``: the share of COST-EFF's FLOPs saving over the static model that is
      left under attack, ``mean(static_adv - costeff_adv) / mean(static_clean - costeff_clean)``,
      with its interval (each sentence's clean and adversarial saving resampled as a pair);
    - ``worst_case_ratio``: COST-EFF's FLOPs with every layer and exit over the static
      model's, at the adversarial texts' lengths (above 1: its worst case costs more);
    - ``static_clean_accuracy``, ``static_adv_accuracy`` and the teacher's: the fixed
      models' accuracy on the same clean and adversarial texts (transferred, for them).

    Args:
        costeff: COST-EFF's measured attack (``clean_flops``, ``adv_flops``, ``worst_case_flops``).
        static: ``static_clean_flops``, ``static_adv_flops``, ``teacher_clean_flops``,
            ``teacher_adv_flops``: ``(N,)`` FLOPs per sentence of the models that never exit,
            and their ``*_prediction`` ``(N,)`` at the last exit.
    """
    c = {side: np.asarray(costeff[f"{side}_flops"]) for side in ("clean", "adv")}
    out: dict[str, Any] = {}
    for who in ("static", "teacher"):
        for side in ("clean", "adv"):
            other = np.asarray(static[f"{who}_{side}_flops"])
            diff = mean_interval(other - c[side])
            out[f"{who}_minus_costeff_{side}"] = diff
            out[f"{who}_minus_costeff_{side}_verdict"] = verdicts.comparison(diff) if verdicts.finite(diff) else None
            out[f"{who}_{side}_flops"] = float(other.mean())
            out[f"costeff_over_{who}_{side}"] = float(c[side].mean() / other.mean())
    labels = np.asarray(costeff["labels"])
    for who in ("static", "teacher"):
        for side in ("clean", "adv"):
            if f"{who}_{side}_prediction" in static:
                out[f"{who}_{side}_accuracy"] = float(np.mean(np.asarray(static[f"{who}_{side}_prediction"])
                                                              == labels))
    saving_clean = np.asarray(static["static_clean_flops"]) - c["clean"]
    saving_adv = np.asarray(static["static_adv_flops"]) - c["adv"]
    survives: Interval | None = None
    if abs(saving_clean.mean()) > 0:
        survives = bootstrap_interval([saving_clean, saving_adv], _ratio_of_means)
    out["saving_survives"] = survives
    out["worst_case_ratio"] = float(costeff["worst_case_flops"] / np.mean(static["static_adv_flops"]))
    return no_nan(out)
