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
# # The SAME slowdown attack

# %% [markdown]
# :::{glue:md} run_box
# :format: myst
# :::

# %% [markdown]
# SAME {cite}`chen2023same` reports as its RQ1 that attacks made to flip a multi-exit model's
# answer do not significantly slow it down. Chapter 3 put that claim to our victims; by its
# Holm-corrected tests on the same sentences this chapter attacks, the verdict is
# **{glue:text}`rq1_verdict`** ({glue:text}`rq1_detail`). SAME's second question is whether an attack
# made **to slow the model down** can take away the efficiency that early exit promises. Its
# answer, the paper's central claim, is yes: by perturbing a few words so that **every internal
# exit** stays unsure (against entropy exits, DeeBERT {cite}`xin2020deebert`) and **neighbouring
# exits disagree** (against patience exits, PABEE {cite}`zhou2020pabee`), SAME "diminishes the
# efficiency gain of various multi-exit models by 80% on average": multi-exit models give a
# *false sense of efficiency*.
#
# Our implementation (`costeff_same.attacks.same_chen_2023`) follows the paper's description,
# re-derived, in TextAttack's shape {cite}`morris2020textattack`:
#
# - **goal**: score $= \ell / L$ (exit layer $\ell$ of $L$), success when the text exits at the last layer; sentences
#   that already exit there are skipped and counted;
# - **loss over all exits**, lower is slower: with e the exit layer the current text takes,
#   weights $w_i = 0.1$ for the exits before $e$ and $1.2^{i-e}$ from $e$ on; a uniform-target term
#   $L_U = \frac{1}{L}\sum_i w_i\,\mathrm{CE}(\mathcal{U}, p_i)$ (DeepSloth's objective {cite}`hong2021deepsloth`) and a
#   cross-prediction term $L_X = \frac{1}{L}\sum_i w_i\,\mathrm{CE}(y^*_i, p_i)$ whose targets make each exit
#   disagree with the one before; $\mathcal{L} = 0.8\,L_X + 0.2\,L_U$;
# - **candidates**: gradient-guided word swaps (the first-order change of L when a word's
#   embedding is replaced, from the gradient at the word-embedding rows; the 100 swaps that
#   most decrease L) and character mutations (neighbour swap, insertion, deletion, homoglyph)
#   of the 10 words with the largest gradient;
# - **constraints**: stopwords untouched, no word modified twice, at most $\max(3, \lceil 0.1\,n \rceil)$ of the $n$
#   words changed;
# - **search**: beam search, width 5, at most 10 iterations, stop on success.
#
# We also **fix four flaws of the reference code** and keep a switch (`reference_quirks`) that
# puts the first three back, so that the ablations below show what each costs: the reference
# never zeroes the embedding gradient (it accumulates across expansions and sentences); it
# returns the best text of the last beam, not the best seen; it can never swap a word made of
# several word pieces; and it scores every candidate with a full forward. We score candidates
# with **batched early exit** (rows leave the batch when they exit), which gives exactly a full
# forward's exit layers (checked below; `benchmarks/same_scoring.py` times it).
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
num_examples: int = 200  # test sentences attacked per victim (seeded, label-balanced; chapter 3's)
ablation_examples: int = 50  # sentences per victim and ablation (the first of the same order; 0: none)
ablations: list[str] = ["uniform_only", "cross_only", "no_dynamic_weights", "word_only", "char_only", "reference_quirks", "no_tie_break"]  # ablations run  # noqa: E501 (a long default)
budgets: list[int] = [1, 2, 3]  # word budgets of the budget curve (on the ablation sentences)
constrained_variant: bool = True  # SAME held to meaning too (on the ablation sentences)
waffle: bool = True  # WAFFLE (Coalson et al., 2023) beside SAME on the same sentences
reference_entropy: Optional[float] = 0.19  # SAME also at this entropy threshold (reference: 0.19)
reference_patience: Optional[int] = 4  # SAME also at this patience (reference: 4; None: not run)
lam: float = 0.8  # lambda of lambda * L_X + (1 - lambda) * L_U (SAME: 0.8)
dynamic_weights: bool = True  # SAME's dynamic exit weights (0.1 before the exit layer, 1.2^(i-e) from it on)
word_level: bool = True  # gradient-guided word swaps
char_level: bool = True  # character mutations (swap, insertion, deletion, homoglyph)
reference_quirks: bool = False  # the reference code's behaviour (accumulated gradient, last beam's best, ...)
beam_width: int = 5  # beam width (SAME: 5)
max_iterations: int = 10  # beam-search iterations at most (SAME: 10)
top_n: int = 100  # candidates per level and expansion (SAME: 100)
top_k: int = 10  # words mutated at the character level (SAME: 10)
max_rate: float = 0.1  # words changed at most, as a fraction of the words (SAME: 0.1) ...
min_words: int = 3  # ... and never fewer than this many (SAME: 3)
query_budget: Optional[int] = None  # model evaluations per sentence (None: unlimited, as in the paper)
chunk_size: Optional[int] = 32  # candidates per scoring batch (the result does not depend on it)
tie_break: bool = True  # rank same-layer candidates by that exit's entropy (a departure from the paper)
min_similarity: float = 0.84  # the constrained variant's least angular USE similarity
seed: int = 0  # seeds the sentence order and the attack's random choices
batch_size: int = 64  # texts per victim forward
timing_batch_size: int = 64  # batch size of the wall-clock measurement
timing_repeats: int = 3  # timed passes over each set (the fastest counts)
transfer: bool = True  # run each victim's adversarial sentences through the other victim

