"""How a multi-exit victim is measured: per-exit metric, sweeps, operating point, FLOPs,
wall-clock, and the agreement of the two inference paths.

Path (a) runs every layer and simulates each example's exit from the exits' logits
(:func:`costeff_same.core.exits.simulate_exits`); path (b) is batched early exit, where
rows leave the batch at their exit layer (:func:`costeff_same.core.exits.early_exit_forward`).
Both must give the same exit layers and predictions; the wall-clock speedup is measured
on path (b) (see the methods page).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from costeff_same.core.encoding import Encoded
from costeff_same.core.exits import ExitPolicy, early_exit_forward, predictions_of, simulate_exits
from costeff_same.core.metrics import count_parameters, flops_per_example, per_exit_metric, time_inference
from costeff_same.core.modeling import MultiExitBertForSequenceClassification
from costeff_same.core.statistics import efficacy_interval, exit_intervals, metric_interval
from costeff_same.engine.training import collect_exit_logits
from costeff_same.selection import entropy_values, operating_point, sweep

Model = MultiExitBertForSequenceClassification


@torch.inference_mode()
def exit_layers(model: Model, data: Encoded, policy: ExitPolicy, batch_size: int,
                early_exit: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` exit layers (1..L) and predictions of ``data``, by path (b) or path (a)."""
    layers = np.zeros(len(data), dtype=np.int64)
    preds = np.zeros(len(data), dtype=np.int64)
    for idx, batch in data.eval_batches(batch_size):
        batch.pop("labels")
        if early_exit:
            out = early_exit_forward(model, batch["input_ids"], batch["attention_mask"], policy,
                                     batch.get("token_type_ids"))
            layers[idx], preds[idx] = out.exit_layer.numpy(), predictions_of(out.logits.numpy())
        else:
            decision = simulate_exits(model(**batch).exit_logits, policy)
            layers[idx], preds[idx] = decision.exit_layer, decision.predictions
    return layers, preds


def paths_agreement(model: Model, data: Encoded, policy: ExitPolicy, batch_size: int,
                    reference: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Share of examples on which path (b) matches path (a).

    Args:
        reference: path (a)'s ``(exit layers, predictions)`` when already computed (None:
            computed here at ``batch_size``).

    Returns:
        ``{"exit_layer": fraction, "prediction": fraction}`` (1.0 means every example agrees).
    """
    layers, preds = exit_layers(model, data, policy, batch_size, early_exit=True)
    ref_layers, ref_preds = reference if reference is not None else exit_layers(model, data, policy, batch_size,
                                                                                 early_exit=False)
    return {"exit_layer": float(np.mean(layers == ref_layers)), "prediction": float(np.mean(preds == ref_preds))}


def wallclock(model: Model, data: Encoded, policy: ExitPolicy, batch_size: int, limit: int | None = None,
              repeats: int = 1) -> dict[str, Any]:
    """All layers against batched early exit at one batch size: both timings and their ratio."""
    full = time_inference(model, data, batch_size, None, limit, repeats)
    early = time_inference(model, data, batch_size, policy, limit, repeats)
    return {"full": full, "early_exit": early, "wallclock_speedup": full["seconds"] / early["seconds"]}


def evaluate_victim(model: Model, data: dict[str, Encoded], metric: str, policy: str, values: tuple[float, ...],
                    tolerance: float, timing_batch1: int, timing_batch: int) -> dict[str, Any]:
    """Per-exit metric, sweeps, operating point (on validation), FLOPs and wall-clock of one victim.

    The operating point carries 95% bootstrap ``intervals`` (test metric, mean exit layer,
    speedup, efficiency gain, efficacy; :mod:`costeff_same.core.statistics`), as does the last
    exit's test metric (``final_exit_interval``).

    Args:
        model: the victim.
        data: ``{"validation", "test"}`` encoded splits.
        metric: the task metric.
        policy: the exit policy name; ``values`` its sweep (an entropy sweep also runs ln C).
        tolerance: the validation metric the operating point may lose against the last exit.
        timing_batch1: examples timed at batch 1.
        timing_batch: the batch size of the batched timing.
    """
    val_logits = collect_exit_logits(model, data["validation"])
    test_logits = collect_exit_logits(model, data["test"])
    if policy == "entropy":
        values = entropy_values(values, test_logits.shape[-1])
    val_exits = per_exit_metric(metric, val_logits, data["validation"].labels)
    test_exits = per_exit_metric(metric, test_logits, data["test"].labels)
    val_sweep = sweep(val_logits, data["validation"].labels, metric, policy, values)
    test_sweep = sweep(test_logits, data["test"].labels, metric, policy, values)
    chosen = operating_point(val_sweep, val_exits[-1], tolerance)
    policy_obj = ExitPolicy(policy, chosen["value"])
    decision = simulate_exits(test_logits, policy_obj)
    test_point = next(r for r in test_sweep if r["value"] == chosen["value"])
    lengths = data["test"].lengths
    labels = data["test"].labels
    predictions = predictions_of(decision.logits)
    final_predictions = predictions_of(test_logits[-1])
    return {
        "policy": policy, "depth": model.num_layers,
        "per_exit_validation": val_exits, "per_exit_test": test_exits, "final_exit_metric": test_exits[-1],
        "sweep_validation": val_sweep, "sweep_test": test_sweep,
        "operating_point": {
            "policy": policy, "value": chosen["value"], "validation_metric": chosen["metric"],
            "metric": test_point["metric"], "mean_exit_layer": test_point["mean_exit_layer"],
            "speedup": test_point["speedup"], "efficiency_gain": test_point["efficiency_gain"],
            "histogram": test_point["histogram"],
            "flops_per_example": flops_per_example(model, lengths, decision.exit_layer),
            "full_flops_per_example": flops_per_example(model, lengths),
            "intervals": {"metric": metric_interval(metric, predictions, labels),
                          **exit_intervals(decision.exit_layer, model.num_layers),
                          "efficacy": efficacy_interval(decision.exit_layer, model.num_layers)},
        },
        "final_exit_interval": metric_interval(metric, final_predictions, labels),
        "paths_agreement": paths_agreement(model, data["test"], policy_obj, timing_batch,
                                           (decision.exit_layer, decision.predictions)),
        "test_exit_layer": decision.exit_layer.tolist(),
        "test_predictions": predictions.tolist(), "test_final_predictions": final_predictions.tolist(),
        "timing": {str(batch): wallclock(model, data["test"], policy_obj, batch, limit)
                   for batch, limit in ((1, timing_batch1), (timing_batch, None))},
        "parameters": count_parameters(model), "parameters_without_embeddings": count_parameters(model, False),
    }
