"""The typed records that producers, figures, notebooks and the summary share.

Records are plain JSON-able dicts (they are written to ``result.json``); these
``TypedDict`` s name their keys and units once. The vocabulary: ``policy`` (an exit policy
name), ``value`` (the policy value: an entropy threshold in nats or a patience in layers),
``metric`` (the task metric's score; its name is the record's ``metric``), exit layers in
1..L.
"""

from __future__ import annotations

from typing import TypedDict


class ExitStats(TypedDict):
    """:func:`costeff_same.core.metrics.exit_stats`: efficiency of a set of exit layers."""

    mean_exit_layer: float        # layers
    speedup: float                # L / mean exit layer
    efficiency_gain: float        # 1 - mean exit layer / L
    histogram: list[int]          # examples per exit layer 1..L


class SweepRow(ExitStats, total=False):
    """One policy value of a sweep (:func:`costeff_same.selection.sweep`)."""

    policy: str
    value: float                  # nats (entropy) or layers (patience)
    metric: float                 # the task metric at this value
    flops_per_example: float      # FLOPs, when the sweep measured them


class OperatingPoint(TypedDict, total=False):
    """A victim's operating point (:func:`costeff_same.evaluation.evaluate_victim`): chosen
    on validation, reported on test."""

    policy: str
    value: float
    validation_metric: float
    metric: float
    mean_exit_layer: float
    speedup: float
    efficiency_gain: float
    histogram: list[int]
    flops_per_example: float
    full_flops_per_example: float


class EfficiencyChange(TypedDict, total=False):
    """:func:`costeff_same.core.metrics.efficiency_change`: the same examples, clean and adversarial."""

    examples: int
    mean_exit_layer_clean: float
    mean_exit_layer_adv: float
    speedup_clean: float
    speedup_adv: float
    efficiency_gain_clean: float
    efficiency_gain_adv: float
    histogram_clean: list[int]
    histogram_adv: list[int]
    efficiency_gain_reduction: float   # (g_clean - g_adv) / g_clean
    later: float                       # share of examples exiting later under attack
    earlier: float
    mean_shift: float                  # layers
    wilcoxon_p: float                  # paired two-sided signed-rank test of the shifts
    efficacy_clean: float              # area under the cumulative exit distribution (DeepSloth)
    efficacy_adv: float
