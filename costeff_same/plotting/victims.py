"""Chapter 1's figures: the victims' per-exit metric, trade-off, exits and wall-clock."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from costeff_same.foundations.names import (
    VICTIM_LABELS,
)
from costeff_same.plotting.style import PALETTE, use_style


def fig_per_exit(record: dict[str, Any]) -> plt.Figure:
    """Test metric of every exit, one line per victim."""
    use_style()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, v in record["victims"].items():
        layers = np.arange(1, len(v["per_exit_test"]) + 1)
        ax.plot(layers, v["per_exit_test"], marker="o", label=VICTIM_LABELS[name], color=PALETTE[name])
    ax.set(xlabel="exit layer", ylabel=f"test {record['metric']}", title="Per-exit test metric")
    ax.set_xticks(layers)
    ax.legend()
    return fig


def fig_tradeoff(record: dict[str, Any]) -> plt.Figure:
    """Metric against speedup over each victim's policy sweep (test split), operating points marked."""
    use_style()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, v in record["victims"].items():
        rows = sorted(v["sweep_test"], key=lambda r: r["speedup"])
        ax.plot([r["speedup"] for r in rows], [r["metric"] for r in rows], marker=".",
                label=f"{VICTIM_LABELS[name]} sweep", color=PALETTE[name])
        op = v["operating_point"]
        ax.scatter([op["speedup"]], [op["metric"]], s=120, marker="*", color=PALETTE[name], zorder=5,
                   edgecolor="black", label=f"operating point ({name} = {op['value']:g})")
        ax.axhline(v["final_exit_metric"], ls=":", color=PALETTE[name], lw=1)
    ax.set(xlabel="speedup (L / mean exit layer)", ylabel=f"test {record['metric']}",
           title="Accuracy-speedup trade-off (dotted: last exit)")
    ax.legend(fontsize=8)
    return fig


def fig_exit_histogram(record: dict[str, Any]) -> plt.Figure:
    """Exit-layer distribution of each victim at its operating point (test split)."""
    use_style()
    victims = record["victims"]
    fig, axes = plt.subplots(1, len(victims), figsize=(8, 3.2), sharey=True)
    for ax, (name, v) in zip(np.atleast_1d(axes), victims.items()):
        hist = v["operating_point"]["histogram"]
        ax.bar(np.arange(1, len(hist) + 1), hist, color=PALETTE[name])
        ax.set(xlabel="exit layer", title=f"{VICTIM_LABELS[name]}\nmean exit layer "
               f"{v['operating_point']['mean_exit_layer']:.2f}")
        ax.set_xticks(np.arange(1, len(hist) + 1))
    np.atleast_1d(axes)[0].set_ylabel("test examples")
    return fig


def fig_wallclock(record: dict[str, Any]) -> plt.Figure:
    """Measured wall-clock speedup of batched early exit beside the layer speedup."""
    use_style()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    names = list(record["victims"])
    batch_sizes = sorted(record["victims"][names[0]]["timing"], key=int)
    width = 0.8 / (len(batch_sizes) + 1)
    x = np.arange(len(names))
    for j, b in enumerate(batch_sizes):
        ax.bar(x + j * width, [record["victims"][n]["timing"][b]["wallclock_speedup"] for n in names], width,
               label=f"wall-clock, batch {b}")
    ax.bar(x + len(batch_sizes) * width, [record["victims"][n]["operating_point"]["speedup"] for n in names],
           width, label="layer speedup L / mean exit layer", color="grey")
    ax.set_xticks(x + width * len(batch_sizes) / 2, [VICTIM_LABELS[n] for n in names], fontsize=8)
    ax.axhline(1, color="black", lw=0.8)
    ax.set(ylabel="speedup over all layers", title="Early exit saves wall-clock time at batch > 1 too")
    ax.legend(fontsize=8)
    return fig
