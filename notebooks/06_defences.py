# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Defending the efficiency gain

# %% [markdown]
# :::{glue:md} run_box
# :format: myst
# :::

# %% [markdown]
# Chapter 4 showed that SAME {cite}`chen2023same` takes away almost all of a multi-exit model's
# efficiency gain. Neither paper offers a defence, and none published for language models restores
# early exit under a slowdown attack: WAFFLE {cite}`coalson2023waffle` reports that adversarial
# training did not help and that cleaning the input with a large language model did; DeepSloth
# {cite}`hong2021deepsloth` that adversarial training protects little. This chapter is the
# project's own: three defences from three families, each put in front of both of chapter 1's
# victims at their operating points, and each measured the way a careful robustness paper must,
# against an attacker **who knows the defence** {cite}`athalye2018obfuscated`:
#
# - **input sanitiser**: Unicode NFKC and Unicode's confusables table fold look-alike letters back
#   to ASCII, then a spelling corrector (`symspellpy`) with a dictionary built from the training
#   split replaces every unknown word by its nearest dictionary word;
# - **compute guard**: a detector reads the first exits' confidence trajectory (SAME's texts hold
#   every exit near the uniform distribution, or make neighbouring exits disagree) at a cap layer,
#   and a flagged input exits there with the prediction it has: a bound on the worst-case cost;
# - **adversarial training**: SAME's texts on training sentences, crafted against the current
#   model, are trained on with their original labels, mixed with clean sentences, for two rounds.
#
# Each defence is measured on its **cost** on clean inputs (the whole test split, paired with
# the undefended victim), on the **non-adaptive** attack (chapter 4's SAME texts, crafted
# against the undefended victim, replayed through the defence) and on the **adaptive** attack
# (SAME run against the defended system: its candidates scored after sanitisation; against the
# guard, the goal is to exit late without being flagged and the loss includes the detector;
# against adversarial training, SAME re-run on the defended model), with chapter 4's
# perturbation budget. The goal is stated before the numbers: **at most
# {glue:text}`accuracy_goal_points` point of clean accuracy lost and an efficiency-gain
# reduction of at most {glue:text}`reduction_goal` under the adaptive attack**; the verdicts
# below come from the 95% intervals by the rule on the methods page, whichever way they fall.

# %% tags=["remove-cell"]
from typing import Optional  # the annotations of the parameters below

# %% tags=["parameters", "remove-cell"]
profile: str = "default"  # parameter profile the run belongs to: smoke, default or paper
victim_profile: str = "default"  # the profile whose chapter-1 victims and chapter-4 SAME settings are used
victim_seed: Optional[int] = None  # attack the victims trained with this seed (None: the profile's)
task: str = "rotten_tomatoes"  # must equal chapter 1's task
train_file: Optional[str] = None  # must equal chapter 1's train_file
validation_file: Optional[str] = None  # must equal chapter 1's validation_file
test_file: Optional[str] = None  # must equal chapter 1's test_file
text_column: Optional[str] = None  # must equal chapter 1's text_column
text_pair_column: Optional[str] = None  # must equal chapter 1's text_pair_column
label_column: Optional[str] = None  # must equal chapter 1's label_column
metric: Optional[str] = None  # must equal chapter 1's metric
backbone: str = "minilm-l6"  # must equal chapter 1's backbone
max_length: int = 64  # must equal chapter 1's max_length
eval_file: Optional[str] = None  # evaluate (and attack) on this file instead of the test split
train_overlap: str = "drop"  # eval texts also in the training data: drop (default) or keep
victims: list[str] = ["entropy", "patience"]  # victims: entropy (DeeBERT-style), patience (PABEE-style)
defences: list[str] = ["sanitiser", "guard", "adversarial_training"]  # defences: sanitiser (input), guard (inference), adversarial_training  # noqa: E501 (a long default)
num_examples: int = 100  # test sentences per victim and defence of the non-adaptive and adaptive attacks (the first of chapter 4's)  # noqa: E501 (a long default)
query_budget: Optional[int] = 1000  # model evaluations per sentence of this chapter's SAME runs (None: chapter 4's, unlimited)  # noqa: E501 (a long default)
max_distance: int = 2  # the sanitiser's largest corrected edit distance (1 or 2)
cap_layer: int = 3  # the guard's cap layer: a flagged input exits there
guard_cost: float = 0.005  # validation accuracy the guard may cost (its threshold flags as many clean inputs as that allows)  # noqa: E501 (a long default)
mu: float = 1.0  # the adaptive attacker's weight of the guard's detector in its loss
rounds: int = 2  # adversarial training: attack-and-train rounds
examples_per_round: int = 64  # adversarial training: training sentences attacked per round
clean_examples: int = 512  # adversarial training: clean training sentences in the mix (also the detector's clean examples)  # noqa: E501 (a long default)
epochs: int = 1  # adversarial training: epochs over each round's mix
learning_rate: float = 2e-05  # adversarial training: peak learning rate
accuracy_goal: float = 0.01  # clean accuracy a defence may cost (0.01: one point)
reduction_goal: float = 0.5  # efficiency-gain reduction allowed under the adaptive attack
seed: int = 0  # seeds the sentence orders, the attacks and the training
batch_size: int = 64  # texts per victim forward

