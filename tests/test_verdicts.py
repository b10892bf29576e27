"""Each verdict rule (costeff_same.verdicts) reaches each of its verdicts on constructed inputs."""

import pytest

from costeff_same import verdicts


def interval(estimate, low, high):
    return {"estimate": estimate, "low": low, "high": high}


def test_comparison_reaches_each_verdict():
    assert verdicts.comparison(interval(0.03, 0.01, 0.05), 0.01) == "beats"
    assert verdicts.comparison(interval(-0.03, -0.05, -0.01), 0.01) == "worse"
    assert verdicts.comparison(interval(0.01, -0.01, 0.03), 0.4) == "within noise"
    # an interval clear of 0 is not enough when the (corrected) test is not significant
    assert verdicts.comparison(interval(0.03, 0.01, 0.05), 0.2) == "within noise"
    assert {verdicts.comparison(interval(e, lo, hi), p) for e, lo, hi, p in
            ((1, .5, 2, .01), (0, -1, 1, .5), (-1, -2, -.5, .01))} == set(verdicts.COMPARISONS)


def test_shift_reaches_each_verdict():
    assert verdicts.shift(interval(0.4, 0.2, 0.6)) == "increase"
    assert verdicts.shift(interval(-0.4, -0.6, -0.2)) == "decrease"
    assert verdicts.shift(interval(0.1, -0.1, 0.3)) == "no significant change"
    assert verdicts.shift(interval(0.4, 0.2, 0.6), p_value=0.3) == "no significant change"


def test_quantitative_reaches_each_verdict():
    assert verdicts.quantitative(0.80, interval(0.78, 0.70, 0.85)) == "reproduced"
    assert verdicts.quantitative(0.80, interval(0.72, 0.70, 0.74), tolerance=0.07) == "reproduced"
    assert verdicts.quantitative(0.80, interval(0.99, 0.98, 1.0)) == "partly"       # same side, not the figure
    assert verdicts.quantitative(0.80, interval(0.05, -0.05, 0.15)) == "not reproduced"
    assert verdicts.quantitative(0.80, None) == "not testable here"
    assert verdicts.quantitative(0.80, interval(float("nan"), 0, 1)) == "not testable here"
    # "keeps 96.5%": retaining more counts; "1/8 of the parameters": fewer counts
    assert verdicts.quantitative(0.965, interval(1.0, 0.99, 1.01), 0.01, None, "at_least") == "reproduced"
    assert verdicts.quantitative(0.965, interval(0.90, 0.88, 0.93), 0.01, None, "at_least") == "not reproduced"
    assert verdicts.quantitative(0.125, interval(0.1, 0.1, 0.1), 0.0, None, "at_most") == "reproduced"
    assert verdicts.quantitative(0.125, interval(0.3, 0.3, 0.3), 0.025, None, "at_most") == "not reproduced"
    with pytest.raises(ValueError, match="accepted: about, at_least, at_most"):
        verdicts.quantitative(0.5, interval(0.5, 0.4, 0.6), side="near")


def test_directional_reaches_each_verdict():
    accepted = ("beats", "within noise")
    assert verdicts.directional(accepted, ["beats", "within noise"]) == "reproduced"
    assert verdicts.directional(accepted, ["beats", "worse"]) == "partly"
    assert verdicts.directional(accepted, ["worse", "worse"]) == "not reproduced"
    assert verdicts.directional(accepted, []) == "not testable here"


def test_a_comparison_needs_a_finite_interval():
    with pytest.raises(ValueError, match="finite interval"):
        verdicts.comparison(interval(None, 0, 1))
