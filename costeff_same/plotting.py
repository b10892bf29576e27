"""Figures: result records in, matplotlib ``Figure`` out, one style for the whole book.

Compute and plotting are separate: every ``fig_*`` reads a cached record, so restyling a
figure never re-runs training.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

VICTIM_LABELS = {"entropy": "DeeBERT-style (entropy exit)", "patience": "PABEE-style (patience exit)"}
PALETTE = dict(zip(VICTIM_LABELS, sns.color_palette("deep", 2)))


def use_style() -> None:
    """The book's one style (seaborn ``whitegrid``, readable sizes)."""
    sns.set_theme(style="whitegrid", context="notebook", palette="deep")
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titlesize": 11})


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


# -- chapter 3: accuracy attacks (SAME's RQ1) ----------------------------------------------

RECIPE_LABELS = {"pwws": "PWWS", "textfooler": "TextFooler", "deepwordbug": "DeepWordBug"}


def fig_attack_exit_histograms(record: dict[str, Any]) -> plt.Figure:
    """Exit-layer histograms of the attacked examples, clean against adversarial.

    One panel per (victim, recipe); the record is :func:`costeff_same.attacks.experiment.run_accuracy_attacks`'s.
    """
    use_style()
    victims = record["victims"]
    recipes = list(next(iter(victims.values()))["recipes"])
    fig, axes = plt.subplots(len(victims), len(recipes), figsize=(3.3 * len(recipes), 2.9 * len(victims)),
                             sharex=True, squeeze=False)
    for row, (name, v) in enumerate(victims.items()):
        for col, recipe in enumerate(recipes):
            ax = axes[row, col]
            eff = v["recipes"][recipe]["summary"]["efficiency"]
            if not eff.get("examples"):
                ax.set_axis_off()
                continue
            layers = np.arange(1, len(eff["histogram_clean"]) + 1)
            ax.bar(layers - 0.2, eff["histogram_clean"], 0.4, color=PALETTE[name], label="clean")
            ax.bar(layers + 0.2, eff["histogram_adv"], 0.4, color="grey", label="adversarial")
            ax.set_xticks(layers)
            ax.set_title(f"{RECIPE_LABELS.get(recipe, recipe)} vs {name}\nmean exit "
                         f"{eff['mean_exit_layer_clean']:.2f} -> {eff['mean_exit_layer_adv']:.2f}", fontsize=9)
            if row == len(victims) - 1:
                ax.set_xlabel("exit layer")
            if col == 0:
                ax.set_ylabel("attacked examples")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def fig_attack_overview(record: dict[str, Any]) -> plt.Figure:
    """Success rate and efficiency-gain reduction of every (victim, recipe)."""
    use_style()
    victims = record["victims"]
    recipes = list(next(iter(victims.values()))["recipes"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    x = np.arange(len(recipes))
    width = 0.8 / len(victims)
    for j, (name, v) in enumerate(victims.items()):
        rate = [v["recipes"][r]["summary"]["success_rate"] or 0.0 for r in recipes]
        red = [v["recipes"][r]["summary"]["efficiency"].get("efficiency_gain_reduction") or 0.0 for r in recipes]
        axes[0].bar(x + j * width, rate, width, color=PALETTE[name], label=VICTIM_LABELS[name])
        axes[1].bar(x + j * width, red, width, color=PALETTE[name], label=VICTIM_LABELS[name])
    for ax in axes:
        ax.set_xticks(x + width * (len(victims) - 1) / 2, [RECIPE_LABELS.get(r, r) for r in recipes])
        ax.axhline(0, color="black", lw=0.8)
    axes[0].set(ylabel="attack success rate", ylim=(0, 1), title="Attack success rate (attacked examples)")
    axes[1].set(ylabel="efficiency-gain reduction", title="Efficiency-gain reduction (same examples)")
    axes[1].axhline(0.8, color="black", ls=":", lw=1, label="SAME's 80% (slowdown attack)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig
