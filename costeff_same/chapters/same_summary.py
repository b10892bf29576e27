"""Reading chapter 4's record: the ``same`` section of ``costeff-same summary --json``.

:func:`same_summary_section` turns :func:`costeff_same.chapters.same.run_same`'s record into one
row per victim (:func:`victim_row`), the ablation and variant tests (:func:`ablation_tests`), the
budget curve (:func:`budget_curve`), WAFFLE beside SAME (:func:`waffle_row`), SAME at the
reference code's operating points (:func:`reference_row`) and the transfer (:func:`transfer_row`),
each estimate with its 95% interval and each comparison with its verdict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from costeff_same import verdicts
from costeff_same.core.statistics import reduction_difference_interval, reduction_interval
from costeff_same.engine.results import no_nan


def exit_layers(results: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The per-sentence ``clean_exit_layer`` and ``adv_exit_layer`` of an attack's results."""
    return {"clean_exit_layer": [r["original_exit_layer"] for r in results],
            "adv_exit_layer": [r["perturbed_exit_layer"] for r in results]}


def reduction(entry: dict[str, Any], depth: int) -> dict[str, Any] | None:
    """The efficiency-gain reduction (95% interval) of an entry holding ``clean_exit_layer``
    and ``adv_exit_layer`` (:func:`exit_layers`), for a ``depth``-layer victim."""
    return no_nan(reduction_interval(entry["clean_exit_layer"], entry["adv_exit_layer"], depth))


def paired_test(base: dict[str, Any], other: dict[str, Any], depth: int) -> tuple[dict[str, Any] | None, str | None]:
    """``base``'s efficiency-gain reduction minus ``other``'s on the same sentences (paired 95%
    interval) and its :func:`~costeff_same.verdicts.comparison` (``beats``: ``base`` slows the
    victim down more; None when the interval is not finite)."""
    difference = no_nan(reduction_difference_interval(base["clean_exit_layer"], base["adv_exit_layer"],
                                                      other["adv_exit_layer"], depth))
    return difference, verdicts.comparison(difference) if verdicts.finite(difference) else None


def meaning_figures(entry: dict[str, Any]) -> dict[str, Any]:
    """``similarity`` and ``label_flip_rate`` (intervals) of a unit's texts (None where not measured)."""
    m = entry.get("meaning") or {}
    return {"similarity": m.get("similarity"), "label_flip_rate": m.get("label_flip_rate")}


def victim_row(name: str, v: dict[str, Any]) -> dict[str, Any]:
    """One victim's record of the ``same`` summary section."""
    s = v["main"]["summary"]
    e = s["efficiency_all"]
    return {
        "policy": v["policy"], "threshold": v["policy_value"],
        "examples": s["examples"], "attacked": s["attacked"], "skipped": s["skipped"],
        "succeeded": s["succeeded"],
        "mean_exit_layer_clean": e["mean_exit_layer_clean"], "mean_exit_layer_adv": e["mean_exit_layer_adv"],
        "speedup_clean": e["speedup_clean"], "speedup_adv": e["speedup_adv"],
        "efficiency_gain_clean": e["efficiency_gain_clean"], "efficiency_gain_adv": e["efficiency_gain_adv"],
        "efficiency_gain_reduction": e["efficiency_gain_reduction"],
        "accuracy_before": s["accuracy_before"], "accuracy_after": s["accuracy_after"],
        "success_rate": s["success_rate"], "perturbation_rate": s["perturbation_rate_attacked"],
        "perturbation_rate_succeeded": s["perturbation_rate"], "max_words_changed": s["max_words_changed"],
        "budget_violations": s["budget_violations"],
        "queries_per_example": s["queries_per_example"], "seconds_per_example": s["seconds_per_example"],
        "efficacy_clean": e.get("efficacy_clean"), "efficacy_adv": e.get("efficacy_adv"),
        "wilcoxon_p": e.get("wilcoxon_p"), "intervals": s.get("intervals"),
        "wallclock_clean_seconds": v["timing"]["clean"]["seconds"],
        "wallclock_adversarial_seconds": v["timing"]["adversarial"]["seconds"],
        "wallclock_slowdown": v["timing"]["slowdown"],
        **meaning_figures(v["main"]),
    }


def waffle_row(v: dict[str, Any], depth: int) -> dict[str, Any]:
    """WAFFLE against one victim beside SAME on the same sentences: its figures with intervals,
    and the paired interval of SAME's efficiency-gain reduction minus WAFFLE's with
    :func:`~costeff_same.verdicts.comparison` (``beats``: SAME slows the victim down more)."""
    w = v["waffle"]
    s, ci = w["summary"], w["summary"]["intervals"]
    difference, verdict = paired_test(exit_layers(v["main"]["results"]), w, depth)
    return {"examples": s["examples"], "attacked": s["attacked"], "succeeded": s["succeeded"],
            "efficiency_gain_reduction": reduction(w, depth),
            "efficacy_clean": (ci["all"] or {}).get("efficacy_clean"),
            "efficacy_adv": (ci["all"] or {}).get("efficacy_adv"),
            "success_rate": ci["success_rate"], "perturbation_rate": ci["perturbation_rate"],
            "queries_per_example": s["queries_per_example"], "seconds_per_example": s["seconds_per_example"],
            **meaning_figures(w), "same_minus_waffle": difference, "verdict": verdict}


