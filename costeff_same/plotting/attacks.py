"""Chapters 3-5's figures: accuracy attacks, SAME, and SAME against COST-EFF."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from costeff_same.foundations.names import (
    ABLATION_LABELS,
    RECIPE_LABELS,
    VICTIM_LABELS,
    costeff_label,
    recipe_label,
    victim_label,
)
from costeff_same.plotting.style import PALETTE, error_bars, exit_bars, interval_bars, use_style
from costeff_same.verdicts import finite

# -- chapter 3: accuracy attacks (SAME's RQ1) ----------------------------------------------

def fig_attack_exit_histograms(record: dict[str, Any]) -> plt.Figure:
    """Exit-layer histograms of the attacked examples, clean against adversarial.

    One panel per (victim, recipe); the record is :func:`costeff_same.chapters.accuracy_attacks.run_accuracy_attacks`'s.
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
            exit_bars(ax, eff, PALETTE[name], "adversarial")
            ax.set_title(f"{recipe_label(recipe)} vs {name}\nmean exit "
                         f"{eff['mean_exit_layer_clean']:.2f} -> {eff['mean_exit_layer_adv']:.2f}", fontsize=9)
            if row == len(victims) - 1:
                ax.set_xlabel("exit layer")
            if col == 0:
                ax.set_ylabel("attacked examples")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def fig_attack_overview(record: dict[str, Any]) -> plt.Figure:
    """Success rate and efficiency-gain reduction of every (victim, recipe), with 95% intervals."""
    use_style()
    victims = record["victims"]
    recipes = list(next(iter(victims.values()))["recipes"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    x = np.arange(len(recipes))
    width = 0.8 / len(victims)
    for j, (name, v) in enumerate(victims.items()):
        ci = [v["recipes"][r]["summary"]["intervals"] for r in recipes]
        style = {"color": PALETTE[name], "label": VICTIM_LABELS[name]}
        interval_bars(axes[0], x + j * width, [c["success_rate"] for c in ci], width, **style)
        interval_bars(axes[1], x + j * width, [(c["attacked"] or {}).get("efficiency_gain_reduction") for c in ci],
                      width, **style)
    for ax in axes:
        ax.set_xticks(x + width * (len(victims) - 1) / 2, [recipe_label(r) for r in recipes])
        ax.axhline(0, color="black", lw=0.8)
    axes[0].set(ylabel="attack success rate", ylim=(0, 1), title="Attack success rate (attacked examples)")
    axes[1].set(ylabel="efficiency-gain reduction", title="Efficiency-gain reduction (same examples)")
    axes[1].axhline(0.8, color="black", ls=":", lw=1, label="SAME's 80% (slowdown attack)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


# -- chapter 4: the SAME slowdown attack ------------------------------------------------------

def fig_same_exit_histograms(record: dict[str, Any]) -> plt.Figure:
    """Exit-layer histograms of every attacked-or-skipped sentence, clean against SAME's adversarial texts.

    One panel per victim; the record is :func:`costeff_same.chapters.same.run_same`'s.
    """
    use_style()
    victims = record["victims"]
    fig, axes = plt.subplots(1, len(victims), figsize=(4.2 * len(victims), 3.3), sharey=True, squeeze=False)
    for ax, (name, v) in zip(axes[0], victims.items()):
        e = v["main"]["summary"]["efficiency_all"]
        exit_bars(ax, e, PALETTE[name], "SAME")
        ax.set(xlabel="exit layer", title=f"{VICTIM_LABELS[name]}\nmean exit {e['mean_exit_layer_clean']:.2f} -> "
                                          f"{e['mean_exit_layer_adv']:.2f}")
    axes[0, 0].set_ylabel("test sentences")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def fig_same_shift(record: dict[str, Any]) -> plt.Figure:
    """Per-sentence shift: clean exit layer against adversarial exit layer (bubble area = sentences)."""
    use_style()
    victims = record["victims"]
    depth = record["num_layers"]
    fig, axes = plt.subplots(1, len(victims), figsize=(4.0 * len(victims), 3.6), squeeze=False)
    for ax, (name, v) in zip(axes[0], victims.items()):
        pairs = [(r["original_exit_layer"], r["perturbed_exit_layer"]) for r in v["main"]["results"]]
        counts: dict[tuple[int, int], int] = {}
        for p in pairs:
            counts[p] = counts.get(p, 0) + 1
        xs, ys, ns = zip(*[(a, b, n) for (a, b), n in counts.items()]) if counts else ((), (), ())
        ax.scatter(xs, ys, s=[25 + 8 * n for n in ns], color=PALETTE[name], alpha=0.7, edgecolor="black")
        for x, y, n in zip(xs, ys, ns):
            ax.annotate(str(n), (x, y), ha="center", va="center", fontsize=7)
        ax.plot([0.5, depth + 0.5], [0.5, depth + 0.5], ls=":", color="black", lw=1)
        ax.set(xlim=(0.5, depth + 0.5), ylim=(0.5, depth + 0.5), xlabel="clean exit layer",
               ylabel="adversarial exit layer", title=VICTIM_LABELS[name])
        ax.set_xticks(range(1, depth + 1))
        ax.set_yticks(range(1, depth + 1))
    fig.tight_layout()
    return fig


def fig_same_ablations(record: dict[str, Any]) -> plt.Figure:
    """Efficiency-gain reduction and success rate of SAME and its ablations (same sentences per
    victim), with 95% intervals."""
    use_style()
    victims = {n: v for n, v in record["victims"].items() if v.get("ablations")}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    if not victims:
        for ax in axes:
            ax.set_axis_off()
        return fig
    variants = [k for k in ABLATION_LABELS if any(k in v["ablations"] for v in victims.values())]
    x = np.arange(len(variants))
    width = 0.8 / len(victims)
    for j, (name, v) in enumerate(victims.items()):
        ci = [v["ablations"].get(k, {}).get("summary", {}).get("intervals") or {} for k in variants]
        style = {"color": PALETTE[name], "label": VICTIM_LABELS[name]}
        interval_bars(axes[0], x + j * width, [(c.get("all") or {}).get("efficiency_gain_reduction") for c in ci],
                      width, **style)
        interval_bars(axes[1], x + j * width, [c.get("success_rate") for c in ci], width, **style)
    for ax in axes:
        ax.set_xticks(x + width * (len(victims) - 1) / 2, [ABLATION_LABELS[k] for k in variants],
                      rotation=35, ha="right", fontsize=8)
        ax.axhline(0, color="black", lw=0.8)
    axes[0].set(ylabel="efficiency-gain reduction", title="Efficiency-gain reduction")
    axes[0].axhline(0.8, color="black", ls=":", lw=1, label="paper: 80% on average")
    axes[1].set(ylabel="success rate", ylim=(0, 1.05), title="Success rate (attacked sentences)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig_same_budget_curve(section: dict[str, Any]) -> plt.Figure:
    """SAME's efficiency-gain reduction against its word budget (1, 2, 3 words and the paper's
    ``max(3, 10%)``), per victim, with 95% intervals; ``section`` is the ``same`` summary section."""
    use_style()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    curves = section.get("budget_curve") or {}
    for j, (name, points) in enumerate(curves.items()):
        x = np.arange(len(points)) + (j - (len(curves) - 1) / 2) * 0.08
        intervals = [p["efficiency_gain_reduction"] for p in points]
        ax.errorbar(x, [i["estimate"] if finite(i) else np.nan for i in intervals], yerr=error_bars(intervals),
                    marker="o", capsize=3, color=PALETTE[name], label=VICTIM_LABELS[name])
        ax.set_xticks(np.arange(len(points)),
                      [f"{p['words']} word{'s' if p['words'] != 1 else ''}" if p["words"] else "paper: max(3, 10%)"
                       for p in points])
    ax.set(xlabel="word budget", ylabel="efficiency-gain reduction", ylim=(-0.05, 1.05),
           title="SAME against its word budget")
    ax.axhline(0.8, color="black", ls=":", lw=1, label="paper: 80% on average")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig_same_vs_accuracy_attacks(record: dict[str, Any], accuracy_rows: list[dict[str, Any]] | None) -> plt.Figure:
    """SAME's efficiency-gain reduction beside the accuracy attacks' of chapter 3 (RQ2 against RQ1),
    with 95% intervals.

    Args:
        record: chapter 4's record.
        accuracy_rows: chapter 3's ``(victim, recipe)`` summary records, or None when it has not run.
    """
    use_style()
    victims = list(record["victims"])
    recipes = ["same"] + sorted({r["recipe"] for r in accuracy_rows or []})
    fig, ax = plt.subplots(figsize=(6.8, 3.6))
    x = np.arange(len(recipes))
    width = 0.8 / len(victims)
    for j, name in enumerate(victims):
        values = []
        for recipe in recipes:
            if recipe == "same":
                values.append(record["victims"][name]["main"]["summary"]["intervals"]["all"]
                              ["efficiency_gain_reduction"])
            else:
                row = next((r for r in accuracy_rows if r["victim"] == name and r["recipe"] == recipe), None)
                values.append((((row or {}).get("intervals") or {}).get("attacked") or {})
                              .get("efficiency_gain_reduction"))
        interval_bars(ax, x + j * width, values, width, color=PALETTE[name], label=VICTIM_LABELS[name])
    ax.set_xticks(x + width * (len(victims) - 1) / 2, ["SAME"] + [RECIPE_LABELS.get(r, r) for r in recipes[1:]])
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(0.8, color="black", ls=":", lw=1, label="paper: SAME 80% on average")
    ax.set(ylabel="efficiency-gain reduction", title="Slowdown attack against accuracy attacks")
    ax.legend(fontsize=7)
    return fig


# -- chapter 5: SAME against COST-EFF ----------------------------------------------------------

def _model_colors(names: list[str]) -> dict[str, Any]:
    """Chapter 1's victims keep their colour; chapter 2's models take the palette's next ones."""
    others = iter(sns.color_palette("deep", 10)[2:])
    return {n: PALETTE[n] if n in PALETTE else next(others) for n in names}


def fig_same_vs_costeff_tradeoff(summary: dict[str, Any], attack: str = "same") -> plt.Figure:
    """Accuracy against FLOPs per example, clean and under ``attack``, one arrow per victim.

    Each victim's clean point (its accuracy and mean FLOPs per example on the clean sentences)
    is joined by an arrow to its point under the attack; the static slender model of COST-EFF's
    width and the teacher, which never exit, are fixed points (on COST-EFF's sentences, clean).
    Whiskers: 95% intervals of the FLOPs. ``summary`` is chapter 5's summary section.
    """
    use_style()
    victims = summary["victims"]
    colors = _model_colors(list(victims))
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    for name, v in victims.items():
        row = v["attacks"].get(attack)
        if row is None:
            continue
        x0, x1 = row["flops_clean"] / 1e6, row["flops_adv"] / 1e6
        y0, y1 = row["accuracy_before"], row["accuracy_after"]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "->", "color": colors[name], "lw": 1.5})
        ax.scatter([x0], [y0], color=colors[name], edgecolor="black", zorder=5,
                   label=victim_label(name, short=True))
        ax.scatter([x1], [y1], color=colors[name], marker="X", s=60, edgecolor="black", zorder=5)
        for x, y, key in ((x0, y0, "flops_clean"), (x1, y1, "flops_adv")):
            interval = row["intervals"][key]
            if finite(interval):
                ax.errorbar([x], [y], xerr=[[x - interval["low"] / 1e6], [interval["high"] / 1e6 - x]],
                            color=colors[name], lw=0.8, capsize=2)
    d = summary.get("deployer", {}).get(attack)
    if d:
        for who, marker, label in (("static", "s", costeff_label(summary["static_model"])),
                                   ("teacher", "D", "teacher (never exits)")):
            if f"{who}_clean_accuracy" in d:
                ax.scatter([d[f"{who}_clean_flops"] / 1e6], [d[f"{who}_clean_accuracy"]], marker=marker, s=70,
                           color="white", edgecolor="black", zorder=6, label=f"{label}, static")
    ax.set_xscale("log")
    ax.set(xlabel="FLOPs per example (millions, log scale)", ylabel="accuracy on the attacked sentences",
           title=f"Clean (dots) and under {recipe_label(attack)} "
                 "(crosses)")
    ax.legend(fontsize=7, loc="best")
    return fig


def fig_same_vs_costeff_exits(record: dict[str, Any], attack: str = "same") -> plt.Figure:
    """Exit-layer histograms of each victim's sentences, clean against ``attack``'s texts.

    One panel per victim; ``record`` is :func:`costeff_same.chapters.same_vs_costeff.run_same_vs_costeff`'s.
    """
    use_style()
    victims = {n: v for n, v in record["victims"].items() if attack in v["attacks"]}
    colors = _model_colors(list(record["victims"]))
    fig, axes = plt.subplots(1, len(victims), figsize=(3.4 * len(victims), 3.2), sharey=True, squeeze=False)
    for ax, (name, v) in zip(axes[0], victims.items()):
        e = v["attacks"][attack]["efficiency"]
        exit_bars(ax, e, colors[name], "attacked")
        ax.set(xlabel="exit layer", title=f"{victim_label(name, short=True)}\nmean exit "
                                          f"{e['mean_exit_layer_clean']:.2f} -> {e['mean_exit_layer_adv']:.2f}")
    axes[0, 0].set_ylabel("test sentences")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig
