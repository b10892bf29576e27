"""How chapter 2 measures a compressed model (Shen et al., 2022, section 4; the methods page).

:func:`evaluate_model` gives one model's per-exit metric, parameters (with and without
embeddings, and as deployed: a static model carries no intermediate exits), FLOPs per
example measured with ``torch.utils.flop_counter`` at each example's own length and exit
layer (:func:`costeff_same.core.metrics.flops_table`), an entropy-threshold sweep, and an
operating point chosen on the validation split (:func:`costeff_same.selection.operating_point`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costeff_same.compression.slenderize import shape_of
from costeff_same.core.encoding import Encoded
from costeff_same.core.exits import predictions_of
from costeff_same.core.metrics import count_parameters, flops_table, mean_flops, per_exit_metric
from costeff_same.core.modeling import MultiExitBertForSequenceClassification
from costeff_same.core.statistics import Interval, metric_interval, paired_metric_interval
from costeff_same.engine.training import collect_exit_logits
from costeff_same.selection import entropy_values, operating_point, sweep


def deployed_parameters(model: MultiExitBertForSequenceClassification, static: bool) -> int:
    """Parameters as deployed: a static model carries only its last exit (pooler + classifier)."""
    total = count_parameters(model)
    if not static:
        return total
    last = model.num_layers - 1
    unused = 0
    for name, p in model.named_parameters():
        parts = name.split(".")
        if parts[0] == "classifiers" and int(parts[1]) != last:
            unused += p.numel()
        if parts[0] == "poolers" and model.config.exit_style == "deebert" and int(parts[1]) != last:
            unused += p.numel()
    return total - unused


def evaluate_model(model: MultiExitBertForSequenceClassification, data: dict[str, Encoded], metric: str,
                   thresholds: tuple[float, ...], static: bool, tolerance: float) -> dict[str, Any]:
    """Per-exit metric, parameters, measured FLOPs, entropy sweep and operating point of one model.

    A static model is evaluated at its last exit only (threshold 0: no early exit); a
    multi-exit model's sweep also runs ln C (every example at the first exit).
    """
    model.eval()
    val, test = data["validation"], data["test"]
    val_logits, test_logits = collect_exit_logits(model, val), collect_exit_logits(model, test)
    table = flops_table(model, np.concatenate([val.lengths, test.lengths]))
    values = (0.0,) if static else entropy_values(tuple(thresholds), test_logits.shape[-1])
    val_sweep = sweep(val_logits, val.labels, metric, "entropy", values, (table, val.lengths))
    test_sweep = sweep(test_logits, test.labels, metric, "entropy", values, (table, test.lengths), per_example=True)
    per_val = per_exit_metric(metric, val_logits, val.labels)
    per_test = per_exit_metric(metric, test_logits, test.labels)
    chosen = operating_point(val_sweep, per_val[-1], tolerance)
    test_point = next(r for r in test_sweep if r["value"] == chosen["value"])
    full = np.full(len(test), model.num_layers)
    final_predictions = predictions_of(test_logits[-1])
    shape = shape_of(model)
    single_exit = deployed_parameters(model, True)
    return {
        "kind": "static" if static else "multi_exit", "num_layers": model.num_layers,
        "exit_style": model.config.exit_style, "shape": shape.to_dict(),
        "parameters": count_parameters(model), "parameters_without_embeddings": count_parameters(model, False),
        "deployed_parameters": deployed_parameters(model, static),
        "single_exit_parameters": single_exit,
        "single_exit_parameters_without_embeddings": (single_exit - count_parameters(model)
                                                      + count_parameters(model, False)),
        "per_exit_validation": per_val, "per_exit_test": per_test, "final_exit_metric": per_test[-1],
        "final_exit_interval": metric_interval(metric, final_predictions, test.labels),
        "test_final_predictions": final_predictions.tolist(),
        "flops_per_example": mean_flops(table, test.lengths, full),
        "validation_flops_per_example": mean_flops(table, val.lengths, np.full(len(val), model.num_layers)),
        "flops_by_exit_at_mean_length": table[min(table, key=lambda n: abs(n - test.lengths.mean()))].tolist(),
        "sweep_validation": val_sweep, "sweep_test": test_sweep,
        "operating_point": {"threshold": chosen["value"], "validation_metric": chosen["metric"],
                            "metric": test_point["metric"], "mean_exit_layer": test_point["mean_exit_layer"],
                            "speedup": test_point["speedup"], "flops_per_example": test_point["flops_per_example"]},
    }


def retention_intervals(teacher: dict[str, Any], student: dict[str, Any], metric: str,
                        labels: np.ndarray) -> dict[str, Interval]:
    """COST-EFF's retention, student metric over teacher metric on the same test sentences,
    with its paired 95% interval (Shen et al., 2022: "retains 96.5%").

    Args:
        teacher: the teacher's :func:`evaluate_model` record (its last exit counts).
        student: the student's.
        metric: the task metric.
        labels: ``(N,)`` test labels.

    Returns:
        ``last_exit`` (the student's last exit) and ``operating_point`` (the student's
        early-exit operating point), each against the teacher's last exit.
    """
    point = next(r for r in student["sweep_test"] if r["value"] == student["operating_point"]["threshold"])
    reference = teacher["test_final_predictions"]
    return {"last_exit": paired_metric_interval(metric, student["test_final_predictions"], reference, labels, "ratio"),
            "operating_point": paired_metric_interval(metric, point["predictions"], reference, labels, "ratio")}
