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
# # Does SAME break COST-EFF?

# %% [markdown]
# :::{glue:md} run_box
# :format: myst
# :::

# %% [markdown]
# COST-EFF {cite}`shen2022costeff` sells one model that is both **small** (slenderized to a
# fraction of the width, every layer kept) and **fast on easy inputs** (an exit after every
# layer). SAME {cite}`chen2023same` shows that an attacker can take the second part away. A
# deployer who reads both papers wants to know what is left of COST-EFF's advantage when
# someone attacks it; neither paper asks. This chapter answers it on the models the book has
# already trained (it trains nothing): chapter 2's COST-EFF model, its full-width teaching
# assistant and the ablation without the TA, each behind entropy early exit at its own
# operating point chosen on the validation split, and chapter 1's DeeBERT-style victim
# {cite}`xin2020deebert` as the full-size reference.
#
# Every victim is attacked by **SAME** with chapter 4's settings and by **PWWS**
# {cite}`ren2019pwws` (SAME's RQ1, whether an accuracy attack slows a model down, asked of slender
# models), on the same seeded, label-balanced test sentences as chapters 3 and 4; the
# reference's attacks are chapters 3's and 4's own runs, read from the cache. We measure what
# a deployer pays: FLOPs per example counted by `torch.utils.flop_counter` at each sentence's
# own length and exit layer, and the wall-clock time of batched early exit. Every figure in the
# prose comes from the cached result of this run, with its 95% bootstrap interval.

# %% tags=["remove-cell"]
from typing import Optional  # the annotations of the parameters below

# %% tags=["parameters", "remove-cell"]
profile: str = "default"  # parameter profile the run belongs to: smoke, default or paper
victim_profile: str = "default"  # the profile whose chapter-1 reference, chapter-2 models and chapter-4 SAME settings are used  # noqa: E501 (a long default)
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
victims: list[str] = ["costeff", "ta", "no_ta"]  # chapter 2's models attacked: costeff, ta, no_ta, final_importance
static: Optional[str] = None  # the static model compared with COST-EFF (None: the one of its width)
attacks: list[str] = ["same", "pwws"]  # attacks: same (chapter 4's settings), pwws
num_examples: int = 200  # test sentences per victim and attack (seeded, label-balanced; chapters 3-4's)
pwws_query_budget: Optional[int] = 300  # PWWS's model evaluations per sentence (chapter 3's)
seed: int = 0  # seeds the sentence order and the attacks' random choices
batch_size: int = 64  # texts per victim forward
timing_batch_size: int = 64  # batch size of the wall-clock measurement
timing_repeats: int = 3  # timed passes over each set (the fastest counts)
transfer: bool = True  # replay SAME's texts from the full-size reference on each slender victim, and back

# %% tags=["hide-input"]
from costeff_same.notebooks import glue_figure, run_box, setup

setup()  # first: quiet progress bars and warnings before the libraries load

import pandas as pd
from myst_nb import glue

from costeff_same import plotting
from costeff_same.chapters.same_vs_costeff import (
    SAME_VS_COSTEFF_SCHEMA,
    run_same_vs_costeff,
    same_vs_costeff_config,
    same_vs_costeff_summary,
)
from costeff_same.foundations import names
from costeff_same.summary import chapter_closing
from costeff_same.verdicts import interval_text

params = SAME_VS_COSTEFF_SCHEMA.from_namespace(globals())  # the profile's values, with explicit ones on top
globals().update(params)  # every cell below reads the run's values
config = same_vs_costeff_config(**params)
record = run_same_vs_costeff(config)  # cached: a second run only reads the result
summary = same_vs_costeff_summary(record)
V = summary["victims"]
print(f"profile {profile}: task {record['task']}, backbone {record['backbone']}, config {config.config_hash()}, "
      f"computed in {record['seconds']:.0f} s")


def num(value):
    """A figure for the prose as a plain float (nan where it is undefined)."""
    return float("nan") if value is None else float(value)


def row_of(victim, attack):
    return V.get(victim, {}).get("attacks", {}).get(attack)


