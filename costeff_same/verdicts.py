"""The rules that turn measurements into words, stated once (the methods page, "Verdicts").

No sentence of the book says "beats", "within noise", "reproduced" or "holds" unless one of
these functions said it, from the results:

- :func:`comparison`: model A against model B on the same examples: ``beats`` when the
  (family-corrected) p-value is below :data:`ALPHA` and the 95% interval of A - B lies above
  0, ``worse`` when it lies below 0 at such a p-value, ``within noise`` otherwise.
- :func:`shift`: one effect against none (an attack's efficiency-gain reduction, an
  exit-layer shift): ``increase``/``decrease`` under the same rule, else ``no significant
  change``.
- :func:`quantitative`: a paper's figure against our interval: ``reproduced`` when our 95%
  interval, widened by a stated tolerance, reaches the figure (contains it for an "about"
  figure; reaches it or beyond for "at least", or below for "at most"), ``partly`` when our
  interval excludes the null on the paper's side but misses the figure, ``not reproduced``
  otherwise; ``not testable here`` without a finite interval.
- :func:`goal`: a measured cost against a stated limit (chapter 6's defence goal): ``met``
  when the whole 95% interval lies at or below the limit, ``missed`` when it lies above,
  ``undecided`` when it straddles it.
- :func:`directional`: a paper's qualitative claim against our verdicts in each setting
  (victims, budgets, seeds): ``reproduced`` when every setting gives an accepted verdict,
  ``partly`` when some do, ``not reproduced`` when none does, ``not testable here`` with none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from costeff_same.core.statistics import Interval

#: the significance level of every test in the book (after Holm's correction within a family)
ALPHA = 0.05
#: every verdict :func:`comparison` gives
COMPARISONS = ("beats", "within noise", "worse")
#: every verdict :func:`shift` gives
SHIFTS = ("increase", "no significant change", "decrease")
#: every verdict :func:`goal` gives
GOALS = ("met", "undecided", "missed")
#: every verdict a claim of the reproduction summary gets
REPRODUCTIONS = ("reproduced", "partly", "not reproduced", "not testable here")


def finite(interval: Interval | None) -> bool:
    """Whether ``interval`` exists and its estimate and bounds are finite numbers."""
    return interval is not None and all(isinstance(interval.get(k), (int, float)) and math.isfinite(interval[k])
                                        for k in ("estimate", "low", "high"))


def _signed(interval: Interval, p_value: float | None, above: str, none: str, below: str) -> str:
    significant = p_value is None or p_value < ALPHA
    if significant and interval["low"] > 0:
        return above
    if significant and interval["high"] < 0:
        return below
    return none


def comparison(difference: Interval, p_value: float | None = None) -> str:
    """``beats``, ``within noise`` or ``worse``: A against B from the interval of A - B.

    Args:
        difference: the paired interval of A - B (e.g. of accuracies on the same examples).
        p_value: the paired test's p-value, already corrected for its family (None: the
            interval decides alone).

    Raises:
        ValueError: for an interval that is not finite.
    """
    if not finite(difference):
        raise ValueError(f"a comparison needs a finite interval, got {difference}")
    return _signed(difference, p_value, "beats", "within noise", "worse")


def shift(effect: Interval, p_value: float | None = None) -> str:
    """``increase``, ``no significant change`` or ``decrease`` of one effect against 0.

    Raises:
        ValueError: for an interval that is not finite.
    """
    if not finite(effect):
        raise ValueError(f"a shift needs a finite interval, got {effect}")
    return _signed(effect, p_value, "increase", "no significant change", "decrease")


#: how a paper's figure is read by :func:`quantitative`
SIDES = ("about", "at_least", "at_most")


def quantitative(paper: float, ours: Interval | None, tolerance: float = 0.0, null: float | None = 0.0,
                 side: str = "about") -> str:
    """A paper's figure against our 95% interval.

    Args:
        paper: the paper's figure.
        ours: our interval of the same quantity (None: not measured here).
        tolerance: how far outside our interval the figure may lie and still count, in the
            figure's units (stated with the claim: "about" figures get one).
        null: the value that means "no effect" (0 for a reduction); None where no value
            does (a retention, a parameter fraction): then there is no ``partly``.
        side: ``about`` (the figure itself), ``at_least`` (the figure or more: "keeps 96.5%")
            or ``at_most`` (the figure or less: "1/8 of the parameters").

    Returns:
        One of :data:`REPRODUCTIONS`: ``reproduced`` when our interval, widened by
        ``tolerance``, reaches the figure (``about``: contains it; ``at_least``: reaches it or
        beyond; ``at_most``: reaches it or below); else ``partly`` when our interval excludes
        ``null`` on the paper's side; else ``not reproduced``.

    Raises:
        ValueError: for an unknown ``side`` (the accepted ones are listed).
    """
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}; accepted: {', '.join(SIDES)}")
    if not finite(ours):
        return "not testable here"
    reaches = {"about": ours["low"] - tolerance <= paper <= ours["high"] + tolerance,
               "at_least": ours["high"] + tolerance >= paper,
               "at_most": ours["low"] - tolerance <= paper}[side]
    if reaches:
        return "reproduced"
    if null is None:
        return "not reproduced"
    same_side = (paper > null and ours["low"] > null) or (paper < null and ours["high"] < null)
    return "partly" if same_side else "not reproduced"


def goal(cost: Interval, limit: float) -> str:
    """``met``, ``undecided`` or ``missed``: a cost (lower is better) against the largest value allowed.

    Args:
        cost: the 95% interval of the cost (an accuracy loss, an efficiency-gain reduction).
        limit: the largest cost the goal allows.

    Raises:
        ValueError: for an interval that is not finite.
    """
    if not finite(cost):
        raise ValueError(f"a goal needs a finite interval, got {cost}")
    if cost["high"] <= limit:
        return "met"
    return "missed" if cost["low"] > limit else "undecided"


def directional(accepted: Iterable[str], found: Iterable[str]) -> str:
    """A qualitative claim against our verdict in each setting.

    Args:
        accepted: the verdicts that agree with the claim (e.g. ``("beats", "within noise")``
            for "at least as accurate").
        found: our verdict in each setting (victims, budgets, seeds).

    Returns:
        One of :data:`REPRODUCTIONS`.
    """
    accepted, found = set(accepted), list(found)
    if not found:
        return "not testable here"
    agree = sum(f in accepted for f in found)
    return "reproduced" if agree == len(found) else "partly" if agree else "not reproduced"


def interval_text(interval: Interval | None, percent: bool = False, digits: int = 3) -> str:
    """``0.812 [0.789, 0.835]`` (or ``81.2% [78.9, 83.5]``): how the book writes an estimate
    with its 95% interval; ``n/a`` without a finite one."""
    if not finite(interval):
        return "n/a"
    e, low, high = interval["estimate"], interval["low"], interval["high"]
    if percent:
        return f"{100 * e:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
    return f"{e:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
