"""The functions behind the book's headline numbers, against values computed by hand."""

import numpy as np
import pytest

from costeff_same.attacks.text import highlight_html
from costeff_same.chapters.accuracy_attacks import accuracy_attacks_config, accuracy_attacks_summary
from costeff_same.chapters.costeff import costeff_config, costeff_summary
from costeff_same.chapters.multi_exit import multi_exit_summary
from costeff_same.chapters.same import same_config
from costeff_same.chapters.same_summary import same_summary_section
from costeff_same.core.metrics import efficiency_change, efficiency_gain_reduction, exit_stats
from costeff_same.foundations.config import ConfigError, load_profile
from costeff_same.parameters import SCHEMAS, notebook_parameters_cell
from costeff_same.selection import comparisons, matched, operating_point, sweep
from costeff_same.victims import COMMON_KEYS, multi_exit_config, victims_config


def _row(value, metric, speedup):
    return {"value": value, "metric": metric, "speedup": speedup}


# -- operating point ------------------------------------------------------------------------------

def test_operating_point_is_the_fastest_row_within_the_tolerance():
    rows = [_row(0.0, 0.86, 1.0), _row(0.1, 0.855, 1.5), _row(0.2, 0.849, 2.0), _row(0.3, 0.80, 3.0)]
    # final exit 0.86, tolerance 0.01: rows with metric >= 0.85 qualify; 0.849 does not
    assert operating_point(rows, 0.86, 0.01)["value"] == 0.1
    assert operating_point(rows, 0.86, 0.011)["value"] == 0.2      # 0.849 >= 0.849
    assert operating_point(rows, 0.86, 0.10)["value"] == 0.3


def test_operating_point_breaks_speed_ties_by_metric_and_falls_back_to_the_most_accurate():
    rows = [_row(0.1, 0.80, 2.0), _row(0.2, 0.82, 2.0)]
    assert operating_point(rows, 0.82, 0.05)["value"] == 0.2
    assert operating_point(rows, 0.99, 0.0)["value"] == 0.2        # nothing qualifies: the most accurate


def test_sweep_rows_by_hand():
    # two exits, two examples; example 0 is confident at exit 1, example 1 only at exit 2
    logits = np.array([[[5.0, -5.0], [0.1, 0.0]], [[5.0, -5.0], [-5.0, 5.0]]], dtype=np.float32)
    rows = sweep(logits, np.array([0, 1]), "accuracy", "entropy", (0.0, 0.5))
    assert [r["mean_exit_layer"] for r in rows] == [2.0, 1.5]
    assert [r["metric"] for r in rows] == [1.0, 1.0]
    assert rows[1]["speedup"] == pytest.approx(2 / 1.5) and rows[1]["histogram"] == [1, 1]
    table = {2: np.array([100, 300])}
    with_flops = sweep(logits, np.array([0, 1]), "accuracy", "entropy", (0.5,), (table, np.array([2, 2])))
    assert with_flops[0]["flops_per_example"] == 200.0


# -- matched FLOPs ----------------------------------------------------------------------------------

def _curve(points):
    """(threshold, validation metric, test metric, test FLOPs) -> a model's sweeps."""
    return {"sweep_validation": [{"value": v, "metric": m, "flops_per_example": f} for v, m, _, f in points],
            "sweep_test": [{"value": v, "metric": t, "flops_per_example": f, "mean_exit_layer": 2.0}
                           for v, _, t, f in points]}


def test_matched_takes_the_best_validation_metric_within_the_budget():
    curve = _curve([(0.0, 0.90, 0.88, 200.0), (0.2, 0.86, 0.85, 105.0), (0.4, 0.87, 0.80, 95.0),
                    (0.6, 0.70, 0.70, 50.0)])
    hit = matched(curve, 100.0, 0.1)            # 105 and 95 are within 10% of 100; validation 0.87 wins
    assert (hit["threshold"], hit["metric"], hit["flops_per_example"]) == (0.4, 0.80, 95.0)
    assert matched(curve, 400.0, 0.1) is None


