"""Chapter 6's figures: what each defence costs and what it keeps under the adaptive attack."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import seaborn as sns

from costeff_same.foundations.names import DEFENCE_LABELS, victim_label
from costeff_same.plotting.style import use_style
from costeff_same.verdicts import finite


def fig_defences_tradeoff(summary: dict[str, Any]) -> plt.Figure:
    """Efficiency-gain reduction under the adaptive attack against clean accuracy, one point per
    defence (and one for none), one panel per victim; whiskers: 95% intervals of the reduction.
    The goal's region (at most ``accuracy_goal`` lost, reduction at most ``reduction_goal``) is shaded.
    ``summary`` is chapter 6's summary section."""
    use_style()
    victims = summary["victims"]
    names = ["none", *summary["defences"]]
    colors = dict(zip(names, sns.color_palette("deep", len(names))))
    fig, axes = plt.subplots(1, len(victims), figsize=(4.6 * len(victims), 3.8), squeeze=False, sharey=True)
    for ax, (victim, v) in zip(axes[0], victims.items()):
        base = v["none"]["clean_accuracy"]
        ax.axvspan(base - summary["accuracy_goal"], 1.0, ymin=0, ymax=1, color="green", alpha=0.06)
        ax.axhline(summary["reduction_goal"], color="green", lw=0.8, ls="--", label="goal: reduction")
        for name in names:
            row = v[name]
            interval = row["adaptive"]["efficiency_gain_reduction"]
            if not finite(interval):
                continue
            x, y = row["clean_accuracy"], interval["estimate"]
            ax.errorbar([x], [y], yerr=[[y - interval["low"]], [interval["high"] - y]], fmt="o", color=colors[name],
                        capsize=3, markeredgecolor="black", label=DEFENCE_LABELS.get(name, name))
        ax.set_xlim(min(v[n]["clean_accuracy"] for n in names) - 0.03, base + 0.02)
        ax.set(xlabel="clean accuracy (test split)", title=victim_label(victim))
    axes[0, 0].set_ylabel("gain reduction, adaptive SAME")
    axes[0, 0].legend(fontsize=7, loc="best")
    return fig


def fig_detector_roc(summary: dict[str, Any]) -> plt.Figure:
    """The guard's detector: ROC curve on chapter 4's clean sentences against their SAME texts,
    one curve per victim, the operating threshold marked."""
    use_style()
    fig, ax = plt.subplots(figsize=(4.4, 4.0))
    for victim, v in summary["victims"].items():
        roc = v.get("guard", {}).get("roc")
        if not roc:
            continue
        line, = ax.plot(roc["fpr"], roc["tpr"], label=f"{victim_label(victim, short=True)} "
                                                      f"(AUROC {roc['auroc']:.3f})")
        point = roc["at_threshold"]
        ax.scatter([point["fpr"]], [point["tpr"]], color=line.get_color(), edgecolor="black", zorder=5)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set(xlabel="false-positive rate (clean flagged)", ylabel="true-positive rate (SAME flagged)",
           title="Guard's detector at the cap layer")
    ax.legend(fontsize=7, loc="lower right")
    return fig
