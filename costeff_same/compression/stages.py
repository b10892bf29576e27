"""The configs of COST-EFF's stages (Shen et al., 2022, section 3; the methods page).

Each stage of the pipeline (:mod:`costeff_same.compression.pipeline`) is cached under one of
these frozen configs: the teaching assistant (:class:`TAConfig`), iterative slenderization
(:class:`SlenderizeConfig`), recovery (:class:`RecoverConfig`) and the depth-truncated
baseline (:class:`DepthConfig`); :class:`DistillConfig` holds the optimisation settings
they share.
"""

from __future__ import annotations

import dataclasses

from costeff_same.compression.distill import EXIT_SETS
from costeff_same.foundations.config import ConfigError, StageConfig, TrainedModelConfig, check_range, choice
from costeff_same.foundations.registry import PRECISIONS

TA_INITS = ("teacher", "backbone")
IMPORTANCE_LOSSES = ("all_exits", "final_exit")


@dataclasses.dataclass(frozen=True)
class DistillConfig(StageConfig):
    """Optimisation settings shared by the distillation stages.

    Attributes:
        batch_size: examples per step.
        learning_rate: peak learning rate (AdamW, linear warm-up then linear decay per segment).
        warmup_ratio: fraction of each segment's steps spent warming up.
        weight_decay: AdamW weight decay (not on biases and LayerNorms).
        temperature: distillation temperature ``T`` (COST-EFF: 1).
        hidden_weight: weight of the hidden-state MSE against the prediction term.
        precompute_teacher: precompute the teacher's hidden states and logits on the training
            split once (float16 in memory) instead of a teacher forward every step; the
            same numbers up to float16 rounding of the hidden states.
        seed: seeds initialisation of new exits, data order, dropout and importance samples.
        checkpoint_every: steps between resumable checkpoints.
        precision: ``fp32``, or ``bf16``: the student's (and a live teacher's) training forward
            pass under bfloat16 autocast (weights, optimiser and evaluations stay float32).
    """

    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    temperature: float = 1.0
    hidden_weight: float = 1.0
    precompute_teacher: bool = True
    seed: int = 0
    checkpoint_every: int = 50
    precision: str = "fp32"

    def __post_init__(self):
        choice("precision", self.precision, PRECISIONS)
        if self.batch_size < 1 or self.checkpoint_every < 1:
            raise ConfigError(f"batch_size={self.batch_size} and checkpoint_every={self.checkpoint_every} must be >= 1")
        check_range("learning_rate", self.learning_rate, 0, 1, low_open=True)
        check_range("temperature", self.temperature, 0, low_open=True)
        check_range("warmup_ratio", self.warmup_ratio, 0, 1, high_open=True)
        check_range("weight_decay", self.weight_decay, 0)
        check_range("hidden_weight", self.hidden_weight, 0)


def _check_epochs(**values: float) -> None:
    for key, value in values.items():
        check_range(key, value, 0)


@dataclasses.dataclass(frozen=True)
class TAConfig(StageConfig):
    """The teaching assistant: a full-width multi-exit model distilled from the teacher.

    Attributes:
        teacher: the fine-tuned teacher (its last exit and hidden states are the targets).
        optim: optimisation settings.
        init: ``teacher`` (start from the teacher's fine-tuned encoder, new exits; the
            representation stage then starts at zero loss) or ``backbone`` (start from the
            pre-trained backbone, as a TA built from BERT-base would).
        representation_epochs: epochs of representation-only distillation (hidden MSE).
        prediction_epochs: epochs of prediction distillation (every exit against the
            teacher's final soft prediction, mixed with the hard labels).
        soft_weight: soft vs hard mix of the prediction term (0.5: their average).
        gradient_equilibrium: ElasticBERT/COST-EFF gradient rescaling in the TA.
        evaluations: dev evaluations during the prediction stage; the best mean-exit one is kept
            (0: keep the last weights).
    """

    teacher: TrainedModelConfig
    optim: DistillConfig
    init: str = "teacher"
    representation_epochs: float = 0.0
    prediction_epochs: float = 1.0
    soft_weight: float = 0.5
    gradient_equilibrium: bool = True
    evaluations: int = 0

    def __post_init__(self):
        choice("ta init", self.init, TA_INITS)
        _check_epochs(representation_epochs=self.representation_epochs, prediction_epochs=self.prediction_epochs)
        if self.representation_epochs + self.prediction_epochs <= 0:
            raise ConfigError("the TA needs representation_epochs + prediction_epochs > 0")
        check_range("soft_weight", self.soft_weight, 0, 1)


