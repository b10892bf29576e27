"""Chapter 2: COST-EFF against its baselines and ablations, at matched FLOPs (papers.md section 1).

:func:`run_costeff` takes a :class:`CostEffExperimentConfig`, obtains every model through
its cached stage (:mod:`costeff_same.compression.pipeline`) and evaluates each one the same
way: per-exit accuracy, parameters (with and without embeddings, and as deployed: a static
model carries no intermediate exits), FLOPs per example measured with
``torch.utils.flop_counter`` (:func:`costeff_same.metrics.cumulative_flops`, each example at
its own length and exit layer), an entropy-threshold sweep, and an operating point chosen
on the validation split (chapter 1's rule).

Matched-FLOPs comparison: for every static model (the static slender models and the
depth-truncated models) the budget is its test FLOPs per example; each multi-exit model's
threshold is the one with the best *validation* metric among those whose test FLOPs per
example lie within ``budget_tolerance`` (10%) of the budget (FLOPs need no labels, so this
uses nothing of the test split but its lengths and exit layers), and its *test* metric is
reported beside the static model's.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import numpy as np

from ..config import (
    DATA_KEYS,
    ConfigError,
    DataConfig,
    StageConfig,
    TrainConfig,
    TrainedModelConfig,
    check_parameters,
    pick,
)
from ..data import Encoded
from ..exits import ExitPolicy, simulate_exits
from ..experiments import operating_point
from ..metrics import count_parameters, cumulative_flops, exit_stats, per_exit_metric, task_metric
from ..modeling import MultiExitBertForSequenceClassification
from ..parallel import Task, available_cores, run_graph
from ..results import load_or_run
from ..training import collect_exit_logits, set_threads
from .pipeline import (
    DepthConfig,
    DistillConfig,
    RecoverConfig,
    SlenderizeConfig,
    TAConfig,
    depth_model,
    is_trained,
    recovered_model,
    stage_data,
    ta_model,
    teacher_model,
)
from .slenderize import shape_of

#: the paper's claim (abstract): share of BERT-base's GLUE performance, parameter and FLOPs fractions
PAPER_CLAIM = {"retention": 0.965, "parameter_fraction": 1 / 8, "flops_fraction": 1 / 19}


@dataclasses.dataclass(frozen=True)
class CostEffExperimentConfig(StageConfig):
    """Chapter 2: every model of the comparison and how they are evaluated.

    Attributes:
        teacher: the fine-tuned teacher.
        ta: the teaching assistant.
        costeff: COST-EFF (TA -> iterative slenderization with all-exit importance -> recovery).
        no_ta: the ablation without TA (None: not run).
        final_importance: the ablation with final-exit-only importance (None: not run).
        static: static slender models trained without exits (one per shape).
        depth: depth-truncated models (one per depth).
        entropy_thresholds: the sweep (nats).
        tolerance: an operating point may lose at most this much validation metric against
            its model's last exit.
        budget_tolerance: FLOPs match when within this fraction of the budget (0.1 = 10%).
    """

    teacher: TrainedModelConfig
    ta: TAConfig
    costeff: RecoverConfig
    no_ta: RecoverConfig | None = None
    final_importance: RecoverConfig | None = None
    static: tuple[RecoverConfig, ...] = ()
    depth: tuple[DepthConfig, ...] = ()
    entropy_thresholds: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    tolerance: float = 0.01
    budget_tolerance: float = 0.1

    def __post_init__(self):
        if not self.entropy_thresholds or min(self.entropy_thresholds) < 0:
            raise ConfigError(f"entropy_thresholds={self.entropy_thresholds} must be a non-empty list of values >= 0")
        if not 0 < self.budget_tolerance < 1:
            raise ConfigError(f"budget_tolerance={self.budget_tolerance} must be in (0, 1)")

    def models(self) -> dict[str, tuple[str, StageConfig]]:
        """``{name: (kind, stage config)}`` in display order; kind is ``multi_exit`` or ``static``."""
        out: dict[str, tuple[str, StageConfig]] = {"teacher": ("multi_exit", self.teacher),
                                                   "ta": ("multi_exit", self.ta), "costeff": ("multi_exit", self.costeff)}
        if self.no_ta is not None:
            out["no_ta"] = ("multi_exit", self.no_ta)
        if self.final_importance is not None:
            out["final_importance"] = ("multi_exit", self.final_importance)
        for s in self.static:
            out[f"static_h{s.slenderize.heads}"] = ("static", s)
        for d in self.depth:
            out[f"depth_{d.layers}"] = ("static", d)
        return out


CHAPTER2_PARAMETERS = {
    "task": str, "data_file": (str, type(None)), "backbone": str, "seed": int, "max_length": int,
    "train_size": (int, type(None)), "eval_size": (int, type(None)), "batch_size": int,
    "teacher_epochs": int, "teacher_exit_epochs": int, "teacher_learning_rate": float,
    "teacher_exit_learning_rate": float, "exit_pooling": str,
    "ta_init": str, "ta_representation_epochs": float, "ta_prediction_epochs": float, "ta_learning_rate": float,
    "temperature": float, "hidden_weight": float, "cache_teacher": bool,
    "target_heads": int, "target_ffn": int, "target_embedding_rank": (int, type(None)),
    "importance_examples": (int, type(None)), "event_epochs": float, "representation_fraction": float,
    "slender_learning_rate": float, "lr_growth": float,
    "recovery_representation_epochs": float, "recovery_prediction_epochs": float, "evaluations": int,
    "static_heads": list, "depth_layers": list, "depth_epochs": float, "ablations": bool,
    "entropy_thresholds": list, "tolerance": float, "budget_tolerance": float,
}


def costeff_config(**params: Any) -> CostEffExperimentConfig:
    """Build chapter 2's config from the notebook's flat parameters.

    The teacher is built exactly as chapter 1's DeeBERT-style model (``two_stage``,
    ``deebert`` exits, the same ``exit_pooling``), so equal settings share one cached
    teacher; the TA and every COST-EFF model pool their exits the same way. Static slender models
    at ``h`` heads get FFN ``target_ffn * h / target_heads`` and embedding rank
    ``target_embedding_rank * h / target_heads`` and the same schedule as COST-EFF.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed) or a value of
            the wrong type.
    """
    check_parameters(params, CHAPTER2_PARAMETERS)
    p = dict(params)
    data = DataConfig.from_dict(pick(p, DATA_KEYS))
    renames = {"teacher_epochs": "epochs", "teacher_exit_epochs": "exit_epochs",
               "teacher_learning_rate": "learning_rate", "teacher_exit_learning_rate": "exit_learning_rate"}
    train = TrainConfig.from_dict({"exit_style": "deebert", "regime": "two_stage",
                                   **pick(p, ("backbone", "seed", "batch_size", "exit_pooling")),
                                   **{new: p[old] for old, new in renames.items() if old in p}})
    teacher = TrainedModelConfig(data, train)
    optim = pick(p, ("batch_size", "seed", "temperature", "hidden_weight", "cache_teacher"))
    ta_optim = DistillConfig.from_dict({**optim, **({"learning_rate": p["ta_learning_rate"]}
                                                    if "ta_learning_rate" in p else {})})
    ta = TAConfig.from_dict({
        "teacher": teacher, "optim": ta_optim,
        **{new: p[old] for old, new in (("ta_init", "init"), ("ta_representation_epochs", "representation_epochs"),
                                        ("ta_prediction_epochs", "prediction_epochs")) if old in p}})
    slender_optim = DistillConfig.from_dict({**optim, **({"learning_rate": p["slender_learning_rate"]}
                                                         if "slender_learning_rate" in p else {})})
    shape = {new: p[old] for old, new in (("target_heads", "heads"), ("target_ffn", "ffn"),
                                          ("target_embedding_rank", "embedding_rank")) if old in p}
    schedule = pick(p, ("importance_examples", "event_epochs", "representation_fraction", "lr_growth"))
    recovery = {new: p[old] for old, new in (("recovery_representation_epochs", "representation_epochs"),
                                             ("recovery_prediction_epochs", "prediction_epochs"),
                                             ("evaluations", "evaluations")) if old in p}

    def recover(**slender: Any) -> RecoverConfig:
        sc = SlenderizeConfig.from_dict({"teacher": teacher, "optim": slender_optim, **shape, **schedule, **slender})
        return RecoverConfig.from_dict({"slenderize": sc, **recovery})

    costeff = recover(ta=ta, evaluate_events=True)
    ablations = p.get("ablations", True)
    heads = shape.get("heads", SlenderizeConfig.heads)
    ffn = shape.get("ffn", SlenderizeConfig.ffn)
    rank = shape.get("embedding_rank", SlenderizeConfig.embedding_rank)
    static = []
    for h in p.get("static_heads", [heads]):
        if not isinstance(h, int) or isinstance(h, bool) or h < 1:
            raise ConfigError(f"static_heads entry {h!r} must be an integer >= 1")
        static.append(recover(ta=None, exits="final", importance="final_exit", heads=h,
                              ffn=max(1, round(ffn * h / heads)),
                              embedding_rank=None if rank is None else max(1, round(rank * h / heads))))
    depth_optim = DistillConfig.from_dict({**optim, **({"learning_rate": p["ta_learning_rate"]}
                                                       if "ta_learning_rate" in p else {})})
    depth = []
    for k in p.get("depth_layers", [1]):
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"depth_layers entry {k!r} must be an integer >= 1")
        depth.append(DepthConfig.from_dict({
            "teacher": teacher, "optim": depth_optim, "layers": k,
            **({"prediction_epochs": p["depth_epochs"]} if "depth_epochs" in p else {}),
            **({"evaluations": p["evaluations"]} if "evaluations" in p else {})}))
    rest = pick(p, ("entropy_thresholds", "tolerance", "budget_tolerance"))
    return CostEffExperimentConfig.from_dict({
        "teacher": teacher, "ta": ta, "costeff": costeff,
        "no_ta": recover(ta=None) if ablations else None,
        "final_importance": recover(ta=ta, importance="final_exit") if ablations else None,
        "static": tuple(static), "depth": tuple(depth), **rest,
    })


# -- evaluation ----------------------------------------------------------------------------------

def flops_table(model: MultiExitBertForSequenceClassification, lengths: np.ndarray) -> dict[int, np.ndarray]:
    """``{seq_len: (L,) FLOPs through exit k}`` for every distinct length, from measured counts.

    FLOPs at batch 1 are a polynomial of degree at most 2 in the sequence length (linear
    layers grow with ``n``, attention scores with ``n**2``, exits are constant), so the
    counts measured by ``torch.utils.flop_counter`` at three lengths determine every other
    length exactly. A fourth measured length checks the interpolation; if it does not
    agree to the FLOP, every length is measured instead.
    """
    distinct = [int(n) for n in np.unique(lengths)]
    if len(distinct) <= 4:
        return {n: cumulative_flops(model, n) for n in distinct}
    probes = [distinct[0], distinct[len(distinct) // 2], distinct[-1]]
    check = distinct[len(distinct) // 4]
    measured = {n: cumulative_flops(model, n) for n in probes + [check]}
    x = np.asarray(probes, dtype=np.float64)
    coeffs = [np.polyfit(x, np.asarray([measured[n][k] for n in probes], dtype=np.float64), 2)
              for k in range(model.num_layers)]

    def interpolate(n: int) -> np.ndarray:
        return np.asarray([round(float(np.polyval(c, n))) for c in coeffs], dtype=np.int64)

    if not np.array_equal(interpolate(check), measured[check]):
        return {n: cumulative_flops(model, n) for n in distinct}
    return {n: measured[n] if n in measured else interpolate(n) for n in distinct}


def mean_flops(table: dict[int, np.ndarray], lengths: np.ndarray, exit_layer: np.ndarray) -> float:
    """Mean FLOPs per example, each at its own length and exit layer (1..L)."""
    return float(np.mean([table[int(n)][int(k) - 1] for n, k in zip(lengths, exit_layer)]))


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


def _sweep(logits: np.ndarray, labels: np.ndarray, lengths: np.ndarray, table, metric: str,
           thresholds: tuple[float, ...]) -> list[dict[str, Any]]:
    depth = logits.shape[0]
    rows = []
    for tau in thresholds:
        decision = simulate_exits(logits, ExitPolicy("entropy", tau))
        stats = exit_stats(decision.exit_layer, depth)
        rows.append({"policy": "entropy", "value": float(tau),
                     "metric": task_metric(metric, decision.predictions, labels),
                     "mean_exit_layer": stats["mean_exit_layer"], "speedup": stats["speedup"],
                     "histogram": stats["histogram"],
                     "flops_per_example": mean_flops(table, lengths, decision.exit_layer)})
    return rows


def evaluate_model(model: MultiExitBertForSequenceClassification, data: dict[str, Encoded], metric: str,
                   thresholds: tuple[float, ...], static: bool, tolerance: float) -> dict[str, Any]:
    """Per-exit metric, parameters, measured FLOPs, entropy sweep and operating point of one model.

    A static model is evaluated at its last exit only (threshold 0: no early exit).
    """
    model.eval()
    val, test = data["validation"], data["test"]
    val_logits, test_logits = collect_exit_logits(model, val), collect_exit_logits(model, test)
    table = flops_table(model, np.concatenate([val.lengths, test.lengths]))
    values = (0.0,) if static else tuple(thresholds)
    val_sweep = _sweep(val_logits, val.labels, val.lengths, table, metric, values)
    test_sweep = _sweep(test_logits, test.labels, test.lengths, table, metric, values)
    per_val = per_exit_metric(metric, val_logits, val.labels)
    per_test = per_exit_metric(metric, test_logits, test.labels)
    chosen = operating_point(val_sweep, per_val[-1], tolerance)
    test_point = next(r for r in test_sweep if r["value"] == chosen["value"])
    full = np.full(len(test), model.num_layers)
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
        "flops_per_example": mean_flops(table, test.lengths, full),
        "validation_flops_per_example": mean_flops(table, val.lengths, np.full(len(val), model.num_layers)),
        "flops_by_exit_at_mean_length": table[min(table, key=lambda n: abs(n - test.lengths.mean()))].tolist(),
        "sweep_validation": val_sweep, "sweep_test": test_sweep,
        "operating_point": {"threshold": chosen["value"], "validation_metric": chosen["metric"],
                            "metric": test_point["metric"], "mean_exit_layer": test_point["mean_exit_layer"],
                            "speedup": test_point["speedup"], "flops_per_example": test_point["flops_per_example"]},
    }


def matched(curve: dict[str, Any], budget: float, tolerance: float) -> dict[str, Any] | None:
    """The threshold of ``curve`` that matches a FLOPs ``budget`` (test FLOPs per example).

    Among thresholds whose test FLOPs per example are within ``tolerance`` of the budget,
    the one with the best *validation* metric (ties: fewer FLOPs); its test figures. None
    if no threshold matches.
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
    """Every static model's budget, and each multi-exit model matched to it (see the module docstring)."""
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