# %% tags=["hide-input"]
from costeff_same.notebooks import glue_figure, run_box, setup

setup()  # first: quiet progress bars and warnings before the libraries load

import math

import pandas as pd
from IPython.display import HTML, display
from myst_nb import glue

from costeff_same import plotting
from costeff_same.attacks.text import highlight_html
from costeff_same.chapters.accuracy_attacks import rq1_verdict
from costeff_same.chapters.same import SAME_SCHEMA, run_same, same_config
from costeff_same.chapters.same_summary import same_summary_section
from costeff_same.foundations import names
from costeff_same.summary import accuracy_attack_rows, chapter_closing
from costeff_same.verdicts import interval_text

params = SAME_SCHEMA.from_namespace(globals())  # the profile's values, with explicit ones on top
globals().update(params)  # every cell below reads the run's values
config = same_config(**params)
record = run_same(config)  # cached: a second run only reads the result
summary = same_summary_section(record)
V = record["victims"]
L = record["num_layers"]
print(f"profile {profile}: task {record['task']}, backbone {record['backbone']}, {L} layers, "
      f"config {config.config_hash()}, computed in {record['seconds']:.0f} s")


def num(value):
    """A figure for the prose as a plain float (nan where it is undefined, e.g. nothing attacked)."""
    return float("nan") if value is None else float(value)


# %% [markdown]
# ## Setting
#
# Each victim is attacked at the operating point chapter 1 chose on the validation split:
# entropy threshold {glue:text}`ent_value` (nats) for the DeeBERT-style model and patience
# {glue:text}`pat_value` for the PABEE-style model, both with {glue:text}`n_layers` layers.
# SAME attacks {glue:text}`n_examples` test sentences per victim: the seeded selection of
# chapter 1's test split that keeps both labels in proportion, the very sentences chapter 3's
# accuracy attacks attack ({glue:text}`n_positive` positive). Sentences
# that already exit at the last layer are skipped: {glue:text}`ent_skipped` for the entropy
# victim and {glue:text}`pat_skipped` for the patience victim. No query budget is set unless
# the parameters say so (here: {glue:text}`budget`).

# %% tags=["hide-input"]
def victim_value(name, key, default=float("nan")):
    return summary[name][key] if name in summary else default