def ci(victim, attack, key):
    row = row_of(victim, attack)
    return interval_text(row["intervals"].get(key)) if row else "n/a"


# %% [markdown]
# ## Setting
#
# The victims, their width and their entropy threshold (nats), chosen on the validation split
# by the rule of chapters 1 and 2. The reference has {glue:text}`ref_params` parameters;
# COST-EFF's model {glue:text}`costeff_params`. Each is attacked on {glue:text}`n_examples`
# test sentences.

# %% tags=["hide-input"]
rows = []
for name, v in V.items():
    shape = v["shape"] or {}
    rows.append({"victim": names.victim_label(name), "role": v["role"], "layers": v["num_layers"],
                 "heads / layer": (shape.get("heads") or [None])[0] if shape else "full",
                 "FFN / layer": (shape.get("ffn") or [None])[0] if shape else "full",
                 "parameters": v["parameters"], "entropy threshold": v["threshold"]})
glue("ref_params", f"{V['entropy']['parameters']:,}", display=False)
glue("costeff_params", f"{V['costeff']['parameters']:,}" if "costeff" in V else "n/a", display=False)
glue("n_examples", int(record["num_examples"]), display=False)
pd.DataFrame(rows).set_index("victim")

# %% [markdown]
# ## What each attack takes away
#
# Per victim and attack, over all the sentences (those an attack skips, because they already exit
# at the last layer for SAME or are already misclassified for PWWS, keep their clean exit layer):
# accuracy, mean exit layer $\bar{\ell}$, the **efficiency-gain reduction**
# $(g_{\mathrm{clean}} - g_{\mathrm{adv}})/g_{\mathrm{clean}}$ with $g = 1 - \bar{\ell}/L$ (each
# sentence's clean and adversarial exit layers resampled as a pair), the **efficacy** (the area
# under the share of sentences still running, layer by layer; chapter 3) and FLOPs per example.
# SAME cuts COST-EFF's efficiency gain by {glue:text}`costeff_same_ci`, against
# {glue:text}`ref_same_ci` for the full-size reference; PWWS by {glue:text}`costeff_pwws_ci` and
# {glue:text}`ref_pwws_ci`.

# %% tags=["hide-input"]
def mflops(interval):
    """An interval of FLOPs, in millions."""
    if not interval:
        return interval
    return {**interval, **{k: interval[k] / 1e6 for k in ("estimate", "low", "high") if interval.get(k) is not None}}


rows, costs = [], []
for name, v in V.items():
    for attack, r in v["attacks"].items():
        key = {"victim": names.victim_label(name, short=True), "attack": names.recipe_label(attack)}
        rows.append({**key, "accuracy clean [95% CI]": interval_text(r["intervals"]["accuracy_before"]),
                     "accuracy attacked [95% CI]": interval_text(r["intervals"]["accuracy_after"]),
                     "success rate": r["success_rate"],
                     "gain reduction [95% CI]": interval_text(r["intervals"]["efficiency_gain_reduction"]),
                     "seconds / sentence": r["seconds_per_example"]})
        costs.append({**key, "mean exit clean": r["mean_exit_layer_clean"],
                      "mean exit attacked": r["mean_exit_layer_adv"],
                      "efficacy clean [95% CI]": interval_text(r["intervals"]["efficacy_clean"]),
                      "efficacy attacked [95% CI]": interval_text(r["intervals"]["efficacy_adv"]),
                      "MFLOPs clean [95% CI]": interval_text(mflops(r["intervals"]["flops_clean"])),
                      "MFLOPs attacked [95% CI]": interval_text(mflops(r["intervals"]["flops_adv"]))})
for short, name in (("costeff", "costeff"), ("ref", "entropy")):
    for attack in ("same", "pwws"):
        glue(f"{short}_{attack}_ci", ci(name, attack, "efficiency_gain_reduction"), display=False)
pd.DataFrame(rows).set_index(["victim", "attack"]).round(3)

# %% [markdown]
# Where the sentences exit and what they cost, per victim and attack:

# %% tags=["hide-input"]
pd.DataFrame(costs).set_index(["victim", "attack"]).round(3)