@dataclasses.dataclass(frozen=True)
class SlenderizeConfig(StageConfig):
    """Iterative slenderization (COST-EFF step 3), or one of its baselines and ablations.

    Attributes:
        teacher: the fine-tuned teacher.
        optim: optimisation settings (``learning_rate`` is the rate of the first event).
        ta: the teaching assistant to slenderize and learn from (exit ``i`` to TA exit ``i``);
            None slenderizes the teacher and every exit learns from its final exit (the no-TA
            ablation, and the static baseline).
        exits: ``all`` (a multi-exit model) or ``final`` (a static model trained without exits:
            only the last exit gets a prediction loss, no gradient equilibrium).
        importance: ``all_exits`` (COST-EFF: every exit's distillation loss) or ``final_exit``
            (the ablation: the last exit's only); both include the hidden-state MSE.
        heads: target attention heads per layer.
        ffn: target FFN width per layer.
        embedding_rank: target rank of the factorised word embedding (None: keep it whole).
        importance_examples: training examples in each importance pass (None: the whole
            split, as the paper; a seeded sample otherwise).
        event_epochs: training epochs after each prune event.
        representation_fraction: the first part of each period trained on the hidden MSE only.
        soft_weight: soft vs hard mix of the prediction term (COST-EFF: 0.9).
        lr_growth: the learning rate is multiplied by this after every event (COST-EFF: ~1.12).
        evaluate_events: measure the dev metric after every event (for the schedule figure).
    """

    teacher: TrainedModelConfig
    optim: DistillConfig
    ta: TAConfig | None = None
    exits: str = "all"
    importance: str = "all_exits"
    heads: int = 2
    ffn: int = 256
    embedding_rank: int | None = 64
    importance_examples: int | None = 128
    event_epochs: float = 0.1
    representation_fraction: float = 0.3
    soft_weight: float = 0.9
    lr_growth: float = 1.12
    evaluate_events: bool = False

    def __post_init__(self):
        choice("exits", self.exits, EXIT_SETS)
        choice("importance", self.importance, IMPORTANCE_LOSSES)
        if self.ta is not None and self.ta.teacher != self.teacher:
            raise ConfigError("the TA's teacher must be the slenderization's teacher")
        if self.ta is not None and self.exits == "final":
            raise ConfigError("a static model (exits='final') is slenderized from the teacher: set ta to None")
        if self.heads < 1 or self.ffn < 1 or (self.embedding_rank is not None and self.embedding_rank < 1):
            raise ConfigError(f"heads={self.heads}, ffn={self.ffn}, embedding_rank={self.embedding_rank} must be >= 1")
        if self.importance_examples is not None and self.importance_examples < 1:
            raise ConfigError(f"importance_examples={self.importance_examples} must be >= 1 or None")
        check_range("representation_fraction", self.representation_fraction, 0, 1, high_open=True)
        check_range("soft_weight", self.soft_weight, 0, 1)
        check_range("lr_growth", self.lr_growth, 0, low_open=True)
        _check_epochs(event_epochs=self.event_epochs)

    @property
    def source(self) -> TAConfig | TrainedModelConfig:
        """The config of the model every exit learns from: the TA, or (``ta=None``) the teacher."""
        return self.ta if self.ta is not None else self.teacher

    @property
    def mapping(self) -> str:
        """``exit_to_exit`` when learning from the TA, ``exit_to_final`` from the teacher."""
        return "exit_to_exit" if self.ta is not None else "exit_to_final"


@dataclasses.dataclass(frozen=True)
class RecoverConfig(StageConfig):
    """Recovery distillation of a slenderized model (COST-EFF step 4).

    Attributes:
        slenderize: the slenderization it recovers.
        representation_epochs: epochs of hidden-MSE-only distillation.
        prediction_epochs: epochs of prediction + representation distillation.
        evaluations: dev evaluations spread over the prediction epochs; the checkpoint with
            the best mean exit score (last exit for a static model) is kept.
        learning_rate: recovery learning rate (None: the slenderization's base rate).
    """

    slenderize: SlenderizeConfig
    representation_epochs: float = 0.2
    prediction_epochs: float = 1.0
    evaluations: int = 4
    learning_rate: float | None = None

    def __post_init__(self):
        _check_epochs(representation_epochs=self.representation_epochs, prediction_epochs=self.prediction_epochs)
        if self.evaluations < 0:
            raise ConfigError(f"evaluations={self.evaluations} must be >= 0")
        if self.learning_rate is not None:
            check_range("learning_rate", self.learning_rate, 0, 1, low_open=True)


@dataclasses.dataclass(frozen=True)
class DepthConfig(StageConfig):
    """The depth-truncated baseline: the teacher's first ``layers`` layers, distilled from it.

    Attributes:
        teacher: the fine-tuned teacher.
        optim: optimisation settings.
        layers: layers kept (1..L).
        representation_epochs: epochs of hidden-MSE-only distillation (states 0..layers).
        prediction_epochs: epochs of prediction + representation distillation of the last exit.
        soft_weight: soft vs hard mix of the prediction term.
        evaluations: dev evaluations; the best last-exit one is kept.
    """

    teacher: TrainedModelConfig
    optim: DistillConfig
    layers: int = 1
    representation_epochs: float = 0.0
    prediction_epochs: float = 1.0
    soft_weight: float = 0.9
    evaluations: int = 4

    def __post_init__(self):
        if self.layers < 1:
            raise ConfigError(f"layers={self.layers} must be >= 1")
        check_range("soft_weight", self.soft_weight, 0, 1)
        _check_epochs(representation_epochs=self.representation_epochs, prediction_epochs=self.prediction_epochs)


#: the results-cache name of each stage
STAGE_NAMES = {TAConfig: "costeff_ta", SlenderizeConfig: "costeff_slenderize", RecoverConfig: "costeff_recover",
               DepthConfig: "costeff_depth"}