def test_comparisons_set_each_multi_exit_model_beside_each_static_budget():
    labels = np.array([0, 1] * 50)
    baseline = labels.copy()
    baseline[:12] = 1 - baseline[:12]                 # the static model: 88 of 100 right
    ours = labels.copy()
    ours[:2] = 1 - ours[:2]                           # COST-EFF at the matched threshold: 98 of 100
    models = {
        "static_h2": {"kind": "static", "flops_per_example": 100.0, "final_exit_metric": 0.88,
                      "test_final_predictions": baseline.tolist()},
        "static_h1": {"kind": "static", "flops_per_example": 52.0, "final_exit_metric": 0.79,
                      "test_final_predictions": labels.tolist()},
        "costeff": {"kind": "multi_exit", **_curve([(0.1, 0.85, 0.98, 98.0), (0.5, 0.80, 0.79, 52.0)])},
    }
    models["costeff"]["sweep_test"][0]["predictions"] = ours.tolist()
    models["costeff"]["sweep_test"][1]["predictions"] = (1 - labels).tolist()
    row, row1 = comparisons(models, 0.1, "accuracy", labels)
    match = row["matches"]["costeff"]
    assert row["baseline"] == "static_h2" and match["threshold"] == 0.1
    assert match["at_least_as_accurate"] is True and match["test_flops_ratio"] == pytest.approx(0.98)
    # paired on the same sentences: 10 discordant pairs, all for COST-EFF; Holm over the two budgets
    assert (match["mcnemar"]["a_only"], match["mcnemar"]["b_only"]) == (10, 0)
    assert match["mcnemar"]["p_value"] == pytest.approx(2 / 2 ** 10)
    assert match["mcnemar"]["p_holm"] == pytest.approx(2 / 2 ** 10)   # the larger of two: Holm keeps it
    assert match["difference"]["estimate"] == pytest.approx(0.10) and match["verdict"] == "beats"
    assert row1["matches"]["costeff"]["verdict"] == "worse"


# -- efficiency statistics ----------------------------------------------------------------------------

def test_efficiency_change_by_hand():
    clean, adv = np.array([1, 2, 3, 2]), np.array([4, 4, 3, 2])
    e = efficiency_change(clean, adv, 4)
    assert e["mean_exit_layer_clean"] == 2.0 and e["mean_exit_layer_adv"] == 3.25
    assert e["efficiency_gain_clean"] == 0.5 and e["efficiency_gain_adv"] == pytest.approx(0.1875)
    assert e["efficiency_gain_reduction"] == pytest.approx((0.5 - 0.1875) / 0.5)
    assert (e["later"], e["earlier"], e["mean_shift"]) == (0.5, 0.0, 1.25)
    assert 0 < e["wilcoxon_p"] <= 1 and efficiency_change(clean, clean, 4)["wilcoxon_p"] == 1.0
    assert np.isnan(efficiency_gain_reduction(0.0, 0.0))
    assert exit_stats(np.array([4, 4]), 4)["efficiency_gain"] == 0.0


# -- summary sections ---------------------------------------------------------------------------------

def _victim(final, value, metric, speedup, layer, flops):
    return {"exit_style": "deebert", "regime": "two_stage", "per_exit_test": [0.7, final], "final_exit_metric": final,
            "per_exit_validation": [0.68, final - 0.01],
            "operating_point": {"value": value, "metric": metric, "validation_metric": metric - 0.02,
                                "speedup": speedup, "mean_exit_layer": layer, "flops_per_example": flops},
            "timing": {"1": {"wallclock_speedup": 1.2}, "64": {"wallclock_speedup": 1.5}}}


def test_multi_exit_summary_reads_the_operating_points():
    record = {"task": "t", "backbone": "b", "num_layers": 2, "metric": "accuracy",
              "victims": {"entropy": _victim(0.8, 0.3, 0.79, 1.6, 1.25, 1e6),
                          "patience": _victim(0.81, 2.0, 0.8, 1.1, 1.8, 2e6)}}
    out = multi_exit_summary(record)
    assert out["entropy"]["operating_point"] == {"policy": "entropy", "threshold": 0.3, "accuracy": 0.79,
                                                 "speedup": 1.6, "mean_exit_layer": 1.25, "flops_per_example": 1e6}
    assert out["entropy"]["wallclock_speedup_batch64"] == 1.5 and out["patience"]["wallclock_speedup_batch1"] == 1.2
    assert out["final_exit_accuracy"] == 0.8 and out["per_exit_accuracy"] == [0.7, 0.8]
    assert out["entropy"]["validation_accuracy"] == pytest.approx(0.77)
    assert out["entropy"]["validation_final_exit_accuracy"] == pytest.approx(0.79)


