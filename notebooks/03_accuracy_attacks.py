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
# # Accuracy attacks against multi-exit models

# %% [markdown]
# :::{glue:md} run_box
# :format: myst
# :::

# %% [markdown]
# SAME {cite:p}`chen2023same` first asks (its RQ1): **do attacks made to flip a model's answer
# also slow a multi-exit model down?** Its answer is no: adapting accuracy-oriented attacks
# "does not significantly reduce" the efficiency of multi-exit models, which is why it
# builds a slowdown attack of its own (the next chapter). This chapter puts the question to
# the two victims of chapter 1, each at its operating point, with three published attacks:
#
# - **PWWS** {cite:p}`ren2019pwws`: WordNet synonyms, words taken in the order of probability-weighted
#   word saliency;
# - **TextFooler** {cite:p}`jin2020textfooler`: embedding-neighbour swaps, words taken in the order of
#   how much deleting them hurts, under a sentence-similarity constraint;
# - **DeepWordBug** {cite:p}`gao2018deepwordbug`: one character edit per word (swap, substitution,
#   deletion, insertion) within a Levenshtein budget of 30.
#
# They are built on our own small attack core (`costeff_same.attacks`), in TextAttack's shape
# {cite:p}`morris2020textattack`:
# goal function + constraints + transformation + search method. The victim is queried in
# batches with dynamic padding and serves its prediction **at the exit its policy chooses**, so
# an attack flips what the deployed model answers. Two resources the papers name cannot be
# fetched offline and have substitutes, said again wherever they matter: the **Universal
# Sentence Encoder** {cite:p}`cer2018use` (English) is its multilingual v3, ported to numpy in a
# PyPI wheel, and TextFooler's **counter-fitted word vectors** {cite:p}`mrksic2016counter` are built
# here: GloVe's 50-dimensional vectors {cite:p}`pennington2014glove` counter-fitted to WordNet's
# synonyms and antonyms (a cached stage; the methods page). MiniLM's input word embeddings, the
# stand-in before, run beside them. WordNet 3.0 {cite:p}`miller1995wordnet` itself comes from Debian's
# packages into a project-owned NLTK folder (`costeff-same data wordnet`).
#
# Every number quoted in the prose below comes from the cached result of this run.

# %% tags=["remove-cell"]
from typing import Optional  # the annotations of the parameters below

# %% tags=["parameters", "remove-cell"]
profile: str = "default"  # parameter profile the run belongs to: smoke, default or paper
victim_profile: str = "default"  # the profile whose chapter-1 victims are attacked
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
recipes: list[str] = ["pwws", "textfooler", "deepwordbug"]  # attack recipes
textfooler_min_cos_sims: list[float] = [0.5]  # TextFooler once per cosine threshold (counter-fitted)
textfooler_stand_in_min_cos_sims: list[float] = [0.5]  # ... and among MiniLM's embeddings ([]: none)
num_examples: int = 200  # test sentences per victim (seeded, label-balanced; chapter 4's with the same seed)
query_budget: Optional[int] = 300  # model evaluations per attacked example (None: unlimited)
seed: int = 0  # seeds the sentence selection and the attacks' random choices (character edits)
batch_size: int = 64  # texts per victim forward

# %% tags=["hide-input"]
from costeff_same.notebooks import glue_figure, run_box, setup

setup()  # first: quiet progress bars and warnings before the libraries load

import pandas as pd
from IPython.display import HTML, display
from myst_nb import glue

from costeff_same import plotting
from costeff_same.attacks.text import highlight_html
from costeff_same.attacks.units import candidates_per_word
from costeff_same.attacks.word_vectors import counter_fitted_record
from costeff_same.chapters.accuracy_attacks import (
    ACCURACY_ATTACKS_SCHEMA,
    accuracy_attacks_config,
    accuracy_attacks_summary,
    run_accuracy_attacks,
)
from costeff_same.foundations import names
from costeff_same.summary import chapter_closing
from costeff_same.verdicts import interval_text