glue("ent_value", num(victim_value("entropy", "threshold")), display=False)
glue("pat_value", num(victim_value("patience", "threshold")), display=False)
glue("n_layers", int(L), display=False)
glue("n_examples", int(record["num_examples"]), display=False)
glue("n_positive", sum(r["label"] for r in next(iter(V.values()))["main"]["results"]), display=False)
glue("ent_skipped", int(victim_value("entropy", "skipped", 0)), display=False)
glue("pat_skipped", int(victim_value("patience", "skipped", 0)), display=False)
glue("budget", "no limit" if query_budget is None else str(query_budget), display=False)
for name, v in V.items():
    print(f"{name}:", v["main"]["attack"].replace("\n", "\n  "))

# %% [markdown]
# ## How much efficiency SAME takes away
#
# Efficiency is measured on all the sentences (skipped ones keep their clean exit layer, the
# last): mean exit layer $\bar{\ell}$, speedup $L/\bar{\ell}$ and efficiency gain $g = 1 - \bar{\ell}/L$,
# before and after the attack. The **efficiency-gain reduction**
# $(g_{\mathrm{clean}} - g_{\mathrm{adv}})/g_{\mathrm{clean}}$ is SAME's headline measure (our reading
# of it: the paper's exact formula is
# unverified). Averaged over the two victims it is **{glue:text}`mean_reduction_ci`**
# (entropy {glue:text}`ent_reduction_ci`, patience {glue:text}`pat_reduction_ci`; 95%
# bootstrap intervals, each sentence's clean and adversarial exit layers resampled together,
# and for the mean the same sentences for both victims), with at most
# {glue:text}`max_changed` words changed in any sentence and {glue:text}`violations` sentences
# over the max(3, 10%) budget. The perturbation rate (changed words / words) is over the
# attacked sentences; queries and seconds are per attacked sentence.

# %% tags=["hide-input"]
rows = []
for name, s in ((n, summary[n]) for n in V):
    rows.append({
        "victim": names.VICTIM_LABELS[name], "threshold": s["threshold"], "sentences": s["examples"],
        "attacked": s["attacked"], "skipped": s["skipped"],
        "mean exit (clean)": s["mean_exit_layer_clean"], "mean exit (SAME)": s["mean_exit_layer_adv"],
        "speedup (clean)": s["speedup_clean"], "speedup (SAME)": s["speedup_adv"],
        "gain (clean)": s["efficiency_gain_clean"], "gain (SAME)": s["efficiency_gain_adv"],
        "gain reduction": s["efficiency_gain_reduction"],
        "gain reduction [95% CI]": interval_text(s["intervals"]["all"]["efficiency_gain_reduction"]),
        "efficacy (clean)": s["efficacy_clean"], "efficacy (SAME)": s["efficacy_adv"],
        "accuracy (clean)": s["accuracy_before"], "accuracy (SAME)": s["accuracy_after"],
        "success rate [95% CI]": interval_text(s["intervals"]["success_rate"]),
        "perturbation rate": s["perturbation_rate"],
        "max words changed": s["max_words_changed"], "queries / sentence": s["queries_per_example"],
        "seconds / sentence": s["seconds_per_example"],
    })
main_table = pd.DataFrame(rows)
glue("mean_reduction", num(summary["mean_efficiency_gain_reduction"]), display=False)
glue("mean_reduction_ci", interval_text(summary["mean_efficiency_gain_reduction_interval"]), display=False)
for short, name in (("ent", "entropy"), ("pat", "patience")):
    glue(f"{short}_reduction_ci", interval_text(summary[name]["intervals"]["all"]["efficiency_gain_reduction"])
         if name in summary else "n/a", display=False)
glue("ent_reduction", num(victim_value("entropy", "efficiency_gain_reduction", None)), display=False)
glue("pat_reduction", num(victim_value("patience", "efficiency_gain_reduction", None)), display=False)
glue("ent_success", num(victim_value("entropy", "success_rate", None)), display=False)
glue("pat_success", num(victim_value("patience", "success_rate", None)), display=False)
glue("max_changed", int(max(s["max_words_changed"] for s in (summary[n] for n in V))), display=False)
glue("violations", int(sum(summary[n]["budget_violations"] for n in V)), display=False)
main_table.round(3).set_index("victim").astype(object).T