# %% tags=["hide-input"]
glue_figure("fig_same_vs_costeff_tradeoff", plotting.fig_same_vs_costeff_tradeoff(summary, "same"))

# %% [markdown]
# :::{glue:figure} fig_same_vs_costeff_tradeoff
# ---
# name: fig-same-vs-costeff-tradeoff
# alt: >-
#   Scatter plot, accuracy against FLOPs per example on a log scale: for each victim an arrow from
#   its clean point to its point under SAME; the static slender model and the teacher as fixed squares
#   and diamonds.
# ---
#
# Accuracy against FLOPs per example on the attacked sentences, clean (dots) and under SAME
# (crosses), one arrow per victim; whiskers: 95% intervals of the FLOPs. The static slender model
# of COST-EFF's width and the teacher never exit: their cost does not move.
# :::

# %% tags=["hide-input"]
glue_figure("fig_same_vs_costeff_exits", plotting.fig_same_vs_costeff_exits(record, "same"))

# %% [markdown]
# :::{glue:figure} fig_same_vs_costeff_exits
# :name: fig-same-vs-costeff-exits
# :alt: Histograms, one panel per victim: exit layers of the sentences, clean beside SAME's texts.
#
# Exit layers of the attacked sentences on their clean text and on SAME's text, one panel per
# victim; the title gives the mean exit layer before and after.
# :::

# %% [markdown]
# ## What a deployer pays
#
# The question a deployer asks is not the reduction but the bill. On the sentences SAME
# attacked against COST-EFF, its model costs {glue:text}`costeff_clean_mflops` MFLOPs per
# example clean and {glue:text}`costeff_adv_mflops` under SAME; the static slender model of its
# width, which never exits, costs {glue:text}`static_clean_mflops` and
# {glue:text}`static_adv_mflops`, and the teacher {glue:text}`teacher_adv_mflops` under attack.
# By the paired interval of the static model's FLOPs minus COST-EFF's on the same sentences,
# COST-EFF against the static model is **{glue:text}`static_verdict_clean`** clean and
# **{glue:text}`static_verdict_adv`** under SAME ("beats": it costs less). Of its FLOPs saving
# over the static model, {glue:text}`saving_survives` survives the attack. Its worst case
# (every layer and every exit) costs {glue:text}`worst_case_ratio` times the static model's.

# %% tags=["hide-input"]
rows = []
for attack, d in summary["deployer"].items():
    rows.append({
        "attack": names.recipe_label(attack),
        "COST-EFF MFLOPs clean": row_of("costeff", attack)["flops_clean"] / 1e6,
        "COST-EFF MFLOPs attacked": row_of("costeff", attack)["flops_adv"] / 1e6,
        "static MFLOPs clean": d["static_clean_flops"] / 1e6, "static MFLOPs attacked": d["static_adv_flops"] / 1e6,
        "teacher MFLOPs attacked": d["teacher_adv_flops"] / 1e6,
        "static - COST-EFF, clean, MFLOPs [95% CI]": interval_text(mflops(d["static_minus_costeff_clean"])),
        "verdict clean": d["static_minus_costeff_clean_verdict"],
        "static - COST-EFF, attacked, MFLOPs [95% CI]": interval_text(mflops(d["static_minus_costeff_adv"])),
        "verdict attacked": d["static_minus_costeff_adv_verdict"],
        "saving that survives [95% CI]": interval_text(d["saving_survives"]),
        "worst case / static": d["worst_case_ratio"],
        "static accuracy attacked": d.get("static_adv_accuracy"),
        "teacher accuracy attacked": d.get("teacher_adv_accuracy")})
same_bill = summary["deployer"].get("same", {})
costeff_same_row = row_of("costeff", "same") or {}
glue("costeff_clean_mflops", f"{num(costeff_same_row.get('flops_clean')) / 1e6:.2f}", display=False)
glue("costeff_adv_mflops", f"{num(costeff_same_row.get('flops_adv')) / 1e6:.2f}", display=False)
for key in ("static_clean", "static_adv", "teacher_adv"):
    glue(f"{key}_mflops", f"{num(same_bill.get(f'{key}_flops')) / 1e6:.2f}", display=False)
