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
# # The reproduction summary

# %% [markdown]
# :::{glue:md} run_box
# :format: myst
# :::

# %% [markdown]
# One row per claim of the papers this book tests: where the paper makes it, the claim in
# one line, the paper's figure, how our setting differs, our figure with its 95% interval,
# on how many seeds the verdict holds (when a seed study is cached), and the verdict. Every
# cell is read from the chapters' cached results (the same figures as
# `costeff-same summary --json`, section `reproduction`); nothing on this page is typed.
#
# **The rule** (the methods page, "Verdicts"). A figure of a paper ("about 80%") is
# *reproduced* when it lies within our 95% interval widened by the tolerance the claim
# states, *partly* when our interval shows an effect on the paper's side of "no effect" but
# misses the figure, and *not reproduced* otherwise. A comparison ("A beats B", "at least as
# accurate", "does not significantly reduce") is judged in every setting we have (victims,
# FLOPs budgets, ablations) by a paired test on the same examples, corrected for
# multiplicity within its family: *reproduced* when every setting agrees with the claim,
# *partly* when some do, *not reproduced* when none does. A claim whose chapter has not run,
# or whose figure our setting lacks, is *not testable here*.

# %% tags=["parameters", "remove-cell"]
profile: str = "default"  # parameter profile the run belongs to: smoke, default or paper

# %% tags=["hide-input"]
from costeff_same.notebooks import glue_figure, run_box, setup

setup()  # first: quiet progress bars and warnings before the libraries load

import pandas as pd
from myst_nb import glue

from costeff_same import plotting
from costeff_same.reproduction import REPRODUCTION_SCHEMA
from costeff_same.summary import summary

params = REPRODUCTION_SCHEMA.from_namespace(globals())  # refuses a parameter this chapter does not know
results = summary(profile)  # reads the cache only: it trains and attacks nothing
section = results["reproduction"]
claims = pd.DataFrame(section["claims"]).set_index("key")
print(f"profile {profile}: {len(claims)} claims; chapters run: "
      f"{', '.join(k for k, v in results.items() if isinstance(v, dict) and v.get('status') == 'done')}")

# %% [markdown]
# ## Verdicts
#
# Of the {glue:text}`n_claims` claims, {glue:text}`n_reproduced` are reproduced,
# {glue:text}`n_partly` partly, {glue:text}`n_not` not reproduced, and {glue:text}`n_untestable`
# not testable here. {glue:text}`seeds_text`

# %% tags=["hide-input"]
counts = section["counts"]
glue("n_claims", len(claims), display=False)
glue("n_reproduced", counts["reproduced"], display=False)
glue("n_partly", counts["partly"], display=False)
glue("n_not", counts["not reproduced"], display=False)
glue("n_untestable", counts["not testable here"], display=False)
study = results.get("study")
glue("seeds_text", "One seed: no seed study of this profile is cached, so no row says how many seeds agree."
     if study is None else f"Seeds: the study's {len(study['seeds'])} seeds ({', '.join(map(str, study['seeds']))}).",
     display=False)
for key, row in claims.iterrows():
    glue(f"verdict_{key}", row["verdict"], display=False)
    glue(f"ours_{key}", row["ours_text"], display=False)


def seeds_cell(seeds):
    return "one seed" if not isinstance(seeds, dict) else f"{seeds['agree']} of {seeds['n']}"


table = claims.assign(seeds=claims["seeds"].map(seeds_cell))[
    ["source", "claim", "paper", "setting", "ours_text", "seeds", "verdict"]]
table.rename(columns={"ours_text": "ours [95% CI]"})

# %% [markdown]
# The quantitative claims, the paper's figure beside our estimate and its 95% interval:

# %% tags=["hide-input"]
glue_figure("fig_reproduction", plotting.fig_reproduction(section["claims"]))

# %% [markdown]
# :::{glue:figure} fig_reproduction
# ---
# name: fig-reproduction
# alt: >-
#   Dot plot: for each quantitative claim, the paper's figure as a cross and our estimate as a dot with
#   its 95% interval, on a common fraction axis.
# ---
#
# Every quantitative claim of the papers: the published figure (cross) against our estimate and its
# 95% interval (dot and whisker).
# :::

# %% [markdown]
# ## Reading the table
#
# Our setting is a 2-core CPU: a 6-layer MiniLM (not BERT-base) fine-tuned on Rotten
# Tomatoes (not GLUE), a few hundred test sentences per measurement. A verdict here says
# what holds *in this setting*, with the uncertainty the intervals show; it neither
# confirms nor refutes the papers' figures on their own models and data. The paper profile
# (`configs/paper.yaml`) names the papers' setting for a reader with the hub and a GPU.
# %% tags=["remove-cell"]
glue("run_box", run_box("99_reproduction", profile, params, computes=(
    "collects every claim of the book, ours beside the papers', with intervals and verdicts"
)), display=False)