# %% tags=["hide-input"]
from costeff_same.notebooks import glue_figure, run_box, setup

setup()  # first: quiet progress bars and warnings before the libraries load

import pandas as pd
from myst_nb import glue

from costeff_same import plotting
from costeff_same.chapters.defences import DEFENCES_SCHEMA, defences_config, defences_summary, run_defences
from costeff_same.foundations import names
from costeff_same.verdicts import interval_text

params = DEFENCES_SCHEMA.from_namespace(globals())  # the profile's values, with explicit ones on top
globals().update(params)  # every cell below reads the run's values
config = defences_config(**params)
record = run_defences(config)  # cached: a second run only reads the result
summary = defences_summary(record)
V = summary["victims"]
DEFENCES = ["none", *summary["defences"]]
print(f"profile {profile}: task {record['task']}, backbone {record['backbone']}, config {config.config_hash()}, "
      f"computed in {record['seconds']:.0f} s")


def cell(victim, defence, *keys):
    """A nested figure of the summary, or None where a victim or defence was not run."""
    value = V.get(victim, {}).get(defence)
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


glue("accuracy_goal_points", f"{100 * summary['accuracy_goal']:g}", display=False)
glue("reduction_goal", f"{summary['reduction_goal']:g}", display=False)
glue("n_examples", int(summary["num_examples"]), display=False)

# %% [markdown]
# ## What each defence costs on clean inputs
#
# Clean accuracy and speedup ($L$ over the mean exit layer) of each defended system on the
# whole test split, against the undefended victim on the same sentences (paired bootstrap
# intervals). The accuracy loss is the undefended accuracy minus the defended one.

# %% tags=["hide-input"]
rows = []
for victim, v in V.items():
    for defence in DEFENCES:
        r = v[defence]
        rows.append({"victim": names.victim_label(victim, short=True),
                     "defence": names.DEFENCE_LABELS[defence],
                     "clean accuracy": r["clean_accuracy"],
                     "accuracy loss [95% CI]": interval_text(r.get("clean_accuracy_loss")) if defence != "none"
                     else "",
                     "speedup": r["clean_speedup"],
                     "speedup change [95% CI]": interval_text(r.get("clean_speedup_difference"))
                     if defence != "none" else "",
                     "efficacy": r["clean_efficacy"]})
pd.DataFrame(rows).set_index(["victim", "defence"]).round(3)

# %% [markdown]
# The sanitiser changes {glue:text}`sanitised_train` of the {glue:text}`train_sentences`
# training sentences (its dictionary is theirs) and {glue:text}`sanitised_test` of the
# {glue:text}`test_sentences` test sentences (words it has never seen are "corrected").
# The guard's detector reads the exits up to its cap layer {glue:text}`cap_layer`; its threshold
# flags as many clean validation inputs as a budget of {glue:text}`guard_cost` of validation
# accuracy allows (a flagged input is served the cap layer's prediction), which flags
# {glue:text}`guard_flagged`.

