"""COST-EFF against its baselines and ablations at matched FLOPs: chapter 2's experiment (Shen et al., 2022, sec. 4).

:func:`run_costeff` takes a :class:`CostEffExperimentConfig`, obtains every model through
its cached stage (:mod:`costeff_same.compression.pipeline`) and evaluates each one the same
way: per-exit accuracy, parameters (with and without embeddings, and as deployed: a static
model carries no intermediate exits), FLOPs per example measured with
``torch.utils.flop_counter`` (:func:`costeff_same.core.metrics.cumulative_flops`, each example at
its own length and exit layer), an entropy-threshold sweep, and an operating point chosen
on the validation split (chapter 1's rule).

Matched-FLOPs comparison: for every static model (the static slender models and the
depth-truncated models) the budget is its test FLOPs per example; each multi-exit model's
threshold is the one with the best *validation* metric among those whose test FLOPs per
example lie within ``budget_tolerance`` (10%) of the budget (FLOPs need no labels, so this
uses nothing of the test split but its lengths and exit layers), and its *test* metric is
reported beside the static model's.

Chapter 2 (:mod:`costeff_same.chapters.costeff`) presents the record; chapter 5 attacks its
models, reading them through this module and the cache (chapters never import each other).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
from pathlib import Path
from typing import Any

from costeff_same.compression.evaluate import retention_intervals
from costeff_same.compression.graph import evaluated_model, evaluation_configs, model_graph, stage_model, train_models
from costeff_same.compression.pipeline import slender_model, stage_data
from costeff_same.compression.stages import DepthConfig, DistillConfig, RecoverConfig, SlenderizeConfig, TAConfig
from costeff_same.engine.parallel import Task, stage_name, stage_task, worker_count
from costeff_same.engine.results import is_cached, load_or_run, stage
from costeff_same.foundations.config import (
    DATA_KEYS,
    ConfigError,
    DataConfig,
    StageConfig,
    TrainConfig,
    TrainedModelConfig,
    check_range,
    pick,
)
from costeff_same.foundations.schema import Param, Schema
from costeff_same.selection import comparisons
from costeff_same.victims import DATA_PARAMS

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
    entropy_thresholds: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(14))
    tolerance: float = 0.01
    budget_tolerance: float = 0.1

    def __post_init__(self):
        if not self.entropy_thresholds:
            raise ConfigError("entropy_thresholds must hold at least one value")
        for i, value in enumerate(self.entropy_thresholds):
            check_range(f"entropy_thresholds[{i}]", value, 0)
        check_range("tolerance", self.tolerance, 0, 1, high_open=True)
        check_range("budget_tolerance", self.budget_tolerance, 0, 1, low_open=True, high_open=True)
        static_names(self.static)  # two static models of one shape are refused here

    def models(self) -> dict[str, tuple[str, StageConfig]]:
        """``{name: (kind, stage config)}`` in display order; kind is ``multi_exit`` or ``static``."""
        out: dict[str, tuple[str, StageConfig]] = {
            "teacher": ("multi_exit", self.teacher), "ta": ("multi_exit", self.ta),
            "costeff": ("multi_exit", self.costeff)}
        if self.no_ta is not None:
            out["no_ta"] = ("multi_exit", self.no_ta)
        if self.final_importance is not None:
            out["final_importance"] = ("multi_exit", self.final_importance)
        for name, s in zip(static_names(self.static), self.static):
            out[name] = ("static", s)
        for d in self.depth:
            out[f"depth_{d.layers}"] = ("static", d)
        return out


def static_names(static: tuple[RecoverConfig, ...]) -> list[str]:
    """The static slender models' names in the record: ``static_h<heads>`` for the widest FFN
    at those heads, ``static_h<heads>_f<FFN>`` for a narrower one (``static_h2_f128``).

    Raises:
        ConfigError: when two static models have the same shape.
    """
    widest = {}
    for cfg in static:
        widest[cfg.slenderize.heads] = max(widest.get(cfg.slenderize.heads, 0), cfg.slenderize.ffn)
    names = [f"static_h{c.slenderize.heads}" + ("" if c.slenderize.ffn == widest[c.slenderize.heads]
                                                 else f"_f{c.slenderize.ffn}") for c in static]
    if len(set(names)) != len(names):
        raise ConfigError(f"static slender models must differ in shape, got {names}")
    return names


#: chapter 2's notebook parameters (defaults: ``configs/default.yaml``)
COSTEFF_SCHEMA = Schema("02_costeff", {
    **DATA_PARAMS,
    "seed": Param("int", 'seeds the split, initialisation, data order, dropout and importance samples'),
    "train_size": Param("Optional[int]", 'subsample the training split to this many examples (None: all)'),
    "eval_size": Param("Optional[int]", 'subsample validation and test to this many examples each (None: all)'),
    "batch_size": Param("int", 'examples per training step (teacher and every distillation stage)'),
    "teacher_epochs": Param("int", 'teacher fine-tuning epochs (chapter 1 DeeBERT stage 1, so the same cached model)'),
    "teacher_exit_epochs": Param("int", "chapter 1's DeeBERT stage 2 (the teacher's own exits, shown for reference)"),
    "teacher_learning_rate": Param("float", 'teacher fine-tuning learning rate (as chapter 1)'),
    "teacher_exit_learning_rate": Param("float", "chapter 1's DeeBERT stage-2 learning rate"),
    "exit_pooling": Param("str", 'what every exit reads: cls (the paper) or mean (MiniLM is a mean-pooled encoder)'),
    "precision": Param("str", "training forward passes (teacher as chapter 1, every stage): fp32 or bf16 autocast"),
    "ta_init": Param("str", 'TA starts from: teacher (its fine-tuned encoder) or backbone (pre-trained)'),
    "ta_representation_epochs": Param("float", 'TA hidden-state-only distillation epochs'),
    "ta_prediction_epochs": Param("float", 'TA prediction distillation epochs'),
    "ta_learning_rate": Param("float", 'TA (and depth-truncated baseline) learning rate'),
    "temperature": Param("float", 'distillation temperature T (COST-EFF: 1)'),
    "hidden_weight": Param("float", 'weight of the hidden-state MSE beside the prediction loss'),
    "precompute_teacher": Param("bool", "precompute the frozen teacher's outputs on the training split (float16)"),
    "target_heads": Param("int", 'attention heads kept per layer'),
    "target_ffn": Param("int", 'FFN width kept per layer'),
    "target_embedding_rank": Param("Optional[int]", 'rank of the factorised word embedding (None: keep it whole)'),
    "importance_examples": Param("Optional[int]", 'training examples per importance pass (None: all, as the paper)'),
    "event_epochs": Param("float", 'training epochs after each prune event'),
    "representation_fraction": Param("float", 'first part of each period trained on hidden states only'),
    "slender_learning_rate": Param("float", 'learning rate of the first event and of recovery'),
    "lr_growth": Param("float", 'learning rate multiplied by this after each event (COST-EFF: about 12%)'),
    "recovery_representation_epochs": Param("float", 'recovery epochs on hidden states only'),
    "recovery_prediction_epochs": Param("float", 'recovery epochs on predictions + hidden states'),
    "evaluations": Param("int", 'validation checks during recovery (the best mean-exit checkpoint is kept)'),
    "static_heads": Param("list[int]", 'static slender baselines (FFN and rank scale with the heads)'),
    "static_ffn_scales": Param("list[float]", "each static model's FFN at these fractions of its heads' share"),
    "depth_layers": Param("list[int]", "depth-truncated baselines: the teacher's first k layers"),
    "depth_epochs": Param("float", 'distillation epochs of each depth-truncated baseline'),
    "ablations": Param("bool", 'also run COST-EFF without TA and with final-exit-only importance'),
    "entropy_thresholds": Param("list[float]", 'sweep (nats)'),
    "tolerance": Param("float", 'operating point: lose at most this much validation metric against the last exit'),
    "budget_tolerance": Param("float", 'FLOPs match a budget when within this fraction of it'),
})


def _own_splits(p: dict[str, Any]) -> DataConfig:
    if p["eval_file"] is not None:
        raise ConfigError(f"eval_file={p['eval_file']!r}: chapter 2 compresses and evaluates on the task's own "
                          "splits; evaluate chapter 1's victims on another file (chapters 1, 3 and 4)")
    return DataConfig.from_dict(pick(p, DATA_KEYS)).for_training()


def costeff_config(**params: Any) -> CostEffExperimentConfig:
    """Build chapter 2's config from the notebook's flat parameters.

    The teacher is built exactly as chapter 1's DeeBERT-style model (``two_stage``,
    ``deebert`` exits, the same ``exit_pooling``), so equal settings share one cached
    teacher; the TA and every COST-EFF model pool their exits the same way. Static slender models
    at ``h`` heads get FFN ``target_ffn * h / target_heads`` times each of
    ``static_ffn_scales`` (more FLOPs budgets to compare at), embedding rank
    ``target_embedding_rank * h / target_heads`` and the same schedule as COST-EFF.

    Raises:
        ConfigError: for an unknown parameter (the accepted ones are listed) or a value of
            the wrong type.
    """
    p = COSTEFF_SCHEMA.complete(params)
    data = _own_splits(p)
    renames = {"teacher_epochs": "epochs", "teacher_exit_epochs": "exit_epochs",
               "teacher_learning_rate": "learning_rate", "teacher_exit_learning_rate": "exit_learning_rate"}
    train = TrainConfig.from_dict({"exit_style": "deebert", "regime": "two_stage",
                                   **pick(p, ("backbone", "seed", "batch_size", "exit_pooling", "precision")),
                                   **{new: p[old] for old, new in renames.items() if old in p}})
    teacher = TrainedModelConfig(data, train)
    optim = pick(p, ("batch_size", "seed", "temperature", "hidden_weight", "precompute_teacher", "precision"))
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
    scales = p.get("static_ffn_scales", [1.0])
    if not scales or not all(0 < f <= 1 for f in scales):
        raise ConfigError(f"static_ffn_scales={scales} must be a non-empty list of fractions in (0, 1]")
    for h in p.get("static_heads", [heads]):
        if not isinstance(h, int) or isinstance(h, bool) or h < 1:
            raise ConfigError(f"static_heads entry {h!r} must be an integer >= 1")
        for scale in scales:
            static.append(recover(ta=None, exits="final", importance="final_exit", heads=h,
                                  ffn=max(1, round(ffn * h / heads * scale)),
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


def _stage_records(name: str, cfg: StageConfig, record: dict[str, Any]) -> dict[str, Any]:
    """The training records worth keeping beside the evaluation (the schedule, the selection)."""
    out = {"config_hash": cfg.config_hash(), "seconds": record.get("seconds"), "best": record.get("best"),
           "history": record.get("history")}
    if isinstance(cfg, RecoverConfig):
        _, slender = slender_model(cfg.slenderize)
        out["slenderize"] = {k: slender[k] for k in ("start_shape", "shape", "events", "steps_per_event", "schedule",
                                                     "initial", "history", "seconds")}
    return out


def training_span(entries: list[str]) -> float:
    """Wall-clock seconds from the first of the cache ``entries`` starting to compute to the last
    one finishing, from their provenance (each entry's end and seconds): how long the models
    took side by side, whichever run trained them (this record's, or a graph of several
    chapters that ran them before it). 0 for no entries."""
    spans = []
    for entry in entries:
        info = json.loads((Path(entry) / "provenance.json").read_text())
        end = datetime.datetime.fromisoformat(info["created"].replace("Z", "+00:00")).timestamp()
        spans.append((end - info["seconds"], end))
    return max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0


@stage("costeff")
def _run_costeff(cfg: CostEffExperimentConfig, workdir, workers: int | None = None) -> dict[str, Any]:
    finished = train_models(cfg, workers)
    task, data = stage_data(cfg.teacher)
    models, stages, evaluations, entries = {}, {}, evaluation_configs(cfg), []
    for name, (kind, stage_cfg) in cfg.models().items():
        _, record = stage_model(name, kind, stage_cfg)
        models[name] = evaluated_model(evaluations[name])
        stages[name] = _stage_records(name, stage_cfg, record)
        entries += [record["_entry"]] if name != "teacher" else []
    teacher, costeff = models["teacher"], models["costeff"]
    return {
        "task": task.name, "metric": task.metric, "backbone": cfg.teacher.train.backbone,
        "split": task.split_record, "examples": {s: len(d) for s, d in data.items()},
        "truncated": {s: d.truncated for s, d in data.items()},
        "model_order": list(models), "models": models, "stages": stages,
        "test_labels": data["test"].labels.tolist(),
        "comparisons": comparisons(models, cfg.budget_tolerance, task.metric, data["test"].labels),
        "retention": costeff["final_exit_metric"] / teacher["final_exit_metric"],
        "retention_intervals": retention_intervals(teacher, costeff, task.metric, data["test"].labels),
        # the teacher counted as the single-exit model it is (its DeeBERT exits 1..L-1 left out)
        "parameter_fraction": costeff["parameters"] / teacher["single_exit_parameters"],
        "parameter_fraction_without_embeddings": (costeff["parameters_without_embeddings"]
                                                  / teacher["single_exit_parameters_without_embeddings"]),
        "flops_fraction": costeff["flops_per_example"] / teacher["flops_per_example"],
        "flops_fraction_operating_point": (costeff["operating_point"]["flops_per_example"]
                                           / teacher["flops_per_example"]),
        "paper_claim": PAPER_CLAIM,
        "training": {"wall_seconds": training_span(entries), "workers": worker_count(workers),
                     "finished_order": finished},
    }


def costeff_graph(cfg: CostEffExperimentConfig) -> dict[str, Task]:
    """Chapter 2's stages as tasks of a study's graph (:mod:`costeff_same.study`): every model
    (:func:`~costeff_same.compression.graph.model_graph`), then the chapter's record, which then
    finds every model cached. The chapter run alone trains them inside its stage
    (:func:`run_costeff`); either way the record gives the training's wall time
    (:func:`training_span`)."""
    models = {} if is_cached("costeff", cfg) else model_graph(cfg)      # a cached record needs none of them
    return models | stage_task("costeff", cfg, _run_costeff, seed=cfg.teacher.data.seed, needs=tuple(models))


def costeff_stage(cfg: CostEffExperimentConfig) -> str:
    """The task name of chapter 2's record in :func:`costeff_graph`: what a later chapter's tasks need."""
    return stage_name("costeff", cfg)


def run_costeff(cfg: CostEffExperimentConfig, workers: int | None = None) -> dict[str, Any]:
    """Chapter 2's result record (cached; every model's stage is cached on its own too).

    Args:
        cfg: the comparison.
        workers: stages trained side by side (None: the run setting, else one per core); the results do
            not depend on it (every stage trains on one thread), only the wall-clock time.

    Raises:
        ValueError: for ``workers < 1``.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers={workers} must be >= 1 (or None: one per available core)")
    return load_or_run("costeff", cfg, functools.partial(_run_costeff, workers=workers), seed=cfg.teacher.data.seed)