def reference_row(v: dict[str, Any], depth: int) -> dict[str, Any]:
    """SAME at the reference code's operating point beside ours, on the same (ablation) sentences."""
    r, ours = v["reference_point"], v["ablations"].get("same")
    return {"policy_value": r["policy_value"], "our_policy_value": v["policy_value"],
            "efficiency_gain_clean": r["summary"]["efficiency_all"]["efficiency_gain_clean"],
            "efficiency_gain_reduction": reduction(r, depth),
            "success_rate": r["summary"]["intervals"]["success_rate"], **meaning_figures(r),
            "ours_efficiency_gain_clean": ours["summary"]["efficiency_all"]["efficiency_gain_clean"] if ours else None,
            "ours_efficiency_gain_reduction": reduction(ours, depth) if ours else None}


def budget_curve(ablations: dict[str, Any], depth: int) -> list[dict[str, Any]]:
    """Efficiency-gain reduction (interval) against the word budget: each ``budget_<k>`` variant,
    then SAME's own ``max(min_words, ceil(max_rate * words))`` (``words: None``), on the same sentences."""
    points = [(int(k.split("_")[1]), a) for k, a in ablations.items() if k.startswith("budget_")]
    points = sorted(points, key=lambda p: p[0]) + ([(None, ablations["same"])] if "same" in ablations else [])
    return [{"words": k, "efficiency_gain_reduction": reduction(a, depth),
             "max_words_changed": a["summary"]["max_words_changed"], **meaning_figures(a)} for k, a in points]


def same_summary_section(record: dict[str, Any]) -> dict[str, Any]:
    """The ``same`` section of ``costeff-same summary --json``: one record per victim."""
    victims = {name: victim_row(name, v) for name, v in record["victims"].items()}
    reductions = [r["efficiency_gain_reduction"] for r in victims.values()
                  if r["efficiency_gain_reduction"] is not None]
    exits = [exit_layers(v["main"]["results"]) for v in record["victims"].values()]
    interval = reduction_interval([e["clean_exit_layer"] for e in exits], [e["adv_exit_layer"] for e in exits],
                                  record["num_layers"])
    return {"task": record["task"], "backbone": record["backbone"], "num_layers": record["num_layers"],
            "num_examples": record["num_examples"], "ablation_examples": record["ablation_examples"],
            "mean_efficiency_gain_reduction": float(np.mean(reductions)) if reductions else None,
            "mean_efficiency_gain_reduction_interval": no_nan(interval),
            "paper_mean_efficiency_gain_reduction": PAPER_REDUCTION,
            "verdict": verdicts.quantitative(PAPER_REDUCTION, no_nan(interval), REDUCTION_TOLERANCE),
            "ablation_tests": {name: ablation_tests(v["ablations"], record["num_layers"])
                               for name, v in record["victims"].items() if v["ablations"]},
            "budget_curve": {name: budget_curve(v["ablations"], record["num_layers"])
                             for name, v in record["victims"].items() if v["ablations"]},
            "waffle": {name: waffle_row(v, record["num_layers"]) for name, v in record["victims"].items()
                       if "waffle" in v},
            "reference_points": {name: reference_row(v, record["num_layers"])
                                 for name, v in record["victims"].items() if "reference_point" in v},
            "transfer": {key: transfer_row(t, record["num_layers"]) for key, t in record.get("transfer", {}).items()},
            "seconds": record["seconds"], **victims}


def ablation_tests(ablations: dict[str, Any], depth: int) -> dict[str, Any]:
    """Full SAME against each ablation or variant on the same sentences: each one's efficiency-gain
    reduction with its interval, the paired interval of SAME's minus the ablation's,
    :func:`~costeff_same.verdicts.comparison` (``beats``: the part the ablation removes helps)
    and the similarity and label-flip rate of its texts."""
    full = ablations["same"]
    out = {}
    for variant, a in ablations.items():
        if variant == "same" or "adv_exit_layer" not in a:
            continue
        difference, verdict = paired_test(full, a, depth)
        out[variant] = {"efficiency_gain_reduction": reduction(a, depth), "same_minus_ablation": difference,
                        "verdict": verdict, **meaning_figures(a)}
    return out


def transfer_row(t: dict[str, Any], depth: int) -> dict[str, Any]:
    """One transfer direction: the target's efficiency-gain reduction on the source's
    adversarial sentences, with its interval and :func:`~costeff_same.verdicts.shift`."""
    row = {"source": t["source"], "target": t["target"],
           "efficiency_gain_reduction": t["efficiency"].get("efficiency_gain_reduction"),
           "accuracy_before": t["accuracy_before"], "accuracy_after": t["accuracy_after"],
           "success_rate_on_target": t["success_rate_on_target"]}
    if "adv_exit_layer" in t:
        interval = reduction(t, depth)
        row.update(interval=interval, verdict=verdicts.shift(interval) if verdicts.finite(interval) else None)
    return row


#: SAME's headline (Chen et al., 2023, abstract): the slowdown attack cuts the efficiency gain by about 80%
PAPER_REDUCTION = 0.80
#: "about 80%": a figure within 5 points of our interval counts as reproduced
REDUCTION_TOLERANCE = 0.05