# %% tags=["hide-input"]
sanitiser_row = next((v["sanitiser"] for v in V.values() if "sanitiser" in v), {})
glue("sanitised_train", f"{sanitiser_row.get('changed_training_sentences', 'n/a')}", display=False)
glue("train_sentences", f"{sanitiser_row.get('training_sentences', 'n/a')}", display=False)
glue("sanitised_test", f"{sanitiser_row.get('changed_test_sentences', 'n/a')}", display=False)
glue("test_sentences", f"{sanitiser_row.get('test_sentences', 'n/a')}", display=False)
glue("guard_cost", f"{guard_cost:.1%}", display=False)
detectors = {v: cell(v, "guard", "detector") for v in V}
glue("guard_flagged", "; ".join(f"{d['validation_flagged']} of the {d['validation_reaching_cap']} validation inputs "
                                f"that reach it on the {names.victim_label(v, short=True)} victim"
                                for v, d in detectors.items() if d) or "n/a", display=False)
glue("cap_layer", int(cap_layer), display=False)

# %% [markdown]
# ## Under attack: replayed texts and the attacker who knows the defence
#
# On the first {glue:text}`n_examples` of chapter 4's sentences per victim: the efficiency-gain
# reduction $(g_{\mathrm{clean}} - g_{\mathrm{adv}})/g_{\mathrm{clean}}$, $g = 1 - \bar{\ell}/L$,
# measured on the defended system (each sentence's clean and adversarial exit layers resampled as
# a pair), under the **non-adaptive** attack (chapter 4's texts replayed) and the **adaptive**
# one (SAME against the defended system), with the share of sentences that reach the last layer,
# the adaptive attack's perturbation rate and its accuracy after.

# %% tags=["hide-input"]
rows = []
for victim, v in V.items():
    for defence in DEFENCES:
        r = v[defence]
        rows.append({"victim": names.victim_label(victim, short=True),
                     "defence": names.DEFENCE_LABELS[defence],
                     "reduction, replayed [95% CI]": interval_text(r["non_adaptive"]["efficiency_gain_reduction"]),
                     "reduction, adaptive [95% CI]": interval_text(r["adaptive"]["efficiency_gain_reduction"]),
                     "efficacy adaptive [95% CI]": interval_text(r["adaptive"]["efficacy_adv"]),
                     "success rate adaptive": r["adaptive"]["success_rate"],
                     "perturbation rate adaptive": r["adaptive"].get("perturbation_rate"),
                     "accuracy after adaptive": r["adaptive"]["accuracy_after"]})
pd.DataFrame(rows).set_index(["victim", "defence"]).round(3)

# %% tags=["hide-input"]
glue_figure("fig_defences_tradeoff", plotting.fig_defences_tradeoff(summary))

# %% [markdown]
# :::{glue:figure} fig_defences_tradeoff
# ---
# name: fig-defences-tradeoff
# alt: >-
#   Scatter plots, one per victim: efficiency-gain reduction under the adaptive attack against
#   clean accuracy, one point per defence and one for none.
# ---
#
# Efficiency-gain reduction under the adaptive attack against clean accuracy, one point per
# defence and one for the undefended victim; whiskers: 95% intervals. The dashed line is the
# goal's reduction; the shaded band the accuracy within the goal.
# :::

# %% [markdown]
# ## The guard's detector
#
# The detector's ROC curve on chapter 4's clean sentences against their SAME texts (the
# sentences SAME attacked), read at the cap layer; the dot is its operating threshold. AUROC:
# {glue:text}`auroc_entropy` on the DeeBERT-style victim and {glue:text}`auroc_patience` on the
# PABEE-style one.

# %% tags=["hide-input"]
for victim in ("entropy", "patience"):
    roc = cell(victim, "guard", "roc")
    glue(f"auroc_{victim}", interval_text(roc["auroc_interval"]) if roc else "n/a", display=False)
glue_figure("fig_detector_roc", plotting.fig_detector_roc(summary))

# %% [markdown]
# :::{glue:figure} fig_detector_roc
# :name: fig-detector-roc
# :alt: ROC curves of the guard's detector, one per victim, with the operating point marked.
#
# The guard's detector: true-positive rate (SAME's texts flagged) against false-positive rate
# (clean sentences flagged), one curve per victim; dots: the calibrated threshold.
# :::

# %% [markdown]
# ## Adversarial training's rounds
#
# Each round attacks fresh training sentences against the current model and fine-tunes on
# every round's texts so far, with their original labels, among clean sentences. None of the
# sentences trained on is a test sentence ({glue:text}`test_overlap` found).