def _model(final, params, flops, threshold, metric, op_flops):
    return {"final_exit_metric": final, "parameters": params, "parameters_without_embeddings": params // 2,
            "deployed_parameters": params, "single_exit_parameters": params, "flops_per_example": flops,
            "shape": {"heads": [2]}, "per_exit_validation": [final - 0.02],
            "operating_point": {"threshold": threshold, "metric": metric, "validation_metric": metric - 0.01,
                                "flops_per_example": op_flops}}


def test_costeff_summary_counts_the_budgets_won():
    models = {"teacher": _model(0.86, 100, 600.0, 0.0, 0.86, 600.0), "ta": _model(0.87, 100, 600.0, 0.1, 0.86, 300.0),
              "costeff": _model(0.84, 17, 100.0, 0.15, 0.84, 90.0)}
    record = {"task": "t", "backbone": "b", "metric": "accuracy", "models": models, "retention": 0.84 / 0.86,
              "parameter_fraction": 0.17, "flops_fraction": 1 / 6,
              "comparisons": [{"baseline": "static_h2", "baseline_metric": 0.83,
                               "matches": {"costeff": {"metric": 0.84, "at_least_as_accurate": True}}},
                              {"baseline": "depth_1", "baseline_metric": 0.85,
                               "matches": {"costeff": {"metric": 0.84, "at_least_as_accurate": False}}},
                              {"baseline": "static_h1", "baseline_metric": 0.79, "matches": {"costeff": None}}]}
    out = costeff_summary(record)
    assert out["budgets_costeff_at_least_as_accurate"] == ["static_h2"]
    assert out["retention"] == pytest.approx(0.9767, abs=1e-4) and out["ablations"] == {}
    assert out["operating_points"]["costeff"] == {"threshold": 0.15, "accuracy": 0.84, "validation_accuracy": 0.83,
                                                  "flops_per_example": 90.0}
    assert out["validation_final_exit_accuracy"]["costeff"] == pytest.approx(0.82)


def _unit(key, clean, adv):
    e = efficiency_change(np.array(clean), np.array(adv), 4)
    summary = {k: 1 for k in ("examples", "attacked", "skipped", "succeeded", "failed", "accuracy_before",
                              "accuracy_after", "success_rate", "perturbation_rate", "words_changed",
                              "queries_per_example", "seconds_per_example")}
    return {"key": key, "min_cos_sim": None, "policy": "entropy", "seconds": 2.0,
            "summary": {**summary, "efficiency": e, "efficiency_succeeded": {"examples": 0}}}


def test_accuracy_attacks_summary_flattens_one_row_per_unit():
    record = {"task": "t", "backbone": "b", "num_layers": 4, "num_examples": 4, "query_budget": 10,
              "victims": {"entropy": {"policy_value": 0.3, "recipes": {"pwws": _unit("pwws", [1, 2, 3, 2],
                                                                                       [4, 4, 3, 2])}}}}
    (row,) = accuracy_attacks_summary(record)["records"]
    assert (row["victim"], row["recipe"], row["threshold"]) == ("entropy", "pwws", 0.3)
    assert row["efficiency_gain_reduction"] == pytest.approx(0.625)
    assert row["efficiency_gain_reduction_succeeded"] is None


def test_same_summary_section_averages_the_victims_reductions():
    def victim(reduction, adv):
        e = {k: 1.0 for k in ("mean_exit_layer_clean", "mean_exit_layer_adv", "speedup_clean", "speedup_adv",
                              "efficiency_gain_clean", "efficiency_gain_adv")}
        s = {k: 1 for k in ("examples", "attacked", "skipped", "succeeded", "accuracy_before", "accuracy_after",
                            "success_rate", "perturbation_rate_attacked", "perturbation_rate", "max_words_changed",
                            "budget_violations", "queries_per_example", "seconds_per_example")}
        results = [{"original_exit_layer": 2, "perturbed_exit_layer": a} for a in adv]
        return {"policy": "entropy", "policy_value": 0.3, "ablations": {},
                "main": {"summary": {**s, "efficiency_all": {**e, "efficiency_gain_reduction": reduction}},
                         "results": results},
                "timing": {"clean": {"seconds": 1.0}, "adversarial": {"seconds": 2.5}, "slowdown": 2.5}}

    record = {"task": "t", "backbone": "b", "num_layers": 4, "num_examples": 2, "ablation_examples": 0,
              "seconds": 1.0,
              "victims": {"entropy": victim(0.9, [4, 4, 4, 4, 3]), "patience": victim(0.7, [4, 4, 3, 3, 3])}}
    out = same_summary_section(record)
    assert out["mean_efficiency_gain_reduction"] == pytest.approx(0.8)
    # g_clean = 1 - 2/4 = 0.5; g_adv = 0.05 and 0.15: reductions 0.9 and 0.7, read from the sentences
    interval = out["mean_efficiency_gain_reduction_interval"]
    assert interval["estimate"] == pytest.approx(0.8) and interval["low"] <= 0.8 <= interval["high"]
    assert out["verdict"] == "reproduced"
    assert out["entropy"]["wallclock_slowdown"] == 2.5 and out["patience"]["efficiency_gain_reduction"] == 0.7


