"""Figures: result records in, matplotlib ``Figure`` out, one style for the whole book.

Compute and plotting are separate: every ``fig_*`` reads a cached record, so restyling a
figure never re-runs training.

One module per part of the book (:mod:`.victims`, :mod:`.costeff`, :mod:`.attacks`,
:mod:`.defences`, :mod:`.reproduction`) over one style (:mod:`.style`); every figure is importable from here.
"""

from costeff_same.plotting.attacks import (
    fig_attack_exit_histograms,
    fig_attack_overview,
    fig_same_ablations,
    fig_same_budget_curve,
    fig_same_exit_histograms,
    fig_same_shift,
    fig_same_vs_accuracy_attacks,
    fig_same_vs_costeff_exits,
    fig_same_vs_costeff_tradeoff,
)
from costeff_same.plotting.costeff import fig_costeff_per_exit, fig_costeff_schedule, fig_costeff_tradeoff
from costeff_same.plotting.defences import fig_defences_tradeoff, fig_detector_roc
from costeff_same.plotting.reproduction import fig_reproduction
from costeff_same.plotting.style import PALETTE, use_style
from costeff_same.plotting.victims import fig_exit_histogram, fig_per_exit, fig_tradeoff, fig_wallclock

__all__ = [
    "PALETTE",
    "use_style",
    "fig_per_exit",
    "fig_tradeoff",
    "fig_exit_histogram",
    "fig_wallclock",
    "fig_costeff_schedule",
    "fig_costeff_per_exit",
    "fig_costeff_tradeoff",
    "fig_attack_exit_histograms",
    "fig_attack_overview",
    "fig_same_exit_histograms",
    "fig_same_shift",
    "fig_same_ablations",
    "fig_same_budget_curve",
    "fig_same_vs_accuracy_attacks",
    "fig_same_vs_costeff_tradeoff",
    "fig_same_vs_costeff_exits",
    "fig_defences_tradeoff",
    "fig_detector_roc",
    "fig_reproduction",
]