def _learns_from_ta(stage: StageConfig) -> bool:
    return isinstance(stage, RecoverConfig) and stage.slenderize.ta is not None


def training_graph(cfg: CostEffExperimentConfig) -> dict[str, Task]:
    """Every model of ``cfg`` but the teacher as a :class:`costeff_same.parallel.Task`.

    The models that learn from the TA need it first; the TA leads (it is the longest
    chain), then the models that learn from the teacher, then those that learn from the TA.
    """
    models = cfg.models()
    names = [n for n in models if n != "teacher"]
    ordered = [n for n in names if not _learns_from_ta(models[n][1])] + \
              [n for n in names if _learns_from_ta(models[n][1])]
    return {name: Task(_model, (name, *models[name]), ("ta",) if _learns_from_ta(models[name][1]) else ())
            for name in ordered}


def train_models(cfg: CostEffExperimentConfig, workers: int | None = None) -> list[str]:
    """Train (or find cached) every model of ``cfg``, ``workers`` independent stages at a time.

    The teacher comes first, in this process, on every core (it is chapter 1's model and
    must be the same one); every other stage then trains on one thread in one of
    ``workers`` processes (:func:`costeff_same.parallel.run_graph`).

    Args:
        cfg: the comparison.
        workers: processes side by side (None: one per available core).

    Returns:
        The model names in the order they finished.

    Raises:
        ValueError: for ``workers < 1``.
    """
    set_threads()
    teacher_model(cfg.teacher)
    graph = training_graph(cfg)
    models = cfg.models()
    missing = {name: task for name, task in graph.items() if not is_trained(models[name][1])}
    for name, task in missing.items():      # a cached need is already met
        missing[name] = dataclasses.replace(task, needs=tuple(n for n in task.needs if n in missing))
    workers = available_cores() if workers is None else workers
    finished = run_graph(missing, workers) if missing else []
    return ["teacher"] + [n for n in graph if n not in missing] + finished


