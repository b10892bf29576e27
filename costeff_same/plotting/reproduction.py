"""The reproduction summary's figure: every claim's verdict and interval."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from costeff_same.plotting.style import PALETTE, error_bars, use_style
from costeff_same.verdicts import finite

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