params = ACCURACY_ATTACKS_SCHEMA.from_namespace(globals())  # the profile's values, with explicit ones on top
globals().update(params)  # every cell below reads the run's values
config = accuracy_attacks_config(**params)
record = run_accuracy_attacks(config)  # cached: a second run only reads the result
units = {(v, r): u for v, vic in record["victims"].items() for r, u in vic["recipes"].items()}
section = accuracy_attacks_summary(record)  # with 95% intervals, Holm-corrected tests and the RQ1 verdict
rows_by_unit = {(row["victim"], row["recipe"]): row for row in section["records"]}
print(f"profile {profile}: task {record['task']}, backbone {record['backbone']}, {record['num_layers']} layers, "
      f"config {config.config_hash()}")


def num(value):
    """A figure for the prose (nan where it is undefined, e.g. no successful attack)."""
    return float("nan") if value is None else value


# %% [markdown]
# ## Setting
#
# Each victim is attacked at the operating point chapter 1 chose on the validation split:
# entropy threshold {glue:text}`ent_value` for the DeeBERT-style model and patience
# {glue:text}`pat_value` for the PABEE-style model. Each recipe attacks
# {glue:text}`n_examples` sentences of the test split, a seeded selection that keeps both
# labels in proportion to the split ({glue:text}`n_positive` positive, the same sentences
# chapter 4 attacks with SAME); the ones the victim already gets wrong
# are skipped (they count as wrong after the attack too). An attack may spend at most
# {glue:text}`budget` model evaluations on one sentence (cached answers are free); the paper
# sets no budget, and ours is what keeps the chapter within its time on two CPU cores.
# The clean queries reproduce chapter 1's exit layers and predictions on the same sentences
# for {glue:text}`agreement:.1%` of them.
#
# TextFooler draws its swaps from the 50 nearest neighbours of a word whose cosine similarity
# is at least 0.5 in counter-fitted word vectors. In ours ({glue:text}`cf_words` words, of which
# {glue:text}`cf_moved` were moved by {glue:text}`cf_synonyms` synonym and {glue:text}`cf_antonyms`
# antonym pairs) a content word of these sentences gets {glue:text}`tf_cands_cf:.1f` candidates
# on average at 0.5. In MiniLM's input embeddings, the stand-in, related words sit further
# apart: {glue:text}`tf_cands_05:.1f` candidates at 0.5, {glue:text}`tf_cands_04:.1f` at 0.4. So
# TextFooler runs at the paper's 0.5 among the counter-fitted vectors (the recipe's default),
# and among MiniLM's at {glue:text}`tf_thresholds` (the parameter `textfooler_stand_in_min_cos_sims`
# adds lower thresholds, which give the stand-in more candidates at the price of looser swaps);
# the table after the next shows what the word space changes. The recipes, as composed (every
# departure from the papers is commented in `costeff_same/attacks/<recipe>.py`):

# %% tags=["hide-input"]
glue("ent_value", record["victims"]["entropy"]["policy_value"] if "entropy" in record["victims"] else float("nan"),
     display=False)
glue("pat_value", int(record["victims"]["patience"]["policy_value"]) if "patience" in record["victims"]
     else float("nan"), display=False)
glue("n_examples", record["num_examples"], display=False)
glue("n_positive", sum(x["label"] for x in next(iter(units.values()))["results"]), display=False)
glue("budget", "no limit" if record["query_budget"] is None else record["query_budget"], display=False)
glue("agreement", min(u["chapter1_agreement"] for u in units.values()), display=False)
glue("n_layers", record["num_layers"], display=False)
glue("tf_thresholds", ", ".join(f"{c:g}" for c in textfooler_stand_in_min_cos_sims) or "(none)", display=False)
fitted = counter_fitted_record()
for key in ("words", "moved_words", "synonym_pairs", "antonym_pairs"):
    glue({"words": "cf_words", "moved_words": "cf_moved", "synonym_pairs": "cf_synonyms",
          "antonym_pairs": "cf_antonyms"}[key], f"{fitted[key]:,}", display=False)
candidates = {(space, c): candidates_per_word(config.multi_exit.data, c, space, seed=config.seed)
              for space, c in (("counter_fitted", 0.5), ("minilm", 0.5), ("minilm", 0.4))}