def _model(name: str, kind: str, cfg: StageConfig):
    if name == "teacher":
        return teacher_model(cfg)
    if name == "ta":
        return ta_model(cfg)
    if isinstance(cfg, DepthConfig):
        return depth_model(cfg)
    return recovered_model(cfg)


def _stage_records(name: str, cfg: StageConfig, record: dict[str, Any]) -> dict[str, Any]:
    """The training records worth keeping beside the evaluation (the schedule, the selection)."""
    out = {"config_hash": cfg.config_hash(), "seconds": record.get("seconds"), "best": record.get("best"),
           "history": record.get("history")}
    if isinstance(cfg, RecoverConfig):
        from .pipeline import slender_model

        _, slender = slender_model(cfg.slenderize)
        out["slenderize"] = {k: slender[k] for k in ("start_shape", "shape", "events", "steps_per_event", "schedule",
                                                     "initial", "history", "seconds")}
    return out


def _run_costeff(cfg: CostEffExperimentConfig, workdir, workers: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    finished = train_models(cfg, workers)
    training_seconds = time.perf_counter() - started
    set_threads()                       # evaluation: every core
    task, data = stage_data(cfg.teacher)
    models, stages = {}, {}
    for name, (kind, stage_cfg) in cfg.models().items():
        model, record = _model(name, kind, stage_cfg)
        models[name] = evaluate_model(model, data, task.metric, cfg.entropy_thresholds, kind == "static",
                                      cfg.tolerance)
        stages[name] = _stage_records(name, stage_cfg, record)
    teacher, costeff = models["teacher"], models["costeff"]
    return {
        "task": task.name, "metric": task.metric, "backbone": cfg.teacher.train.backbone,
        "split": task.split_record, "examples": {s: len(d) for s, d in data.items()},
        "truncated": {s: d.truncated for s, d in data.items()},
        "model_order": list(models), "models": models, "stages": stages,
        "comparisons": comparisons(models, cfg.budget_tolerance),
        "retention": costeff["final_exit_metric"] / teacher["final_exit_metric"],
        # the teacher counted as the single-exit model it is (its DeeBERT exits 1..L-1 left out)
        "parameter_fraction": costeff["parameters"] / teacher["single_exit_parameters"],
        "parameter_fraction_without_embeddings": (costeff["parameters_without_embeddings"]
                                                  / teacher["single_exit_parameters_without_embeddings"]),
        "flops_fraction": costeff["flops_per_example"] / teacher["flops_per_example"],
        "flops_fraction_operating_point": (costeff["operating_point"]["flops_per_example"]
                                           / teacher["flops_per_example"]),
        "paper_claim": PAPER_CLAIM,
        "training": {"wall_seconds": training_seconds, "workers": available_cores() if workers is None else workers,
                     "finished_order": finished},
    }


def run_costeff(cfg: CostEffExperimentConfig, workers: int | None = None) -> dict[str, Any]:
    """Chapter 2's result record (cached; every model's stage is cached on its own too).

    Args:
        cfg: the comparison.
        workers: stages trained side by side (None: one per available core); the results do
            not depend on it (every stage trains on one thread), only the wall-clock time.

    Raises:
        ValueError: for ``workers < 1``.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers={workers} must be >= 1 (or None: one per available core)")
    return load_or_run("costeff", cfg, functools.partial(_run_costeff, workers=workers), seed=cfg.teacher.data.seed)


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
    return {
        "task": record["task"], "backbone": record["backbone"], "metric": record["metric"],
        "teacher_accuracy": teacher["final_exit_metric"], "ta_accuracy": ta["final_exit_metric"],
        "costeff_final_exit_accuracy": costeff["final_exit_metric"], "retention": record["retention"],
        "costeff_shape": costeff["shape"],
        "teacher": size(teacher), "costeff": size(costeff),
        "parameter_fraction": record["parameter_fraction"], "flops_fraction": record["flops_fraction"],
        "operating_points": {name: {"threshold": m["operating_point"]["threshold"],
                                    "accuracy": m["operating_point"]["metric"],
                                    "flops_per_example": m["operating_point"]["flops_per_example"]}
                             for name, m in models.items()},
        "ablations": {name: models[name]["final_exit_metric"] for name in ("no_ta", "final_importance")
                      if name in models},
        "matched_budgets": [{"baseline": r["baseline"], "baseline_accuracy": r["baseline_metric"],
                             "costeff": r["matches"].get("costeff")} for r in record["comparisons"]],
        "budgets_costeff_at_least_as_accurate": wins,
    }


def train_model(cfg: CostEffExperimentConfig, name: str) -> dict[str, Any]:
    """Train (or load from the cache) one model of the comparison; a short description of it.

    Raises:
        ConfigError: for a name that is not a model of ``cfg`` (the accepted ones are listed).
    """
    models = cfg.models()
    if name not in models:
        raise ConfigError(f"unknown model {name!r}; accepted: {', '.join(models)}")
    set_threads()                       # the teacher, if it is trained here, as in chapter 1
    teacher_model(cfg.teacher)
    kind, stage_cfg = models[name]
    model, record = _model(name, kind, stage_cfg)
    return {"model": name, "kind": kind, "config_hash": stage_cfg.config_hash(), "entry": record["_entry"],
            "shape": shape_of(model).to_dict(), "parameters": count_parameters(model),
            "parameters_without_embeddings": count_parameters(model, False),
            "seconds": record.get("seconds"), "best": record.get("best")}
