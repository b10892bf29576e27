"""The statistics every finding of the book is stated with (see the methods page, "Uncertainty").

All of it is scipy or statsmodels; this module only fixes the settings once:

- :func:`bootstrap_interval`: a 95% bootstrap confidence interval, BCa (Efron, 1987), 2,000
  resamples, seeded (``scipy.stats.bootstrap``). Samples of several arrays are resampled
  as *pairs* (one example's values stay together). A sample whose every resample gives the
  same value has the degenerate interval [estimate, estimate]; where BCa cannot be
  computed otherwise, the percentile interval is used and named.
- the intervals of the headline figures: a mean or share (:func:`mean_interval`: accuracy,
  attack success rate, perturbation rate), a task metric (:func:`metric_interval`), the
  difference or ratio of two models' metrics on the same examples
  (:func:`paired_metric_interval`: a comparison, COST-EFF's retention), the exit statistics
  (:func:`exit_intervals`: mean exit layer, speedup ``L / mean``, efficiency gain
  ``1 - mean / L``) and a difference of speedups (:func:`speedup_difference_interval`),
  SAME's efficiency-gain reduction (:func:`reduction_interval`, clean and adversarial exit
  layers resampled together; :func:`reduction_difference_interval` for two attacks), and
  DeepSloth's efficacy (:func:`efficacy_interval`).
- paired tests: the exact McNemar test of two models' correctness on the same examples
  (:func:`mcnemar_exact`, McNemar, 1947; statsmodels), and Holm's step-down correction of a
  family of p-values (:func:`holm`, Holm, 1979; statsmodels).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sklearn
from scipy.stats import bootstrap
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from costeff_same.core.metrics import efficacy, task_metric

#: the confidence level of every interval in the book
CONFIDENCE = 0.95
#: bootstrap resamples per interval
RESAMPLES = 2000
#: the seed of every bootstrap (an interval is a pure function of its data)
SEED = 0

#: ``{"estimate", "low", "high", "confidence", "method", "resamples", "n"}``
Interval = dict[str, Any]


def bootstrap_interval(samples: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], *,
                       seed: int = SEED, resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                       vectorized: bool = True) -> Interval:
    """The bootstrap confidence interval of ``statistic`` over ``samples`` (``scipy.stats.bootstrap``, BCa).

    Args:
        samples: one or more ``(N,)`` arrays of the same length, one value per example;
            several arrays are resampled as pairs (the same examples in each).
        statistic: ``statistic(*samples, axis=-1)``, vectorised along ``axis`` (with
            ``vectorized=False``: ``statistic(*samples)`` of one resample).
        seed: seeds the resampling.
        resamples: bootstrap resamples (>= 100).
        confidence: the confidence level, in (0, 1).

    Returns:
        ``estimate`` (the statistic of the sample), ``low``, ``high``, ``confidence``,
        ``method`` (``BCa``, ``percentile`` where BCa could not be computed, or
        ``degenerate`` when every resample gives the estimate), ``resamples`` and ``n``.

    Raises:
        ValueError: for an empty sample, arrays of different lengths, fewer than 100
            resamples or a confidence outside (0, 1).
    """
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    n = len(arrays[0]) if arrays else 0
    if n == 0 or any(len(a) != n for a in arrays):
        raise ValueError(f"samples must be non-empty arrays of one length, got lengths {[len(a) for a in arrays]}")
    if resamples < 100 or not 0 < confidence < 1:
        raise ValueError(f"resamples={resamples} must be >= 100 and confidence={confidence} in (0, 1)")
    estimate = float(statistic(*arrays, axis=-1) if vectorized else statistic(*arrays))
    out = {"estimate": estimate, "confidence": confidence, "resamples": resamples, "n": n}
    if n == 1 or all(np.all(a == a[0]) for a in arrays):
        return {**out, "low": estimate, "high": estimate, "method": "degenerate"}
    for method in ("BCa", "percentile"):
        # a statistic that calls scikit-learn once per resample (a metric, the AUROC) skips its
        # argument checks there: the estimate above has passed them on the same kind of data
        with warnings.catch_warnings(), sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
            warnings.simplefilter("ignore")
            result = bootstrap(arrays, statistic, n_resamples=resamples, paired=len(arrays) > 1, vectorized=vectorized,
                               confidence_level=confidence, method=method, rng=np.random.default_rng(seed))
        low, high = (float(v) for v in result.confidence_interval)
        if np.isfinite(low) and np.isfinite(high):
            return {**out, "low": low, "high": high, "method": method}
        if np.allclose(result.bootstrap_distribution, estimate, equal_nan=True):
            return {**out, "low": estimate, "high": estimate, "method": "degenerate"}
    return {**out, "low": float("nan"), "high": float("nan"), "method": "undefined"}


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def mean_interval(values: np.ndarray, seed: int = SEED) -> Interval:
    """The interval of a mean of ``(N,)`` per-example values (a share, when they are 0/1)."""
    return bootstrap_interval([values], _mean, seed=seed)


def metric_interval(metric: str, predictions: np.ndarray, labels: np.ndarray, seed: int = SEED) -> Interval:
    """The interval of the task metric ``metric`` of ``(N,)`` predictions against ``(N,)`` labels
    (accuracy as a share; F1, Matthews and the correlations by resampling example pairs)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if metric == "accuracy":
        return mean_interval((predictions == labels).astype(float), seed)
    return bootstrap_interval([predictions, labels], lambda p, y: task_metric(metric, p, y), seed=seed,
                              vectorized=False)