glue("tf_cands_cf", candidates["counter_fitted", 0.5], display=False)
glue("tf_cands_05", candidates["minilm", 0.5], display=False)
glue("tf_cands_04", candidates["minilm", 0.4], display=False)
recipes_shown = {}
for (v, r), u in units.items():
    a = u["attack"]
    recipes_shown.setdefault(names.recipe_label(r), {
        "transformation": a["transformation"], "constraints": "; ".join(a["constraints"]), "search": a["search"]})
pd.DataFrame(recipes_shown).T

# %% [markdown]
# ## What the accuracy attacks achieve
#
# Accuracy before and after is over all the sentences; the success rate is over the attacked
# ones (those the victim got right); the perturbation rate (changed words / words) is over the
# successful attacks; queries and seconds are per attacked sentence. The best recipe against
# the DeeBERT-style victim succeeds on {glue:text}`best_ent_rate:.1%` of the sentences it
# attacks, against the PABEE-style victim on {glue:text}`best_pat_rate:.1%`.

# %% tags=["hide-input"]
rows = []
for (v, r), u in units.items():
    s = u["summary"]
    ci = s["intervals"]
    rows.append({"victim": names.VICTIM_SHORT[v], "recipe": names.recipe_label(r), "attacked": s["attacked"],
                 "accuracy before": interval_text(ci["accuracy_before"]),
                 "accuracy after": interval_text(ci["accuracy_after"]),
                 "success rate": interval_text(ci["success_rate"]),
                 "perturbation rate": interval_text(ci["perturbation_rate"]),
                 "words changed": s["words_changed"],
                 "similarity (USE)": interval_text((u.get("meaning") or {}).get("similarity")),
                 "queries / example": s["queries_per_example"],
                 "seconds / example": s["seconds_per_example"], "budget spent": s["budget_exhausted"]})
accuracy = pd.DataFrame(rows)
for short, v in (("ent", "entropy"), ("pat", "patience")):
    rates = [num(u["summary"]["success_rate"]) for (vv, _), u in units.items() if vv == v]
    glue(f"best_{short}_rate", max(rates, default=float("nan")), display=False)
accuracy.round(3)

# %% [markdown]
# The similarity column is the cosine similarity, under the Universal Sentence Encoder port, of
# each changed sentence to its original (95% bootstrap interval over the sentences an attack
# changed), the measure chapter 4 applies to the slowdown attacks too.
#
# ### TextFooler's word space
#
# The same recipe, threshold and sentences, with the swaps drawn from the counter-fitted vectors
# or from the MiniLM stand-in. At the paper's threshold of 0.5, TextFooler succeeds on
# {glue:text}`tf_cf_ent` of the sentences it attacks on the DeeBERT-style victim and on
# {glue:text}`tf_cf_pat` on the PABEE-style victim with the counter-fitted vectors; with the
# stand-in at the same threshold, on {glue:text}`tf_mini_ent` and {glue:text}`tf_mini_pat`
# (95% intervals).

# %% tags=["hide-input"]
rows = []
for (v, r), u in units.items():
    if u["recipe"] != "textfooler":
        continue
    space = u.get("word_vectors") or "counter_fitted"
    threshold = u["min_cos_sim"] if u["min_cos_sim"] is not None else 0.5
    rows.append({"victim": names.VICTIM_SHORT[v], "word space": names.WORD_VECTOR_LABELS.get(space, space),
                 "cos >=": threshold, "candidates / word": candidates.get((space, threshold)),
                 "success rate": interval_text(u["summary"]["intervals"]["success_rate"]),
                 "similarity (USE)": interval_text((u.get("meaning") or {}).get("similarity")),
                 "queries / example": u["summary"]["queries_per_example"],
                 "seconds / example": u["summary"]["seconds_per_example"]})
for short, v in (("ent", "entropy"), ("pat", "patience")):
    for tag, key in (("cf", "textfooler"), ("mini", "textfooler_minilm")):
        unit = units.get((v, key))
        glue(f"tf_{tag}_{short}", interval_text(unit["summary"]["intervals"]["success_rate"]) if unit else "(not run)",
             display=False)