# %% tags=["hide-input"]
rows = []
for victim, v in V.items():
    for r in (v.get("adversarial_training") or {}).get("rounds", []):
        a = r["attack"]
        rows.append({"victim": names.victim_label(victim, short=True), "round": r["round"],
                     "SAME success rate on its training sentences": a["success_rate"],
                     "gain reduction on them": a["efficiency_all"]["efficiency_gain_reduction"],
                     "adversarial texts": r["adversarial_texts"], "examples trained on": r["training_examples"]})
overlap = [cell(v, "adversarial_training", "test_sentences_trained_on") for v in V]
glue("test_overlap", sum(o or 0 for o in overlap), display=False)
pd.DataFrame(rows).set_index(["victim", "round"]).round(3) if rows else pd.DataFrame({"rounds": ["not run"]})

# %% [markdown]
# ## Does any defence meet the goal?
#
# The goal, by the rule `goal` of the methods page: **met** when the whole 95% interval of the
# accuracy loss lies at or below {glue:text}`accuracy_goal_points` point and the whole interval of
# the adaptive reduction at or below {glue:text}`reduction_goal`; **missed** when either interval
# lies above its limit; **undecided** otherwise. {glue:text}`goal_tally`.

# %% tags=["hide-input"]
rows = []
for victim, v in V.items():
    for defence in summary["defences"]:
        g = v[defence]["goal"]
        rows.append({"victim": names.victim_label(victim, short=True), "defence": names.DEFENCE_LABELS[defence],
                     "accuracy loss [95% CI]": interval_text(v[defence]["clean_accuracy_loss"]),
                     "accuracy goal": g["accuracy"],
                     "adaptive reduction [95% CI]": interval_text(v[defence]["adaptive"]["efficiency_gain_reduction"]),
                     "reduction goal": g["reduction"], "verdict": g["verdict"]})
goals = pd.DataFrame(rows)
tally = goals["verdict"].value_counts()
glue("goal_tally", "Verdicts over the (victim, defence) pairs: "
     + ", ".join(f"{n} {verdict}" for verdict, n in tally.items()), display=False)
goals.set_index(["victim", "defence"])

# %% [markdown]
# ## Conclusion
#
# Against texts crafted for the undefended victim, the strongest defence is the
# {glue:text}`best_replay_defence` on the {glue:text}`best_replay_victim` victim: the
# efficiency-gain reduction falls to {glue:text}`best_replay_ci`, against
# {glue:text}`none_replay_ci` undefended. Against the attacker who knows the defence, the lowest
# reduction of any defence is {glue:text}`best_adaptive_ci` ({glue:text}`best_adaptive_defence`,
# {glue:text}`best_adaptive_victim` victim), with the goal's limit at {glue:text}`reduction_goal`;
# the goal's verdicts are in the table above.

# %% tags=["hide-input"]
def lowest(kind):
    """The (victim, defence) with the lowest efficiency-gain reduction under ``kind`` of attack."""
    pairs = [(v, d) for v in V for d in summary["defences"]
             if (V[v][d][kind]["efficiency_gain_reduction"] or {}).get("estimate") is not None]
    return min(pairs, key=lambda p: V[p[0]][p[1]][kind]["efficiency_gain_reduction"]["estimate"], default=None)


for kind, key in (("non_adaptive", "replay"), ("adaptive", "adaptive")):
    best = lowest(kind)
    glue(f"best_{key}_defence", names.DEFENCE_LABELS[best[1]] if best else "n/a", display=False)
    glue(f"best_{key}_victim", names.victim_label(best[0], short=True) if best else "n/a", display=False)
    glue(f"best_{key}_ci", interval_text(V[best[0]][best[1]][kind]["efficiency_gain_reduction"]) if best else "n/a",
         display=False)
replay_best = lowest("non_adaptive")
glue("none_replay_ci", interval_text(V[replay_best[0]]["none"]["non_adaptive"]["efficiency_gain_reduction"])
     if replay_best else "n/a", display=False)

# %% tags=["remove-cell"]
glue("run_box", run_box("06_defences", profile, params, computes=(
    "fits three defences to chapter 1's victims (a sanitiser, a compute guard, adversarial training) and "
    "attacks each with chapter 4's SAME texts and with SAME run against the defended system"
)), display=False)