# %% [markdown]
# Where the sentences exit, before and after (all sentences of each victim):

# %% tags=["hide-input"]
glue_figure("fig_same_exit_histograms", plotting.fig_same_exit_histograms(record))

# %% [markdown]
# :::{glue:figure} fig_same_exit_histograms
# :name: fig-same-exit-histograms
# :alt: Histograms, one panel per victim: exit layers of the sentences, clean beside SAME's adversarial texts.
#
# Exit layers of the attacked sentences on their clean text and on SAME's adversarial text, one panel
# per victim; the title gives the mean exit layer before and after.
# :::

# %% [markdown]
# The shift of each sentence: its clean exit layer against the exit layer of the text SAME
# returned (on the dotted diagonal nothing changed; above it the sentence now exits later).
# SAME succeeds on {glue:text}`ent_success:.1%` of the sentences it attacks on the entropy victim
# and on {glue:text}`pat_success:.1%` on the patience victim.

# %% tags=["hide-input"]
glue_figure("fig_same_shift", plotting.fig_same_shift(record))

# %% [markdown]
# :::{glue:figure} fig_same_shift
# ---
# name: fig-same-shift
# alt: >-
#   Bubble plots, one per victim: clean exit layer on the x axis against adversarial exit layer on the y
#   axis, bubble area proportional to the number of sentences.
# ---
#
# Per-sentence shift of the exit layer under SAME: each bubble is a (clean, adversarial) pair of exit
# layers, its area the number of sentences; points above the diagonal exit later after the attack.
# :::

# %% [markdown]
# ## The time actually lost
#
# Layers are a proxy; what a deployment pays is wall-clock. We time batched early-exit
# inference (batch {glue:text}`timing_batch`, best of {glue:text}`timing_reps` passes) over the
# clean sentences and over SAME's adversarial sentences, and running every layer for reference.
# The adversarial set takes {glue:text}`ent_slowdown:.2f`x the clean set's time on the entropy
# victim and {glue:text}`pat_slowdown:.2f`x on the patience victim. The fast scoring path gives
# exactly a full forward's exit layer on {glue:text}`agreement:.1%` of these sentences (the
# lowest over victims and sets).

# %% tags=["hide-input"]
rows = []
for name, v in V.items():
    t = v["timing"]
    rows.append({"victim": names.VICTIM_LABELS[name], "clean (s)": t["clean"]["seconds"],
                 "SAME (s)": t["adversarial"]["seconds"], "all layers (s)": t["all_layers"]["seconds"],
                 "clean (ms / sentence)": t["clean"]["ms_per_example"],
                 "SAME (ms / sentence)": t["adversarial"]["ms_per_example"],
                 "slowdown (SAME / clean)": t["slowdown"],
                 "early exit = full forward (clean)": v["scoring_agreement"]["clean"]["exit_layer"],
                 "early exit = full forward (SAME)": v["scoring_agreement"]["adversarial"]["exit_layer"]})
glue("timing_batch", int(timing_batch_size), display=False)
glue("timing_reps", int(timing_repeats), display=False)
glue("ent_slowdown", num(V["entropy"]["timing"]["slowdown"] if "entropy" in V else None), display=False)
glue("pat_slowdown", num(V["patience"]["timing"]["slowdown"] if "patience" in V else None), display=False)
glue("agreement", float(min(min(v["scoring_agreement"][k]["exit_layer"] for k in ("clean", "adversarial"))
                            for v in V.values())), display=False)
pd.DataFrame(rows).round(4)

# %% [markdown]
# ## Examples
#
# A handful of successful adversarial sentences per victim (the first ones in attack order),
# each replaced word struck through and followed by its replacement in bold, with the exit
# layer and the prediction before and after.