pd.DataFrame(rows).round(3)

# %% [markdown]
# ## Do they slow the model down?
#
# The efficiency metrics on the attacked sentences, clean against adversarial ("adversarial" is
# the text each attack returns: the successful one, or the best it found when it failed, which
# is what an attacker would submit). Efficiency gain is $g = 1 - \bar{\ell}/L$ (mean exit layer
# $\bar{\ell}$ of $L$), and the efficiency-gain reduction
# $(g_{\mathrm{clean}} - g_{\mathrm{adv}})/g_{\mathrm{clean}}$ is SAME's measure: 0 means no slowdown,
# 1 means every sentence now runs all {glue:text}`n_layers` layers. Averaged over the
# (victim, recipe) pairs it is {glue:text}`mean_reduction:.3f` (on the successful attacks only:
# {glue:text}`mean_reduction_succeeded:.3f`); the largest is {glue:text}`max_reduction_ci`
# (95% bootstrap interval, clean and adversarial exit layers resampled as pairs). Whether the
# exit layers moved is tested per pair with a paired Wilcoxon signed-rank test {cite:p}`wilcoxon1945` on the
# attacked sentences, and the {glue:text}`n_pairs` tests form one family, corrected by Holm's
# method {cite:p}`holm1979`: {glue:text}`n_significant` of them show a significant slowdown at 0.05 (a
# reduction whose interval lies above 0). Efficacy is the area under the cumulative exit
# distribution of DeepSloth {cite:p}`hong2021deepsloth` and WAFFLE {cite:p}`coalson2023waffle` (lower: later exits).

# %% tags=["hide-input"]
rows = []
for (v, r), u in units.items():
    e, es = u["summary"]["efficiency"], u["summary"]["efficiency_succeeded"]
    rows.append({"victim": names.VICTIM_SHORT[v], "recipe": names.recipe_label(r), "examples": e.get("examples"),
                 "mean exit (clean)": e.get("mean_exit_layer_clean"), "mean exit (adv)": e.get("mean_exit_layer_adv"),
                 "speedup (clean)": e.get("speedup_clean"), "speedup (adv)": e.get("speedup_adv"),
                 "gain (clean)": e.get("efficiency_gain_clean"), "gain (adv)": e.get("efficiency_gain_adv"),
                 "gain reduction": e.get("efficiency_gain_reduction"),
                 "gain reduction [95% CI]": interval_text((u["summary"]["intervals"]["attacked"] or {})
                                                          .get("efficiency_gain_reduction")),
                 "gain reduction (succeeded only)": es.get("efficiency_gain_reduction"),
                 "efficacy (clean)": e.get("efficacy_clean"), "efficacy (adv)": e.get("efficacy_adv"),
                 "exit later": e.get("later"), "exit earlier": e.get("earlier"),
                 "Wilcoxon p": e.get("wilcoxon_p"), "p (Holm)": rows_by_unit[(v, r)].get("wilcoxon_p_holm"),
                 "verdict": rows_by_unit[(v, r)].get("shift")})
efficiency = pd.DataFrame(rows)
reductions = efficiency["gain reduction"].astype(float)
largest = max(section["records"], key=lambda row: num(row["efficiency_gain_reduction"]))
glue("mean_reduction", float(reductions.mean()), display=False)
glue("max_reduction_ci", interval_text((largest["intervals"]["attacked"] or {}).get("efficiency_gain_reduction")),
     display=False)
glue("n_pairs", section["rq1"]["pairs"], display=False)
glue("n_significant", section["rq1"]["significant"], display=False)
glue("mean_reduction_succeeded", float(efficiency["gain reduction (succeeded only)"].astype(float).mean()),
     display=False)
efficiency.round(3)

# %% tags=["hide-input"]
glue_figure("fig_attack_overview", plotting.fig_attack_overview(record))

# %% [markdown]
# :::{glue:figure} fig_attack_overview
# :name: fig-attack-overview
# :alt: Two bar charts with error bars: attack success rate and efficiency-gain reduction for each victim and recipe.
#
# Success rate (left, over the attacked sentences) and efficiency-gain reduction (right, the same
# sentences) of every recipe against each victim; whiskers: 95% bootstrap intervals.
# :::

