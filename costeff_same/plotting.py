"""Figures: result records in, matplotlib ``Figure`` out, one style for the whole book.

Compute and plotting are separate: every ``fig_*`` reads a cached record, so restyling a
figure never re-runs training.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import seaborn as sns

from costeff_same.foundations.names import (
    ABLATION_LABELS,
    COSTEFF_LABELS,
    RECIPE_LABELS,
    VICTIM_LABELS,
    costeff_label,
    recipe_label,
)
from costeff_same.verdicts import finite

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
            layers = np.arange(1, len(eff["histogram_clean"]) + 1)
            ax.bar(layers - 0.2, eff["histogram_clean"], 0.4, color=PALETTE[name], label="clean")
            ax.bar(layers + 0.2, eff["histogram_adv"], 0.4, color="grey", label="adversarial")
            ax.set_xticks(layers)
            ax.set_title(f"{recipe_label(recipe)} vs {name}\nmean exit "
                         f"{eff['mean_exit_layer_clean']:.2f} -> {eff['mean_exit_layer_adv']:.2f}", fontsize=9)
            if row == len(victims) - 1:
                ax.set_xlabel("exit layer")
            if col == 0:
                ax.set_ylabel("attacked examples")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def interval_bars(ax: plt.Axes, x: np.ndarray, intervals: list[dict[str, Any] | None], width: float,
                  **style: Any) -> None:
    """Bars at the estimates with their 95% intervals as error bars (no interval: no bar)."""
    heights = [i["estimate"] if finite(i) else 0.0 for i in intervals]
    ax.bar(x, heights, width, yerr=error_bars(intervals), capsize=2, error_kw={"lw": 0.8}, **style)


def error_bars(intervals: list[dict[str, Any] | None]) -> list[list[float]]:
    """Matplotlib's ``[below, above]`` error lengths of 95% intervals (0 where there is none)."""
    return [[i["estimate"] - i["low"] if finite(i) else 0.0 for i in intervals],
            [i["high"] - i["estimate"] if finite(i) else 0.0 for i in intervals]]


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


# -- chapter 2: COST-EFF --------------------------------------------------------------------------

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
        layers = np.arange(1, len(e["histogram_clean"]) + 1)
        ax.bar(layers - 0.2, e["histogram_clean"], 0.4, color=PALETTE[name], label="clean")
        ax.bar(layers + 0.2, e["histogram_adv"], 0.4, color="grey", label="SAME")
        ax.set_xticks(layers)
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


# -- the reproduction summary ------------------------------------------------------------------------

def fig_reproduction(claims: list[dict[str, Any]]) -> plt.Figure:
    """Each quantitative claim: the paper's figure (a cross) against our estimate and 95% interval.

    Args:
        claims: the ``reproduction`` section's claim rows.
    """
    use_style()
    rows = [c for c in claims if c.get("paper_value") is not None]
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * max(1, len(rows)) + 1.2))
    for y, c in enumerate(rows):
        ours = c["ours"]
        if finite(ours):
            ax.errorbar(ours["estimate"], y, xerr=error_bars([ours]), fmt="o", color=PALETTE["entropy"], capsize=3,
                        label="ours (95% interval)" if y == 0 else None)
        ax.plot(c["paper_value"], y, "x", color="black", ms=8, label="paper" if y == 0 else None)
    ax.set_yticks(range(len(rows)), [f"{c['key']} ({c['verdict']})" for c in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="fraction (retention, parameters, FLOPs, efficiency gain, gain reduction)",
           title="The papers' figures against ours")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
