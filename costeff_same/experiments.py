"""Experiments: config in, result record out (each cached by :func:`costeff_same.results.load_or_run`).

Chapter 1 (multi-exit BERT and exit policies, papers.md section 3):

- :func:`trained_model`: fine-tune one multi-exit model (cached with its weights).
- :func:`run_multi_exit`: the DeeBERT-style victim (two-stage training, entropy exit) and
  the PABEE-style victim (weighted training, patience exit): per-exit accuracy, threshold
  and patience sweeps, each one's operating point (chosen on the validation split: the
  fastest setting whose validation metric is within ``tolerance`` of its last exit's),
  measured FLOPs and batched wall-clock at the operating point.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .backbones import load_backbone, load_tokenizer
from .config import (
    DATA_KEYS,
    ConfigError,
    DataConfig,
    StageConfig,
    TrainConfig,
    TrainedModelConfig,
    check_parameters,
    pick,
)
from .data import Encoded, TaskData, load_task, subsample
from .exits import ExitPolicy, early_exit_forward, simulate_exits
from .metrics import (
    count_parameters,
    exit_stats,
    flops_per_example,
    per_exit_metric,
    predictions_of,
    task_metric,
    time_inference,
)
from .modeling import MultiExitBertForSequenceClassification, from_backbone
from .results import load_or_run
from .training import collect_exit_logits, set_threads, train

VICTIMS = ("entropy", "patience")


# -- data --------------------------------------------------------------------------------

def prepared_data(cfg: DataConfig, tokenizer) -> tuple[TaskData, dict[str, Encoded]]:
    """Load, subsample and encode the task's three splits."""
    task = load_task(cfg.task, cfg.seed, cfg.data_file)
    sizes = {"train": cfg.train_size, "validation": cfg.eval_size, "test": cfg.eval_size}
    encoded = {split: Encoded(subsample(task.splits[split], sizes[split], cfg.seed), tokenizer, cfg.max_length)
               for split in ("train", "validation", "test")}
    return task, encoded


# -- one trained model ----------------------------------------------------------------------

def _train_model(cfg: TrainedModelConfig, workdir: Path) -> dict[str, Any]:
    set_threads()
    backbone = load_backbone(cfg.train.backbone, seed=cfg.train.seed)
    task, data = prepared_data(cfg.data, backbone.tokenizer)
    model = from_backbone(backbone.model, task.num_labels, cfg.train.exit_style, cfg.train.gradient_equilibrium,
                          seed=cfg.train.seed, exit_pooling=cfg.train.exit_pooling)
    history = train(model, data["train"], cfg.train, workdir)
    model.save_pretrained(workdir / "model")
    backbone.tokenizer.save_pretrained(workdir / "model")
    return {
        "task": task.name, "metric": task.metric, "num_labels": task.num_labels,
        "split": task.split_record, "truncated": {s: d.truncated for s, d in data.items()},
        "examples": {s: len(d) for s, d in data.items()}, "history": history,
    }


def trained_model(cfg: TrainedModelConfig) -> tuple[MultiExitBertForSequenceClassification, dict[str, Any]]:
    """The fine-tuned model of ``cfg`` (trained once, then loaded from the cache) and its record."""
    record = load_or_run("model", cfg, _train_model, seed=cfg.train.seed)
    path = Path(record["_entry"]) / "work" / "model"
    model = MultiExitBertForSequenceClassification.from_pretrained(path).eval()
    return model, record


# -- chapter 1 -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MultiExitExperimentConfig(StageConfig):
    """Chapter 1: the two victims and how they are evaluated.

    Attributes:
        entropy_model: the DeeBERT-style model (``deebert`` heads, ``two_stage``).
        patience_model: the PABEE-style model (``pabee`` heads, ``weighted``).
        data: the task.
        entropy_thresholds: entropy thresholds (nats) of the sweep.
        patience_values: patience values of the sweep.
        tolerance: an operating point may lose at most this much validation metric
            against its model's last exit (0.01 = 1 point).
        timing_examples_batch1: examples timed at batch 1.
        timing_batch_size: the batch size of the batched wall-clock measurement.
    """

    data: DataConfig
    entropy_model: TrainConfig
    patience_model: TrainConfig
    entropy_thresholds: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(14))
    patience_values: tuple[int, ...] = (1, 2, 3, 4, 5)
    tolerance: float = 0.01
    timing_examples_batch1: int = 200
    timing_batch_size: int = 64

    def victim(self, name: str) -> TrainedModelConfig:
        """The trained-model config of victim ``entropy`` or ``patience``."""
        if name not in VICTIMS:
            raise ConfigError(f"unknown victim {name!r}; accepted: {', '.join(VICTIMS)}")
        return TrainedModelConfig(self.data, self.entropy_model if name == "entropy" else self.patience_model)

    def policy_values(self, name: str) -> tuple[float, ...]:
        """The sweep of victim ``name``'s policy."""
        return self.entropy_thresholds if name == "entropy" else tuple(float(p) for p in self.patience_values)


CHAPTER1_PARAMETERS = {
    "task": str, "data_file": (str, type(None)), "backbone": str, "seed": int, "max_length": int,
    "train_size": (int, type(None)), "eval_size": (int, type(None)), "epochs": int, "exit_epochs": int,
    "batch_size": int, "learning_rate": float, "exit_learning_rate": float, "exit_pooling": str,
    "entropy_thresholds": list, "patience_values": list, "tolerance": float,
    "timing_examples_batch1": int, "timing_batch_size": int,
}


def multi_exit_config(**params: Any) -> MultiExitExperimentConfig:
    """Build chapter 1's config from the notebook's flat parameters.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed) or a value of
            the wrong type.
    """
    check_parameters(params, CHAPTER1_PARAMETERS)
    p = dict(params)
    data = DataConfig.from_dict(pick(p, DATA_KEYS))
    common = pick(p, ("backbone", "seed", "batch_size", "learning_rate", "epochs", "exit_pooling"))
    entropy = TrainConfig.from_dict({**common, "exit_style": "deebert", "regime": "two_stage",
                                     **pick(p, ("exit_epochs", "exit_learning_rate"))})
    patience = TrainConfig.from_dict({**common, "exit_style": "pabee", "regime": "weighted"})
    rest = pick(p, ("entropy_thresholds", "patience_values", "tolerance", "timing_examples_batch1",
                    "timing_batch_size"))
    return MultiExitExperimentConfig.from_dict({"data": data, "entropy_model": entropy,
                                                "patience_model": patience, **rest})


def sweep(exit_logits: np.ndarray, labels: np.ndarray, metric: str, policy: str,
          values: tuple[float, ...]) -> list[dict[str, Any]]:
    """Metric and efficiency of ``policy`` at every value (path (a), simulated)."""
    depth = exit_logits.shape[0]
    rows = []
    for value in values:
        decision = simulate_exits(exit_logits, ExitPolicy(policy, value))
        stats = exit_stats(decision.exit_layer, depth)
        rows.append({"policy": policy, "value": value,
                     "metric": task_metric(metric, decision.predictions, labels), **stats})
    return rows


def operating_point(val_sweep: list[dict], final_val: float, tolerance: float) -> dict[str, Any]:
    """The fastest sweep row whose validation metric is within ``tolerance`` of ``final_val``."""
    ok = [r for r in val_sweep if r["metric"] >= final_val - tolerance]
    if not ok:  # keep the most accurate setting rather than fail
        ok = [max(val_sweep, key=lambda r: r["metric"])]
    return max(ok, key=lambda r: (r["speedup"], r["metric"]))


def evaluate_victim(model: MultiExitBertForSequenceClassification, data: dict[str, Encoded], metric: str,
                    policy: str, values: tuple[float, ...], tolerance: float,
                    timing_batch1: int, timing_batch: int) -> dict[str, Any]:
    """Per-exit metric, sweeps, operating point, FLOPs and wall-clock of one victim."""
    depth = model.num_layers
    val_logits = collect_exit_logits(model, data["validation"])
    test_logits = collect_exit_logits(model, data["test"])
    val_exits = per_exit_metric(metric, val_logits, data["validation"].labels)
    test_exits = per_exit_metric(metric, test_logits, data["test"].labels)
    val_sweep = sweep(val_logits, data["validation"].labels, metric, policy, values)
    test_sweep = sweep(test_logits, data["test"].labels, metric, policy, values)
    chosen = operating_point(val_sweep, val_exits[-1], tolerance)
    policy_obj = ExitPolicy(policy, chosen["value"])
    decision = simulate_exits(test_logits, policy_obj)
    test_point = next(r for r in test_sweep if r["value"] == chosen["value"])
    lengths = data["test"].lengths
    flops_full = flops_per_example(model, lengths)
    flops_exit = flops_per_example(model, lengths, decision.exit_layer)
    agreement = paths_agreement(model, data["test"], policy_obj, decision, timing_batch)
    timing = {}
    for batch_size, limit in ((1, timing_batch1), (timing_batch, None)):
        full = time_inference(model, data["test"], batch_size, None, limit)
        early = time_inference(model, data["test"], batch_size, policy_obj, limit)
        timing[str(batch_size)] = {"full": full, "early_exit": early,
                                   "wallclock_speedup": full["seconds"] / early["seconds"]}
    return {
        "policy": policy, "depth": depth,
        "per_exit_validation": val_exits, "per_exit_test": test_exits,
        "final_exit_metric": test_exits[-1],
        "sweep_validation": val_sweep, "sweep_test": test_sweep,
        "operating_point": {
            "policy": policy, "value": chosen["value"], "validation_metric": chosen["metric"],
            "metric": test_point["metric"], "mean_exit_layer": test_point["mean_exit_layer"],
            "speedup": test_point["speedup"], "efficiency_gain": test_point["efficiency_gain"],
            "histogram": test_point["histogram"], "flops_per_example": flops_exit,
            "full_flops_per_example": flops_full,
        },
        "paths_agreement": agreement,
        "test_exit_layer": decision.exit_layer.tolist(),
        "test_predictions": predictions_of(decision.logits).tolist(),
        "timing": timing,
        "parameters": count_parameters(model), "parameters_without_embeddings": count_parameters(model, False),
    }


def paths_agreement(model: MultiExitBertForSequenceClassification, data: Encoded, policy: ExitPolicy,
                    decision, batch_size: int) -> dict[str, float]:
    """Share of examples on which batched early exit (path (b)) matches the simulation (path (a)).

    Returns:
        ``{"exit_layer": fraction, "prediction": fraction}`` (1.0 means every example agrees).
    """
    layers = np.zeros(len(data), dtype=np.int64)
    preds = np.zeros(len(data), dtype=decision.predictions.dtype)
    for idx, batch in data.eval_batches(batch_size):
        out = early_exit_forward(model, batch["input_ids"], batch["attention_mask"], policy,
                                 batch.get("token_type_ids"))
        layers[idx] = out.exit_layer.numpy()
        preds[idx] = predictions_of(out.logits.numpy())
    return {"exit_layer": float(np.mean(layers == decision.exit_layer)),
            "prediction": float(np.mean(preds == decision.predictions))}


def _run_multi_exit(cfg: MultiExitExperimentConfig, workdir: Path) -> dict[str, Any]:
    set_threads()
    tokenizer = load_tokenizer(cfg.entropy_model.backbone)
    task, data = prepared_data(cfg.data, tokenizer)
    victims = {}
    for name in VICTIMS:
        model, record = trained_model(cfg.victim(name))
        victims[name] = {
            "exit_style": model.config.exit_style, "regime": cfg.victim(name).train.regime,
            "history": record["history"],
            **evaluate_victim(model, data, task.metric, name, cfg.policy_values(name), cfg.tolerance,
                              cfg.timing_examples_batch1, cfg.timing_batch_size),
        }
    return {
        "task": task.name, "metric": task.metric, "backbone": cfg.entropy_model.backbone,
        "num_layers": victims["entropy"]["depth"], "split": task.split_record,
        "examples": {s: len(d) for s, d in data.items()},
        "truncated": {s: d.truncated for s, d in data.items()},
        "test_labels": data["test"].labels.tolist(), "victims": victims,
    }


def run_multi_exit(cfg: MultiExitExperimentConfig) -> dict[str, Any]:
    """Chapter 1's result record (cached)."""
    return load_or_run("multi_exit", cfg, _run_multi_exit, seed=cfg.data.seed)


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
        }
    out["final_exit_accuracy"] = victims["entropy"]["final_exit_metric"]
    out["per_exit_accuracy"] = victims["entropy"]["per_exit_test"]
    return out
