"""Chapter 2's figures: COST-EFF's schedule, per-exit metric and trade-off against its baselines."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import seaborn as sns

from costeff_same.foundations.names import (
    COSTEFF_LABELS,
    costeff_label,
)
from costeff_same.plotting.style import error_bars, use_style
from costeff_same.verdicts import finite

COSTEFF_COLORS = dict(zip(COSTEFF_LABELS, sns.color_palette("deep", len(COSTEFF_LABELS))))


def fig_costeff_schedule(record: dict[str, Any]) -> plt.Figure:
    """COST-EFF's iterative slenderization: parameters and dev accuracy after every prune event."""
    use_style()
    slender = record["stages"]["costeff"]["slenderize"]
    ends = [h for h in slender["history"] if h.get("event") == "segment_end"]
    points = ([slender["initial"]] if slender.get("initial") else []) + ends
    events = np.arange(len(points)) if slender.get("initial") else np.arange(1, len(points) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(events, [p["parameters"] / 1e6 for p in points], marker="o", label="all parameters")
    left.plot(events, [p["parameters_without_embeddings"] / 1e6 for p in points], marker="s",
              label="without embeddings")
    left.set(xlabel="prune event (0 = the TA)", ylabel="parameters (millions)", title="Model size")
    left.legend(fontsize=8)
    right.plot(events, [np.mean(p["dev_per_exit"]) for p in points], marker="o", label="mean over exits")
    right.plot(events, [p["dev_per_exit"][-1] for p in points], marker="s", label="last exit")
    right.plot(events, [p["dev_per_exit"][0] for p in points], marker="^", label="first exit")
    right.set(xlabel="prune event (0 = the TA)", ylabel=f"validation {record['metric']}",
              title="Validation metric after each event's training")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.set_xticks(events)
    fig.tight_layout()
    return fig


def fig_costeff_per_exit(record: dict[str, Any]) -> plt.Figure:
    """Test metric of every exit: COST-EFF, its TA, its ablations and the teacher's exits."""
    use_style()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, style in (("teacher", ":"), ("ta", "-"), ("costeff", "-"), ("no_ta", "--"), ("final_importance", "--")):
        m = record["models"].get(name)
        if m is None:
            continue
        layers = np.arange(1, len(m["per_exit_test"]) + 1)
        ax.plot(layers, m["per_exit_test"], marker="o", ls=style, label=costeff_label(name),
                color=COSTEFF_COLORS[name])
    ax.set(xlabel="exit layer", ylabel=f"test {record['metric']}", title="Per-exit test metric")
    ax.set_xticks(layers)
    ax.legend(fontsize=8)
    return fig


def fig_costeff_tradeoff(record: dict[str, Any]) -> plt.Figure:
    """Test metric against measured FLOPs per example: entropy sweeps of the multi-exit models
    (operating points starred) and the static models as single points with 95% intervals."""
    use_style()
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    markers = iter(["s", "D", "P", "X", "v", "^", "<", ">"])
    for name in record.get("model_order", record["models"]):
        m = record["models"][name]
        if m["kind"] == "multi_exit":
            rows = sorted(m["sweep_test"], key=lambda r: r["flops_per_example"])
            color = COSTEFF_COLORS.get(name)
            ax.plot([r["flops_per_example"] / 1e6 for r in rows], [r["metric"] for r in rows], marker=".",
                    color=color, label=costeff_label(name), ls="--" if name in ("no_ta", "final_importance") else "-")
            op = m["operating_point"]
            ax.scatter([op["flops_per_example"] / 1e6], [op["metric"]], s=110, marker="*", color=color,
                       edgecolor="black", zorder=5)
        else:
            ci = m.get("final_exit_interval")
            if finite(ci):
                ax.errorbar([m["flops_per_example"] / 1e6], [ci["estimate"]], capsize=2, color="dimgray", lw=0.8,
                            yerr=error_bars([ci]), zorder=3)
            ax.scatter([m["flops_per_example"] / 1e6], [m["final_exit_metric"]], s=60, marker=next(markers),
                       color="dimgray", edgecolor="black", zorder=4, label=costeff_label(name))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set(xlabel="measured MFLOPs per example (log scale)", ylabel=f"test {record['metric']}",
           title="Accuracy against FLOPs (entropy thresholds; stars: operating points)")
    ax.legend(fontsize=7, loc="lower right")
    return fig