glue("static_verdict_clean", same_bill.get("static_minus_costeff_clean_verdict") or "n/a", display=False)
glue("static_verdict_adv", same_bill.get("static_minus_costeff_adv_verdict") or "n/a", display=False)
glue("saving_survives", interval_text(same_bill.get("saving_survives")), display=False)
glue("worst_case_ratio", f"{num(same_bill.get('worst_case_ratio')):.3f}", display=False)
pd.DataFrame(rows).set_index("attack").round(3).T

# %% [markdown]
# ## The time actually lost
#
# Wall-clock of batched early exit (batch {glue:text}`timing_batch`, best of
# {glue:text}`timing_reps` passes) on the clean and on the attacked sentences, and whether the
# early-exit path gives a full forward's exit layer on every one of them (the lowest share over
# the clean and the attacked set).

# %% tags=["hide-input"]
rows = []
for name, v in V.items():
    for attack, r in v["attacks"].items():
        rows.append({"victim": names.victim_label(name, short=True),
                     "attack": names.recipe_label(attack),
                     "clean (s)": r["wallclock_clean_seconds"], "attacked (s)": r["wallclock_adv_seconds"],
                     "slowdown": r["wallclock_slowdown"], "FLOPs increase": r["flops_increase"],
                     "early exit = full forward": r["paths_agree"]})
glue("timing_batch", int(timing_batch_size), display=False)
glue("timing_reps", int(timing_repeats), display=False)
pd.DataFrame(rows).round(3)

# %% [markdown]
# ## Transfer
#
# An attacker who only has the public full-size model crafts SAME's texts against it and sends
# them unchanged to the deployed COST-EFF model (and the reverse). The texts are the stored
# ones, byte for byte; the target is queried once per text, by no attack. The efficiency-gain
# reduction is on the target, over all the source's sentences.

# %% tags=["hide-input"]
rows = []
for key, t in summary["transfer"].items():
    rows.append({"crafted on -> run on": names.victim_label(key),
                 "gain reduction on target [95% CI]": interval_text(t["interval"]), "verdict": t["verdict"],
                 "mean exit clean": t["mean_exit_layer_clean"], "mean exit attacked": t["mean_exit_layer_adv"],
                 "accuracy clean": t["accuracy_before"], "accuracy attacked": t["accuracy_after"],
                 "attacked sentences exiting at L on target": t["success_rate_on_target"]})
glue("transfer_costeff", interval_text((summary["transfer"].get("entropy->costeff") or {}).get("interval")),
     display=False)
pd.DataFrame(rows).round(3) if rows else pd.DataFrame({"transfer": ["not run"]})

# %% [markdown]
# ## Findings
#
# Each finding with its figure and the verdict of its stated rule (the methods page):
# {glue:text}`claims_tally`.

# %% tags=["hide-input"]
glued, claims, seeds = chapter_closing(profile, "same_vs_costeff", summary)
for name, value in glued.items():
    glue(name, value, display=False)
claims

# %% [markdown]
# ## Conclusion
#
# SAME cuts the efficiency gain of COST-EFF's model by {glue:text}`costeff_same_ci` and the
# full-size reference's by {glue:text}`ref_same_ci`; under attack COST-EFF's model still costs
# {glue:text}`costeff_adv_mflops` MFLOPs per example against {glue:text}`static_adv_mflops` for
# the static model of its width (verdict: **{glue:text}`static_verdict_adv`**), keeping
# {glue:text}`saving_survives` of its saving over that model. Texts crafted on the full-size
# model and replayed on COST-EFF's cut its gain by {glue:text}`transfer_costeff`.

# %% tags=["remove-cell"]
glue("run_box", run_box("05_same_vs_costeff", profile, params, computes=(
    "attacks chapter 2's slender models and chapter 1's full-size victim with SAME and PWWS, and "
    "measures what is left of COST-EFF's saving in FLOPs and wall-clock"
)), display=False)