# %% tags=["hide-input"]
lines = []
for name, v in V.items():
    found = [r for r in v["main"]["results"] if r["status"] == "succeeded"][:3]
    lines.append(f"<p><b>{names.VICTIM_LABELS[name]}</b></p>")
    if not found:
        lines.append("<p>No successful attack in this run.</p>")
    for r in found:
        lines.append(f"<p>exit layer {r['original_exit_layer']} &rarr; {r['perturbed_exit_layer']}; "
                     f"prediction {r['original_prediction']} &rarr; {r['perturbed_prediction']} "
                     f"(label {r['label']}):<br>{highlight_html(r)}</p>")
display(HTML("".join(lines)))

# %% [markdown]
# ## Ablations
#
# Each variant attacks the first {glue:text}`n_ablation` sentences of the same order, on each
# victim (the "SAME (fixed)" row is the main run on those sentences). **Uniform term only** is
# the DeepSloth-style objective; **cross-prediction only** keeps only the disagreement term;
# **no dynamic weights** gives every exit weight 1; **word / character level only** drop the
# other candidates; **reference quirks on** accumulates the gradient across expansions and
# sentences, returns the last beam's best and never swaps multi-piece words; **no tie-break**
# ranks candidates by their exit layer alone, as the paper does (our `tie_break` departure off);
# **constrained** and the **budgets** are the next sections' variants. With the quirks on,
# the mean reduction over victims is {glue:text}`quirks_reduction:.3f`, against
# {glue:text}`fixed_reduction:.3f` for the fixed attack on the same sentences. Each variant is
# compared with full SAME on the same sentences by the paired-bootstrap interval of SAME's
# reduction minus the variant's: "beats" means the part the variant removes adds to the
# slowdown (the rule of the methods page). The differences larger than their intervals:
# {glue:text}`ablation_beyond_noise`.

# %% tags=["hide-input"]
beyond = [f"{names.ablation_label(name, variant)} ({test['verdict']}, SAME - variant "
          f"{interval_text(test['same_minus_ablation'])})"
          for name, tests in summary["ablation_tests"].items() for variant, test in tests.items()
          if test.get("verdict") not in (None, "within noise")]
glue("ablation_beyond_noise", "; ".join(beyond) if beyond else "none", display=False)
rows = []
for name, v in V.items():
    for variant, a in v["ablations"].items():
        s = a["summary"]
        e = s["efficiency_all"]
        test = summary["ablation_tests"].get(name, {}).get(variant, {})
        rows.append({"victim": names.VICTIM_SHORT[name],
                     "variant": names.ABLATION_LABELS.get(variant, variant),
                     "gain reduction": e.get("efficiency_gain_reduction"),
                     "SAME - variant [95% CI]": interval_text(test.get("same_minus_ablation")),
                     "verdict (SAME against it)": test.get("verdict"),
                     "mean exit (clean)": e.get("mean_exit_layer_clean"),
                     "mean exit (adv)": e.get("mean_exit_layer_adv"), "success rate": s["success_rate"],
                     "accuracy (adv)": s["accuracy_after"], "perturbation rate": s["perturbation_rate_attacked"],
                     "similarity (USE)": interval_text((a.get("meaning") or {}).get("similarity")),
                     "label flips": interval_text((a.get("meaning") or {}).get("label_flip_rate")),
                     "queries / sentence": s["queries_per_example"], "seconds / sentence": s["seconds_per_example"]})
ablation_table = pd.DataFrame(rows)


def mean_reduction(variant):
    values = [num(v["ablations"][variant]["summary"]["efficiency_all"].get("efficiency_gain_reduction"))
              for v in V.values() if variant in v["ablations"]]
    values = [x for x in values if not math.isnan(x)]
    return float(sum(values) / len(values)) if values else float("nan")


glue("n_ablation", int(min(record["ablation_examples"], record["num_examples"])), display=False)
glue("quirks_reduction", mean_reduction("reference_quirks"), display=False)
glue("fixed_reduction", mean_reduction("same"), display=False)
ablation_table.round(3)

# %% tags=["hide-input"]
glue_figure("fig_same_ablations", plotting.fig_same_ablations(record))