def exit_intervals(exit_layer: np.ndarray, depth: int, seed: int = SEED) -> dict[str, Interval]:
    """Intervals of the mean exit layer (layers), the speedup ``L / mean`` and the efficiency
    gain ``1 - mean / L`` of ``(N,)`` exit layers in 1..``depth``.

    Raises:
        ValueError: for an exit layer outside 1..L.
    """
    exit_layer = np.asarray(exit_layer)
    if exit_layer.size and (exit_layer.min() < 1 or exit_layer.max() > depth):
        raise ValueError(f"exit layers must be in 1..{depth}, got values {sorted(set(exit_layer.tolist()))[:10]}")
    return {
        "mean_exit_layer": bootstrap_interval([exit_layer], _mean, seed=seed),
        "speedup": bootstrap_interval([exit_layer], lambda e, axis=-1: depth / np.mean(e, axis=axis), seed=seed),
        "efficiency_gain": bootstrap_interval([exit_layer], lambda e, axis=-1: 1 - np.mean(e, axis=axis) / depth,
                                              seed=seed),
    }


def speedup_difference_interval(a: np.ndarray, b: np.ndarray, depth: int, seed: int = SEED) -> Interval:
    """The paired interval of speedup(A) - speedup(B), ``L / mean exit layer``, from two exit
    policies' ``(N,)`` exit layers on the same examples."""
    def difference(x, y, axis=-1):
        return depth / np.mean(x, axis=axis) - depth / np.mean(y, axis=axis)

    return bootstrap_interval([a, b], difference, seed=seed)


def _reduction(clean: np.ndarray, adv: np.ndarray, depth: int, axis: int = -1) -> np.ndarray:
    g_clean = 1 - np.mean(clean, axis=axis) / depth
    g_adv = 1 - np.mean(adv, axis=axis) / depth
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(g_clean > 0, (g_clean - g_adv) / np.where(g_clean > 0, g_clean, 1), np.nan)