# %% [markdown]
# The exit-layer histograms of the attacked sentences, clean and adversarial, one panel per
# victim and recipe:

# %% tags=["hide-input"]
glue_figure("fig_attack_exit_histograms", plotting.fig_attack_exit_histograms(record))

# %% [markdown]
# :::{glue:figure} fig_attack_exit_histograms
# ---
# name: fig-attack-exit-histograms
# alt: >-
#   Grid of histograms, one per victim and recipe: exit layers of the attacked sentences, clean bars
#   beside adversarial bars.
# ---
#
# Exit layers of the attacked sentences before (clean) and after (adversarial) each accuracy attack,
# one panel per victim and recipe.
# :::

# %% [markdown]
# ## Examples
#
# One successful adversarial sentence per victim and recipe (the first attacked), the
# replaced words struck through and their replacements in bold, with the exit layer and the
# prediction before and after.

# %% tags=["hide-input"]
lines = []
for (v, r), u in units.items():
    found = [x for x in u["results"] if x["status"] == "succeeded"]
    head = f"<b>{names.recipe_label(r)}</b> against the {names.VICTIM_LABELS[v]} victim"
    if not found:
        lines.append(f"{head}: no successful attack in this run.")
        continue
    x = found[0]
    lines.append(f"{head} (label {x['label']}; prediction {x['original_prediction']} -> "
                 f"{x['perturbed_prediction']}; exit layer {x['original_exit_layer']} -> "
                 f"{x['perturbed_exit_layer']}):<br>{highlight_html(x)}")
display(HTML("".join(f"<p>{line}</p>" for line in lines)))

# %% [markdown]
# ## Our figures beside the paper's claim (RQ1)
#
# SAME states that adapting accuracy-oriented attacks does not significantly reduce the
# efficiency of multi-exit models; its own slowdown attack reduces the efficiency gain by 80%
# on average (chapter 4). Our setting differs: a 6-layer MiniLM sentence-embedding model (not
# 12-layer BERT-base, RoBERTa or ALBERT), Rotten Tomatoes sentences (not the GLUE dev sets),
# operating points chosen on our validation split (not SAME's entropy 0.19 and patience 4),
# a query budget per sentence, and offline stand-ins for the Universal Sentence Encoder and
# the counter-fitted vectors. The efficiency-gain formula is our reading (the paper's exact
# formula is unverified).
#
# **Our answer to RQ1: {glue:text}`rq1_verdict`.** Of the {glue:text}`n_pairs` (victim,
# recipe) pairs, {glue:text}`n_significant` slow the victim down significantly (Holm-corrected
# Wilcoxon tests, with the reduction's interval above 0); the claim holds for a pair where
# the reduction is not a significant increase, and the verdict follows the rule of the
# methods page (reproduced: every pair; partly: some; not reproduced: none).

# %% tags=["hide-input"]
glue("rq1_verdict", section["rq1"]["verdict"], display=False)
glued, claims, seeds = chapter_closing(profile, "accuracy_attacks", section)
for name, value in glued.items():
    glue(name, value, display=False)
claims

# %% [markdown]
# ## Across seeds
#
# {glue:text}`seed_note`

# %% tags=["hide-input"]
seeds
# %% [markdown]
# ## Conclusion
#
# On the same seeded, label-balanced sentences as chapter 4, the mean efficiency-gain reduction
# under the accuracy attacks is {glue:text}`mean_reduction:.2f`;
# {glue:text}`n_significant` of {glue:text}`n_pairs` (victim, recipe) pairs exit significantly
# later (Holm-corrected), so our verdict on SAME's RQ1 is: **{glue:text}`rq1_verdict`**. Of the
# published claims this chapter tests: {glue:text}`claims_tally`.

# %% tags=["remove-cell"]
glue("run_box", run_box("03_accuracy_attacks", profile, params, computes=(
    "attacks both victims with PWWS, TextFooler and DeepWordBug and tests whether the "
    "adversarial sentences exit later (SAME's RQ1)"
)), display=False)