# %% [markdown]
# :::{glue:figure} fig_same_ablations
# ---
# name: fig-same-ablations
# alt: >-
#   Two bar charts with error bars: efficiency-gain reduction and success rate of SAME and each
#   ablation, per victim.
# ---
#
# Efficiency-gain reduction (left) and success rate (right) of SAME and its ablations on the same
# sentences per victim; whiskers: 95% bootstrap intervals.
# :::

# %% [markdown]
# ## Held to meaning
#
# SAME's word swaps range over the whole vocabulary with no semantic constraint. Measured as
# chapter 3 measures its attacks, the texts of the main run keep a cosine similarity to their
# originals of {glue:text}`same_sim_ent` on the DeeBERT-style victim and {glue:text}`same_sim_pat` on
# the PABEE-style one (Universal Sentence Encoder port, over the changed sentences), and the
# served prediction flips on {glue:text}`same_flip_ent` and {glue:text}`same_flip_pat` of the
# attacked sentences (95% intervals): a slowdown attack that also flips labels this often is
# not only a slowdown attack. The **constrained** variant (not in the paper) lets a word become
# only one of its near neighbours among chapter 3's counter-fitted vectors (TextFooler's 50 at
# cosine >= 0.5, WordNet antonyms removed) and keeps the whole text's angular USE similarity to
# the original at {glue:text}`min_sim` or more, checked on the texts the beam keeps. On the
# ablation sentences it reaches a reduction of {glue:text}`cons_red_ent` and
# {glue:text}`cons_red_pat`, against SAME's {glue:text}`same_red_ent_n` and
# {glue:text}`same_red_pat_n` on the same sentences.

# %% tags=["hide-input"]
def meaning_of(entry, key):
    return interval_text((entry.get("meaning") or {}).get(key))


def reduction_of(entry):
    return interval_text((entry["summary"]["intervals"].get("all") or {}).get("efficiency_gain_reduction"))


for short, name in (("ent", "entropy"), ("pat", "patience")):
    v = V.get(name)
    glue(f"same_sim_{short}", meaning_of(v["main"], "similarity") if v else "n/a", display=False)
    glue(f"same_flip_{short}", meaning_of(v["main"], "label_flip_rate") if v else "n/a", display=False)
    glue(f"cons_red_{short}", reduction_of(v["ablations"]["constrained"])
         if v and "constrained" in v["ablations"] else "(not run)", display=False)
    glue(f"same_red_{short}_n", reduction_of(v["ablations"]["same"]) if v and v["ablations"] else "(not run)",
         display=False)
glue("min_sim", min_similarity, display=False)

# %% [markdown]
# ## The word budget
#
# SAME may change {glue:text}`budget_rule` of a sentence's words. The curve below runs it with at
# most 1, 2 and 3 words on the ablation sentences, beside its own budget: where the curve stays
# at its ceiling, the budget is not what limits the attack.

# %% tags=["hide-input"]
glue("budget_rule", f"max({min_words}, ceil({max_rate:g} x words))", display=False)
glue_figure("fig_same_budget_curve", plotting.fig_same_budget_curve(summary))

# %% [markdown]
# :::{glue:figure} fig_same_budget_curve
# ---
# name: fig-same-budget-curve
# alt: >-
#   A line plot with error bars per victim: SAME's efficiency-gain reduction at word budgets of
#   1, 2 and 3 words and at the paper's budget.
# ---
#
# SAME's efficiency-gain reduction against its word budget, on the ablation sentences of each
# victim; whiskers: 95% bootstrap intervals.
# :::

# %% [markdown]
# ## At the reference code's operating points
#
# Our victims run at the operating points chapter 1 chose on validation data; SAME's reference
# code runs its entropy victim at 0.19 nats and its patience victim at patience 4, where a
# victim exits later and saves less to begin with. SAME at those points, on the ablation
# sentences:

# %% tags=["hide-input"]
rows = []
for name, r in summary["reference_points"].items():
    rows.append({"victim": names.VICTIM_SHORT[name], "operating point": r["policy_value"],
                 "gain (clean)": r["efficiency_gain_clean"],
                 "gain reduction [95% CI]": interval_text(r["efficiency_gain_reduction"]),
                 "success rate": interval_text(r["success_rate"]), "similarity (USE)": interval_text(r["similarity"]),
                 "label flips": interval_text(r["label_flip_rate"]),
                 "ours: operating point": r["our_policy_value"], "ours: gain (clean)": r["ours_efficiency_gain_clean"],
                 "ours: gain reduction [95% CI]": interval_text(r["ours_efficiency_gain_reduction"])})
pd.DataFrame(rows).round(3) if rows else print("No reference operating point was run under this profile.")

# %% [markdown]
# ## WAFFLE beside SAME
#
# WAFFLE {cite:p}`coalson2023waffle` is the other published slowdown attack on multi-exit
# language models: it climbs a score of how undecided every exit is (the mean over exits of
# $1 - \lVert p_i - u \rVert_1 / (C - 1)$) with TextFooler's swaps (our counter-fitted vectors) and
# search, under SAME's word budget, on the same sentences and victims (the methods page lists
# where we had to choose). SAME's reduction minus WAFFLE's, paired on the sentences:
# {glue:text}`waffle_verdicts`.

# %% tags=["hide-input"]
rows = []
for name, w in summary["waffle"].items():
    same_row = summary[name]
    rows.append({"victim": names.VICTIM_SHORT[name], "attack": "WAFFLE",
                 "gain reduction [95% CI]": interval_text(w["efficiency_gain_reduction"]),
                 "efficacy (adv)": interval_text(w["efficacy_adv"]), "success rate": interval_text(w["success_rate"]),
                 "perturbation rate": interval_text(w["perturbation_rate"]),
                 "similarity (USE)": interval_text(w["similarity"]), "label flips": interval_text(w["label_flip_rate"]),
                 "queries / sentence": w["queries_per_example"], "seconds / sentence": w["seconds_per_example"]})
    ci = same_row["intervals"]
    rows.append({"victim": names.VICTIM_SHORT[name], "attack": "SAME",
                 "gain reduction [95% CI]": interval_text(ci["all"]["efficiency_gain_reduction"]),
                 "efficacy (adv)": interval_text(ci["all"]["efficacy_adv"]),
                 "success rate": interval_text(ci["success_rate"]),
                 "perturbation rate": interval_text(ci["perturbation_rate"]),
                 "similarity (USE)": interval_text(same_row["similarity"]),
                 "label flips": interval_text(same_row["label_flip_rate"]),
                 "queries / sentence": same_row["queries_per_example"],
                 "seconds / sentence": same_row["seconds_per_example"]})
glue("waffle_verdicts", "; ".join(f"{names.VICTIM_SHORT[n]}: {interval_text(w['same_minus_waffle'])} "
                                  f"({w['verdict'] or 'undefined'})" for n, w in summary["waffle"].items())
     or "(WAFFLE was not run)", display=False)
pd.DataFrame(rows).round(3) if rows else print("WAFFLE was not run under this profile.")

# %% [markdown]
# ## Transfer
#
# The sentences crafted against one victim, run through the other (white-box gradients of one
# model, evaluated on a model trained differently, with a different exit policy). The
# efficiency-gain reduction is on the target victim, over all the source's sentences.

# %% tags=["hide-input"]
rows = []
for key, t in (record.get("transfer") or {}).items():
    e = t["efficiency"]
    rows.append({"crafted on -> run on": names.victim_label(key),
                 "gain reduction on target": e.get("efficiency_gain_reduction"),
                 "[95% CI]": interval_text(summary["transfer"][key].get("interval")),
                 "verdict": summary["transfer"][key].get("verdict"),
                 "mean exit (clean)": e.get("mean_exit_layer_clean"), "mean exit (adv)": e.get("mean_exit_layer_adv"),
                 "accuracy (clean)": t["accuracy_before"], "accuracy (adv)": t["accuracy_after"],
                 "attacked sentences exiting at L on target": t["success_rate_on_target"]})
transfer_table = pd.DataFrame(rows) if rows else pd.DataFrame({"transfer": ["not run (needs both victims)"]})
transfer_table.round(3)

# %% [markdown]
# ## Slowdown attack against accuracy attacks (RQ2 against RQ1)
#
# Chapter 3's accuracy attacks beside SAME, on the same victims, operating points and
# sentences (read from chapter 3's cache): {glue:text}`rq1_status`. Chapter 3's answer to
# RQ1, by its Holm-corrected tests: {glue:text}`rq1_verdict` ({glue:text}`rq1_detail`).

# %% tags=["hide-input"]
accuracy_rows = accuracy_attack_rows(victim_profile)
glue("rq1_status", "chapter 3 has not run under this profile, so only SAME is shown" if accuracy_rows is None
     else f"{len(accuracy_rows)} (victim, recipe) results found", display=False)
rq1 = rq1_verdict(accuracy_rows or [])
glue("rq1_verdict", rq1["verdict"], display=False)
glue("rq1_detail", f"{rq1['significant']} of {rq1['pairs']} pairs significantly slower, "
     f"{rq1['pairs'] - rq1['tested']} undetermined", display=False)
rows = [{"victim": names.VICTIM_SHORT[n], "attack": "SAME", "goal": "slow down",
         "gain reduction": summary[n]["efficiency_gain_reduction"],
         "success rate": summary[n]["success_rate"], "accuracy after": summary[n]["accuracy_after"]} for n in V]
for r in accuracy_rows or []:
    rows.append({"victim": names.VICTIM_SHORT[r["victim"]], "attack": names.recipe_label(r["recipe"]),
                 "goal": "flip the answer", "gain reduction": r["efficiency_gain_reduction"],
                 "success rate": r["success_rate"], "accuracy after": r["accuracy_after"]})
display(pd.DataFrame(rows).round(3))
glue_figure("fig_same_vs_accuracy_attacks", plotting.fig_same_vs_accuracy_attacks(record, accuracy_rows))

# %% [markdown]
# :::{glue:figure} fig_same_vs_accuracy_attacks
# ---
# name: fig-same-vs-accuracy-attacks
# alt: >-
#   Bar chart with error bars: efficiency-gain reduction of SAME beside each accuracy attack of chapter
#   3, per victim.
# ---
#
# The slowdown attack against the accuracy attacks: efficiency-gain reduction of SAME (this chapter)
# and of each recipe of chapter 3 on the same sentences, with 95% intervals.
# :::

# %% [markdown]
# ## Our figures beside the paper's claim
#
# SAME reports that it diminishes the efficiency gain of multi-exit models by 80% on average.
# Our setting differs plainly: a 6-layer MiniLM sentence-embedding backbone (not 12-layer
# BERT-base, RoBERTa or ALBERT), Rotten Tomatoes test sentences (not the GLUE dev sets),
# operating points chosen on our validation split (not SAME's entropy 0.19 and patience 4 on
# SST-2), scikit-learn's stopword list (NLTK's cannot be fetched offline), one-letter
# fragments of the pre-tokenised text left untouched, our fixes of the reference code, and our
# reading of the efficiency-gain reduction (the paper's formula is unverified). By the rule of
# the methods page (the paper's figure against our 95% interval, within 5 points), SAME's
# 80% is **{glue:text}`claim_same_reduction`** here.

# %% tags=["hide-input"]
glued, claims, seeds = chapter_closing(profile, "same", summary)
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
# SAME takes away {glue:text}`mean_reduction:.2f` of the efficiency gain on average
# ({glue:text}`mean_reduction_ci`): {glue:text}`ent_reduction:.2f` for the DeeBERT-style victim
# and {glue:text}`pat_reduction:.2f` for the PABEE-style one, and the adversarial batches run
# {glue:text}`ent_slowdown:.2f`x and {glue:text}`pat_slowdown:.2f`x slower in wall-clock time. Of the
# published claims this chapter tests: {glue:text}`claims_tally`.

# %% tags=["remove-cell"]
glue("run_box", run_box("04_same", profile, params, computes=(
    "runs the SAME slowdown attack and its ablations against both victims and measures the "
    "efficiency-gain reduction"
)), display=False)