def reduction_interval(clean: np.ndarray, adv: np.ndarray, depth: int, seed: int = SEED) -> Interval:
    """The interval of SAME's efficiency-gain reduction ``(g_clean - g_adv) / g_clean``
    (Chen et al., 2023), ``g = 1 - mean exit layer / L``.

    Each resample draws examples with their clean and adversarial exit layers together, so
    the interval reflects the pairing of the attack. Given several victims attacked on the
    same examples, it is the interval of their mean reduction, each resample drawing the
    same examples for every victim.

    Args:
        clean: ``(N,)`` exit layers of the clean texts (1..L), or ``(V, N)`` for V victims.
        adv: the same shape: the exit layers of their adversarial texts.
        depth: L.

    Raises:
        ValueError: when ``clean`` and ``adv`` differ in shape.
    """
    clean, adv = np.atleast_2d(np.asarray(clean)), np.atleast_2d(np.asarray(adv))
    if clean.shape != adv.shape:
        raise ValueError(f"clean and adv must have one shape, got {clean.shape} and {adv.shape}")

    def mean_reduction(*arrays, axis=-1):
        return np.mean([_reduction(c, a, depth, axis) for c, a in zip(arrays[0::2], arrays[1::2])], axis=0)

    return bootstrap_interval([x for pair in zip(clean, adv) for x in pair], mean_reduction, seed=seed)


def reduction_difference_interval(clean: np.ndarray, adv_a: np.ndarray, adv_b: np.ndarray, depth: int,
                                  seed: int = SEED) -> Interval:
    """The paired interval of reduction(A) - reduction(B): two attacks (``(N,)`` adversarial
    exit layers each) on the same ``(N,)`` clean examples, resampled together."""
    return bootstrap_interval([clean, adv_a, adv_b], lambda c, a, b, axis=-1: _reduction(c, a, depth, axis)
                              - _reduction(c, b, depth, axis), seed=seed)


def efficacy_interval(exit_layer: np.ndarray, depth: int, seed: int = SEED) -> Interval:
    """The interval of :func:`efficacy` of ``(N,)`` exit layers."""
    return bootstrap_interval([exit_layer], lambda e, axis=-1: efficacy(e, depth, axis), seed=seed)


#: how :func:`paired_metric_interval` combines the two models' metrics
COMBINATIONS = {"difference": np.subtract, "ratio": np.divide}


def paired_metric_interval(metric: str, a: np.ndarray, b: np.ndarray, labels: np.ndarray, how: str = "difference",
                           seed: int = SEED) -> Interval:
    """The paired-bootstrap interval of metric(A) - metric(B) (``how="difference"``) or
    metric(A) / metric(B) (``"ratio"``: COST-EFF's retention, student over teacher) from two
    models' ``(N,)`` predictions on the same examples; each resample draws the examples once
    for both models.

    Raises:
        ValueError: for an unknown ``how`` (the accepted ones are listed).
    """
    if how not in COMBINATIONS:
        raise ValueError(f"unknown how={how!r}; accepted: {', '.join(COMBINATIONS)}")
    combine = COMBINATIONS[how]
    a, b, labels = np.asarray(a), np.asarray(b), np.asarray(labels)
    if metric == "accuracy":
        def statistic(x, y, axis=-1):
            with np.errstate(divide="ignore", invalid="ignore"):
                return combine(np.mean(x, axis=axis), np.mean(y, axis=axis))

        return bootstrap_interval([(a == labels).astype(float), (b == labels).astype(float)], statistic, seed=seed)
    return bootstrap_interval([a, b, labels],
                              lambda x, y, t: combine(task_metric(metric, x, t), task_metric(metric, y, t)),
                              seed=seed, vectorized=False)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
    """The exact McNemar test of two models' correctness on the same examples (McNemar, 1947).

    Args:
        correct_a: ``(N,)`` booleans, model A right.
        correct_b: ``(N,)`` booleans, model B right.

    Returns:
        ``a_only`` and ``b_only`` (the discordant counts) and the two-sided exact ``p_value``
        (a binomial test of ``a_only`` among the discordant pairs; 1.0 when there are none).

    Raises:
        ValueError: when the arrays differ in length.
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must have one shape, got {a.shape} and {b.shape}")
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    p = 1.0 if table[0][1] + table[1][0] == 0 else float(mcnemar(table, exact=True).pvalue)
    return {"a_only": table[0][1], "b_only": table[1][0], "p_value": p}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values of a family of tests (Holm, 1979), in the given order."""
    if not len(p_values):
        return []
    return [float(p) for p in multipletests(list(p_values), method="holm")[1]]
