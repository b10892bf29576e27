"""The book's one figure style, its victim colours and interval bars."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from costeff_same.foundations.names import (
    VICTIM_LABELS,
)
from costeff_same.verdicts import finite

PALETTE = dict(zip(VICTIM_LABELS, sns.color_palette("deep", 2)))


def use_style() -> None:
    """The book's one style (seaborn ``whitegrid``, readable sizes)."""
    sns.set_theme(style="whitegrid", context="notebook", palette="deep")
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titlesize": 11})


def interval_bars(ax: plt.Axes, x: np.ndarray, intervals: list[dict[str, Any] | None], width: float,
                  **style: Any) -> None:
    """Bars at the estimates with their 95% intervals as error bars (no interval: no bar)."""
    heights = [i["estimate"] if finite(i) else 0.0 for i in intervals]
    ax.bar(x, heights, width, yerr=error_bars(intervals), capsize=2, error_kw={"lw": 0.8}, **style)


def error_bars(intervals: list[dict[str, Any] | None]) -> list[list[float]]:
    """Matplotlib's ``[below, above]`` error lengths of 95% intervals (0 where there is none)."""
    return [[i["estimate"] - i["low"] if finite(i) else 0.0 for i in intervals],
            [i["high"] - i["estimate"] if finite(i) else 0.0 for i in intervals]]


def exit_bars(ax: plt.Axes, efficiency: dict[str, Any], color: Any, adv_label: str) -> None:
    """Exit-layer histograms side by side on ``ax``: clean (``color``) and attacked (grey), from an
    :func:`~costeff_same.core.metrics.efficiency_change` record (``histogram_clean``, ``histogram_adv``)."""
    layers = np.arange(1, len(efficiency["histogram_clean"]) + 1)
    ax.bar(layers - 0.2, efficiency["histogram_clean"], 0.4, color=color, label="clean")
    ax.bar(layers + 0.2, efficiency["histogram_adv"], 0.4, color="grey", label=adv_label)
    ax.set_xticks(layers)
