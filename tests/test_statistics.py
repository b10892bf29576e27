"""The statistics of the book's findings (costeff_same.core.statistics) on hand-made samples."""

import numpy as np
import pytest
from scipy import stats

from costeff_same.core import statistics as st
from costeff_same.core.metrics import efficacy


def test_interval_equals_scipy_bootstrap_for_the_same_seed():
    x = np.array([0.2, 0.9, 0.4, 0.4, 1.3, 0.7, 0.1, 0.8, 0.5, 1.1, 0.3, 0.6])
    ours = st.mean_interval(x, seed=7)
    ref = stats.bootstrap((x,), np.mean, n_resamples=st.RESAMPLES, confidence_level=0.95, method="BCa",
                          rng=np.random.default_rng(7))
    assert ours["method"] == "BCa" and ours["resamples"] >= 2000
    assert ours["low"] == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert ours["high"] == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert ours["estimate"] == pytest.approx(x.mean())
    assert ours["low"] < ours["estimate"] < ours["high"]


def test_a_constant_sample_has_the_degenerate_interval():
    ours = st.mean_interval(np.ones(30))
    assert (ours["low"], ours["high"], ours["method"]) == (1.0, 1.0, "degenerate")


def test_bad_samples_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        st.mean_interval(np.array([]))
    with pytest.raises(ValueError, match="one length"):
        st.bootstrap_interval([np.ones(3), np.ones(4)], lambda a, b, axis=-1: np.mean(a, axis=axis))
    with pytest.raises(ValueError, match="accepted: difference, ratio"):
        st.paired_metric_interval("accuracy", np.ones(3), np.ones(3), np.ones(3), how="sum")


def test_exact_mcnemar_on_a_hand_made_table():
    # 2 examples only A gets right, 8 only B: p = 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * 56 / 1024
    a = np.array([1] * 5 + [1] * 2 + [0] * 8 + [0] * 3, dtype=bool)
    b = np.array([1] * 5 + [0] * 2 + [1] * 8 + [0] * 3, dtype=bool)
    test = st.mcnemar_exact(a, b)
    assert (test["a_only"], test["b_only"]) == (2, 8)
    assert test["p_value"] == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert st.mcnemar_exact(a, a)["p_value"] == 1.0


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04)
    assert st.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert st.holm([]) == []


def test_reduction_interval_resamples_clean_and_adversarial_exits_as_pairs():
    rng = np.random.default_rng(0)
    clean = rng.integers(1, 6, 150)
    adv = np.minimum(6, clean + 1)          # every example one layer later: strongly paired
    ours = st.reduction_interval(clean, adv, 6)
    paired = stats.bootstrap((clean, adv), lambda c, a, axis=-1: ((1 - c.mean(axis) / 6) - (1 - a.mean(axis) / 6))
                             / (1 - c.mean(axis) / 6), paired=True, n_resamples=st.RESAMPLES, method="BCa",
                             rng=np.random.default_rng(st.SEED), vectorized=True)
    apart = stats.bootstrap((clean, adv), lambda c, a, axis=-1: ((1 - c.mean(axis) / 6) - (1 - a.mean(axis) / 6))
                            / (1 - c.mean(axis) / 6), paired=False, n_resamples=st.RESAMPLES, method="percentile",
                            rng=np.random.default_rng(st.SEED), vectorized=True)
    assert ours["low"] == pytest.approx(paired.confidence_interval.low)
    assert ours["high"] == pytest.approx(paired.confidence_interval.high)
    width = ours["high"] - ours["low"]
    apart_width = apart.confidence_interval.high - apart.confidence_interval.low
    assert apart_width > 1.5 * width       # resampled apart, the pairing's information is lost


def test_reduction_interval_of_several_victims_is_their_mean():
    clean = np.array([1, 2, 3, 1, 2, 3, 2, 2])
    adv_a, adv_b = np.minimum(6, clean + 2), np.full(8, 6)
    both = st.reduction_interval([clean, clean], [adv_a, adv_b], 6)
    one_a, one_b = st.reduction_interval(clean, adv_a, 6), st.reduction_interval(clean, adv_b, 6)
    assert both["estimate"] == pytest.approx((one_a["estimate"] + one_b["estimate"]) / 2)
    with pytest.raises(ValueError, match="one shape"):
        st.reduction_interval(clean, adv_a[:4], 6)


def test_efficacy_on_a_three_layer_toy():
    # exits 1, 2, 3, 3: cumulative shares 1/4, 2/4, 4/4 at positions 1/3, 2/3, 1;
    # trapezoids: 1/3 * ((1/4 + 2/4) / 2 + (2/4 + 1) / 2) = 0.375
    assert efficacy(np.array([1, 2, 3, 3]), 3) == pytest.approx(0.375)
    assert efficacy(np.array([3, 3]), 3) == pytest.approx(1 / 6)           # all at the last layer: 1 / (2L)
    assert efficacy(np.array([1, 1]), 3) == pytest.approx(2 / 3)           # all at the first: (L - 1) / L
    interval = st.efficacy_interval(np.array([1, 2, 3, 3, 1, 2]), 3)
    assert interval["low"] <= interval["estimate"] <= interval["high"]


def test_paired_ratio_and_difference_of_two_models():
    labels = np.array([0, 1] * 50)
    teacher = labels.copy()
    student = labels.copy()
    student[:10] = 1 - student[:10]           # the student gets 10 of 100 wrong
    ratio = st.paired_metric_interval("accuracy", student, teacher, labels, "ratio")
    difference = st.paired_metric_interval("accuracy", student, teacher, labels)
    assert ratio["estimate"] == pytest.approx(0.9) and difference["estimate"] == pytest.approx(-0.1)
    assert difference["high"] < 0 < 1 - ratio["high"] + 1e-12
    f1 = st.metric_interval("f1", student, labels)
    assert f1["low"] <= f1["estimate"] <= f1["high"]


def test_exit_intervals_refuse_layers_outside_the_model():
    with pytest.raises(ValueError, match="1..6"):
        st.exit_intervals(np.array([0, 3]), 6)
    speed = st.exit_intervals(np.array([2, 3, 3, 4, 2, 6]), 6)["speedup"]
    assert speed["estimate"] == pytest.approx(6 / np.mean([2, 3, 3, 4, 2, 6]))