# -- highlighting and the victims of the attack chapters ---------------------------------------------

def test_highlight_html_strikes_each_changed_word_and_escapes():
    html = highlight_html({"original_text": "a <fine> film, truly", "changed_indices": [1, 3],
                           "new_words": ["good", "really"]})
    assert html == "a &lt;<del>fine</del> <b>good</b>&gt; film, <del>truly</del> <b>really</b>"


def test_victims_config_reads_chapter_one_of_the_profile_and_refuses_a_disagreeing_key():
    params = {"victim_profile": "smoke", **{k: None for k in COMMON_KEYS}, "train_overlap": "drop",
              "task": "rotten_tomatoes", "backbone": "other", "max_length": 32, "eval_file": None}
    cfg = victims_config(dict(params), "chapter 3", given=set())
    assert cfg == multi_exit_config(**load_profile("smoke")["01_multi_exit"])
    with pytest.raises(ConfigError, match="backbone='other' differs from chapter 1's 'tiny-random'"):
        victims_config(dict(params), "chapter 3", given={"backbone"})


# -- one parameter schema per chapter -----------------------------------------------------------------

@pytest.mark.parametrize("chapter", sorted(SCHEMAS))
def test_each_notebooks_parameters_cell_is_its_schema_with_the_default_profiles_values(chapter):
    assert notebook_parameters_cell(chapter) == SCHEMAS[chapter].parameters_cell()


def test_every_notebook_has_a_schema():
    from costeff_same.notebooks import chapters

    assert chapters() == sorted(SCHEMAS)


@pytest.mark.parametrize("build,chapter", [(multi_exit_config, "01_multi_exit"), (costeff_config, "02_costeff"),
                                           (accuracy_attacks_config, "03_accuracy_attacks"),
                                           (same_config, "04_same")])
def test_the_default_profile_is_the_one_source_of_defaults(build, chapter):
    assert build() == build(**load_profile("default")[chapter])
    with pytest.raises(ConfigError, match="unknown parameter.*'epoch'.*accepted: profile"):
        build(epoch=1)
    with pytest.raises(ConfigError, match="seed='0' must be an integer"):
        build(seed="0")


def test_the_configs_library_defaults_agree_with_the_default_profile():
    """A field that a chapter parameter sets under its own name has the default profile's value
    as its default, so Python users and notebook users get the same defaults."""
    import dataclasses

    from costeff_same.attacks.same_units import SameSettings
    from costeff_same.chapters.accuracy_attacks import AccuracyAttacksConfig
    from costeff_same.chapters.costeff import CostEffExperimentConfig
    from costeff_same.chapters.same import SameConfig
    from costeff_same.chapters.same_vs_costeff import SameVsCostEffConfig
    from costeff_same.compression.stages import DistillConfig, SlenderizeConfig
    from costeff_same.foundations.config import DataConfig, TrainConfig
    from costeff_same.victims import MultiExitExperimentConfig

    profile = load_profile("default")
    classes = {"01_multi_exit": (TrainConfig, DataConfig, MultiExitExperimentConfig),
               "02_costeff": (SlenderizeConfig, DistillConfig, CostEffExperimentConfig, DataConfig, TrainConfig),
               "03_accuracy_attacks": (AccuracyAttacksConfig,), "04_same": (SameSettings, SameConfig),
               "05_same_vs_costeff": (SameVsCostEffConfig,)}
    disagree = []
    for chapter, kinds in classes.items():
        for kind in kinds:
            for field in dataclasses.fields(kind):
                if field.name in profile[chapter] and field.default is not dataclasses.MISSING:
                    default = list(field.default) if isinstance(field.default, tuple) else field.default
                    if default != profile[chapter][field.name]:
                        disagree.append((chapter, kind.__name__, field.name, default, profile[chapter][field.name]))
    assert not disagree, disagree
