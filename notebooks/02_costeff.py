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
# # COST-EFF: slenderized multi-exit models

# %% [markdown]
# :::{glue:md} run_box
# :format: myst
# :::

# %% [markdown]
# COST-EFF {cite:p}`shen2022costeff` starts from an observation about small models: static
# compression leaves them redundant on easy inputs and too weak on hard ones, while early
# exit alone hurts them, because their shallow layers must both predict and extract features
# for the layers above. So COST-EFF **keeps the depth** (every layer, an exit after each) and
# **slenderizes the width**, and it calibrates the pruning with the loss of **every exit**.
# Its claim: a slenderized multi-exit BERT keeps about 96.5% of fine-tuned BERT-base's GLUE
# performance with 1/8 of the parameters and 1/19 of the FLOPs.
#
# The pipeline, re-derived from the paper (`costeff_same.compression`):
#
# 1. **teacher**: an ordinary fine-tuned single-exit model;
# 2. **teaching assistant (TA)**: a full-width multi-exit model (exit = parameter-free
#    $\tanh(h_{\mathrm{CLS}})$ + a linear classifier, gradient equilibrium) distilled from the teacher,
#    first on hidden states, then on predictions (every exit imitates the teacher's final
#    soft prediction, averaged with the hard-label loss);
# 3. **iterative slenderization** of a copy of the TA, the TA as frozen teacher: before each
#    event, first-order Taylor importance $\lvert \theta \sum \partial L / \partial \theta \rvert$
#    {cite:p}`molchanov2017pruning` under the all-exit
#    distillation loss scores every attention head and FFN neuron; the event removes the
#    lowest-scoring head of every layer, shrinks the FFN and the rank of the SVD-factorised
#    word embedding linearly toward the target, and the model trains again (first on hidden
#    states only, then on predictions + hidden states) with a fresh optimiser and a learning
#    rate raised by about 12% per event;
# 4. **recovery**: distillation from the TA, exit *i* to TA exit *i*, keeping the checkpoint
#    with the best mean validation score over all exits.
#
# Every number quoted in the prose below comes from the cached result of this run.

# %% tags=["remove-cell"]
from typing import Optional  # the annotations of the parameters below

# %% tags=["parameters", "remove-cell"]
profile: str = "default"  # parameter profile the run belongs to: smoke, default or paper
task: str = "rotten_tomatoes"  # task: rotten_tomatoes, imdb, a GLUE task (sst2, mrpc, ...) or local
train_file: Optional[str] = None  # task local: the training file (.csv, .tsv or .jsonl)
validation_file: Optional[str] = None  # task local: the validation file (None: cut from train_file)
test_file: Optional[str] = None  # task local: the test file (None: cut from train_file)
text_column: Optional[str] = None  # local files: the text column (None: GLUE's layouts recognised)
text_pair_column: Optional[str] = None  # local files: the second sentence's column (pair tasks)
label_column: Optional[str] = None  # local files: the label column
metric: Optional[str] = None  # task metric: accuracy, f1, matthews, pearson_spearman (None: the task's)
backbone: str = "minilm-l6"  # backbone: minilm-l6 (packaged), tiny-random, a local folder or a hub id
max_length: int = 64  # tokens per example; longer texts are truncated and counted
eval_file: Optional[str] = None  # evaluate (and attack) on this file instead of the test split
train_overlap: str = "drop"  # eval texts also in the training data: drop (default) or keep
seed: int = 0  # seeds the split, initialisation, data order, dropout and importance samples
train_size: Optional[int] = None  # subsample the training split to this many examples (None: all)
eval_size: Optional[int] = None  # subsample validation and test to this many examples each (None: all)
batch_size: int = 32  # examples per training step (teacher and every distillation stage)
teacher_epochs: int = 2  # teacher fine-tuning epochs (chapter 1 DeeBERT stage 1, so the same cached model)
teacher_exit_epochs: int = 2  # chapter 1's DeeBERT stage 2 (the teacher's own exits, shown for reference)
teacher_learning_rate: float = 5e-05  # teacher fine-tuning learning rate (as chapter 1)
teacher_exit_learning_rate: float = 0.0005  # chapter 1's DeeBERT stage-2 learning rate
exit_pooling: str = "mean"  # what every exit reads: cls (the paper) or mean (MiniLM is a mean-pooled encoder)
precision: str = "fp32"  # training forward passes (teacher as chapter 1, every stage): fp32 or bf16 autocast
ta_init: str = "teacher"  # TA starts from: teacher (its fine-tuned encoder) or backbone (pre-trained)
ta_representation_epochs: float = 0.0  # TA hidden-state-only distillation epochs
ta_prediction_epochs: float = 1.0  # TA prediction distillation epochs
ta_learning_rate: float = 0.0002  # TA (and depth-truncated baseline) learning rate
temperature: float = 1.0  # distillation temperature T (COST-EFF: 1)
hidden_weight: float = 1.0  # weight of the hidden-state MSE beside the prediction loss
precompute_teacher: bool = True  # precompute the frozen teacher's outputs on the training split (float16)
target_heads: int = 2  # attention heads kept per layer
target_ffn: int = 256  # FFN width kept per layer
target_embedding_rank: Optional[int] = 64  # rank of the factorised word embedding (None: keep it whole)
importance_examples: Optional[int] = 128  # training examples per importance pass (None: all, as the paper)
event_epochs: float = 0.1  # training epochs after each prune event
representation_fraction: float = 0.3  # first part of each period trained on hidden states only
slender_learning_rate: float = 0.0002  # learning rate of the first event and of recovery
lr_growth: float = 1.12  # learning rate multiplied by this after each event (COST-EFF: about 12%)
recovery_representation_epochs: float = 0.0  # recovery epochs on hidden states only
recovery_prediction_epochs: float = 1.0  # recovery epochs on predictions + hidden states
evaluations: int = 4  # validation checks during recovery (the best mean-exit checkpoint is kept)
static_heads: list[int] = [2, 1]  # static slender baselines (FFN and rank scale with the heads)
static_ffn_scales: list[float] = [1.0, 0.5]  # each static model's FFN at these fractions of its heads' share
depth_layers: list[int] = [1]  # depth-truncated baselines: the teacher's first k layers
depth_epochs: float = 1.0  # distillation epochs of each depth-truncated baseline
ablations: bool = True  # also run COST-EFF without TA and with final-exit-only importance
entropy_thresholds: list[float] = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65]  # sweep (nats)  # noqa: E501 (a long default)
tolerance: float = 0.01  # operating point: lose at most this much validation metric against the last exit
budget_tolerance: float = 0.1  # FLOPs match a budget when within this fraction of it

# %% tags=["hide-input"]
from costeff_same.notebooks import glue_figure, run_box, setup

setup()  # first: quiet progress bars and warnings before the libraries load


import pandas as pd
from IPython.display import display
from myst_nb import glue

from costeff_same import plotting
from costeff_same.chapters.costeff import COSTEFF_SCHEMA, costeff_config, costeff_summary, run_costeff
from costeff_same.foundations import names
from costeff_same.summary import chapter_closing
from costeff_same.verdicts import interval_text

params = COSTEFF_SCHEMA.from_namespace(globals())  # the profile's values, with explicit ones on top
globals().update(params)  # every cell below reads the run's values
config = costeff_config(**params)
record = run_costeff(config)  # cached: a second run only reads the result (each model's stages are cached too)
order = record["model_order"]  # the comparison's models, in display order
models = {name: record["models"][name] for name in order}
teacher, ta, costeff = models["teacher"], models["ta"], models["costeff"]
label = names.costeff_label
section = costeff_summary(record)  # the chapter's figures with their 95% intervals and paired tests
print(f"profile {profile}: task {record['task']}, backbone {record['backbone']}, config {config.config_hash()}")
print("examples:", record["examples"], "truncated:", record["truncated"])

# %% [markdown]
# ## The models
#
# Every model is trained on the same training split, from the same teacher, and judged on
# the same test split ({glue:text}`n_test` sentences; the validation split chooses every
# threshold). The **teacher** ({glue:text}`backbone_name`, {glue:text}`teacher_layers` layers,
# {glue:text}`teacher_params:.1f` M parameters of which {glue:text}`embedding_share_pct:.0f`%
# are the word embedding) is chapter 1's DeeBERT-style model: its backbone and last exit
# are an ordinary fine-tuned model (its intermediate exits were trained afterwards on the
# frozen backbone and only appear here as a full-width early-exit reference). The
# comparison holds COST-EFF ({glue:text}`target_shape`) against:
#
# - the **TA** it is slenderized from (full width, every exit trained);
# - **static slender** models of the same and of narrower shapes (fewer heads, and each at
#   {glue:text}`ffn_scales_text` of its FFN, so that COST-EFF meets them at more FLOPs budgets), pruned by the same
#   iterative schedule and distilled from the teacher, but trained **without exits** (only
#   the last exit has a loss; importance from the last exit);
# - **depth-truncated** models: the teacher's first *k* layers, distilled from it;
# - two **ablations**: COST-EFF without the TA (the teacher's encoder with fresh exits is
#   slenderized directly and every exit learns from the teacher's final prediction), and
#   COST-EFF whose importance scores use the last exit's loss only.
#
# Every exit here reads {glue:text}`pooling_text` (chapter 1 explains why MiniLM, a
# mean-pooled sentence encoder, needs the mean); COST-EFF's exit is otherwise the paper's:
# a parameter-free `tanh` of the pooled state, dropout and one linear layer.
#
# Parameters are counted with and without the embedding layer; "deployed" leaves out the
# exits a static model never uses, and the teacher is compared as the single-exit model it
# is (its DeeBERT exits 1 to L-1, trained afterwards, are left out of its count). FLOPs are
# measured per example with `torch.utils.flop_counter` at batch 1 (a multiply-add counts 2),
# each test sentence at its own length, running every layer. On CPU, PyTorch's fused attention kernel is not counted
# by the flop counter, so the attention-score products (about 2% of a MiniLM layer at our
# sentence lengths, and shrinking with the heads) are missing from every model alike.
# Training every model but the (shared) teacher took {glue:text}`train_minutes:.1f` minutes of
# one-thread compute in the run shown here; independent models train side by side, one
# thread each, in {glue:text}`workers` processes, so the training took
# {glue:text}`wall_minutes:.1f` minutes of wall-clock time, from the first model's start to
# the last one's end (their cache entries record both, whichever run trained them). One
# thread per model also makes every number in this chapter independent of
# the machine's core count: a model trained on two threads differs from the same model
# trained on one in the last bits of every reduction, and after hundreds of steps in its
# accuracy.
#
# **Gradient equilibrium** {cite:p}`li2019improved`, used by ElasticBERT
# {cite:p}`liu2022elasticbert` and COST-EFF, gives layer $i$, whose output feeds $L-i$ exits,
# the *mean* of their gradients, so that every exit weighs $1/(L-i)$ there (the methods page;
# the {doc}`history` tells what an inverted reading of it did to this chapter).

# %% tags=["hide-input"]
glue("n_test", record["examples"]["test"], display=False)
glue("ffn_scales_text", " and ".join(f"{f:.0%}" for f in static_ffn_scales), display=False)
glue("backbone_name", record["backbone"], display=False)
glue("pooling_text", "the [CLS] state, as in the paper" if exit_pooling == "cls"
     else "the attention-masked mean of the token states instead of the paper's [CLS] state", display=False)
glue("teacher_layers", teacher["num_layers"], display=False)
glue("teacher_params", teacher["parameters"] / 1e6, display=False)
embedding_share = 1 - teacher["parameters_without_embeddings"] / teacher["parameters"]
glue("embedding_share_pct", 100 * embedding_share, display=False)
glue("target_shape", f"{target_heads} heads per layer, FFN {target_ffn}, embedding rank {target_embedding_rank}",
     display=False)
rows = []
for name, m in models.items():
    stages = record["stages"][name]
    seconds = (stages.get("seconds") or 0) + (stages.get("slenderize", {}).get("seconds") or 0)
    rows.append({"model": label(name), "layers": m["num_layers"], "heads/layer": m["shape"]["heads"][0],
                 "FFN": m["shape"]["ffn"][0], "embedding rank": m["shape"]["embedding_rank"] or "whole",
                 "parameters (M)": m["parameters"] / 1e6,
                 "without embeddings (M)": m["parameters_without_embeddings"] / 1e6,
                 "deployed (M)": (m["single_exit_parameters"] if name == "teacher" else m["deployed_parameters"]) / 1e6,
                 "MFLOPs/example": m["flops_per_example"] / 1e6,
                 f"last-exit test {record['metric']}": m["final_exit_metric"],
                 "training seconds": seconds if name != "teacher" else float("nan")})
overview = pd.DataFrame(rows).set_index("model")
glue("train_minutes", float(overview["training seconds"].sum()) / 60, display=False)
glue("wall_minutes", record["training"]["wall_seconds"] / 60, display=False)
glue("workers", record["training"]["workers"], display=False)
overview.round(3)

# %% [markdown]
# ## The pruning schedule
#
# From the TA's {glue:text}`start_heads` heads per layer to {glue:text}`end_heads`, COST-EFF
# takes {glue:text}`n_events` prune events, one head per layer each; the FFN shrinks from
# {glue:text}`start_ffn` to {glue:text}`end_ffn` and the embedding is factorised down to rank
# {glue:text}`end_rank` along the way. Each event scores heads and neurons on
# {glue:text}`importance_examples_text` training sentences, then trains for
# {glue:text}`event_steps` steps. The TA has {glue:text}`ta_params:.2f` M parameters;
# after the last event the model has {glue:text}`end_params:.2f` M
# ({glue:text}`end_params_noemb:.2f` M without embeddings).

# %% tags=["hide-input"]
slender = record["stages"]["costeff"]["slenderize"]
ends = [h for h in slender["history"] if h.get("event") == "segment_end"]
glue("start_heads", slender["start_shape"]["heads"][0], display=False)
glue("end_heads", slender["shape"]["heads"][0], display=False)
glue("n_events", slender["events"], display=False)
glue("start_ffn", slender["start_shape"]["ffn"][0], display=False)
glue("end_ffn", slender["shape"]["ffn"][0], display=False)
glue("end_rank", slender["shape"]["embedding_rank"], display=False)
glue("importance_examples_text", "all" if importance_examples is None else str(importance_examples), display=False)
glue("event_steps", slender["steps_per_event"], display=False)
glue("ta_params", ta["parameters"] / 1e6, display=False)
glue("end_params", ends[-1]["parameters"] / 1e6 if ends else costeff["parameters"] / 1e6, display=False)
glue("end_params_noemb", (ends[-1]["parameters_without_embeddings"] if ends
                          else costeff["parameters_without_embeddings"]) / 1e6, display=False)
schedule = pd.DataFrame([{"event": i + 1, "heads/layer": s["heads"][0], "FFN": s["ffn"][0],
                          "embedding rank": s["embedding_rank"] or "whole",
                          "parameters (M)": e["parameters"] / 1e6,
                          "validation mean over exits": sum(e["dev_per_exit"]) / len(e["dev_per_exit"]),
                          "validation last exit": e["dev_per_exit"][-1]}
                         for i, (s, e) in enumerate(zip(slender["schedule"], ends))]).set_index("event")
display(schedule.round(3))
glue_figure("fig_costeff_schedule", plotting.fig_costeff_schedule(record))

# %% [markdown]
# :::{glue:figure} fig_costeff_schedule
# ---
# name: fig-costeff-schedule
# alt: >-
#   Two line plots over prune events: parameters in millions falling, and validation accuracy (mean over
#   exits and last exit) after each event.
# ---
#
# COST-EFF's iterative slenderization: the model's parameters (left) and its validation accuracy
# (right) after each prune event's training, from the teaching assistant (event 0) to the target
# shape.
# :::

# %% [markdown]
# ## Per-exit accuracy of the slender model
#
# After recovery the COST-EFF model's last exit reaches {glue:text}`costeff_final_ci` test
# accuracy, against {glue:text}`ta_final_ci` for the TA it was cut from and
# {glue:text}`teacher_final_ci` for the fine-tuned teacher: a retention of
# {glue:text}`retention_ci` of the teacher's accuracy (paired bootstrap over the same test
# sentences; at COST-EFF's early-exit operating point {glue:text}`retention_op_ci`) with
# {glue:text}`param_fraction_pct:.1f`% of its parameters ({glue:text}`param_fraction_noemb_pct:.1f`%
# without embeddings) and {glue:text}`flops_fraction_pct:.1f`% of its FLOPs per example.
# Recovery kept the checkpoint of step {glue:text}`best_step` (validation mean over exits
# {glue:text}`best_score:.3f`).

# %% tags=["hide-input"]
glue("costeff_final", costeff["final_exit_metric"], display=False)
glue("ta_final", ta["final_exit_metric"], display=False)
glue("teacher_final", teacher["final_exit_metric"], display=False)
glue("retention_pct", 100 * record["retention"], display=False)
for key, name in (("costeff_final_ci", "costeff_final_exit_accuracy"), ("ta_final_ci", "ta_accuracy"),
                  ("teacher_final_ci", "teacher_accuracy")):
    glue(key, interval_text(section["intervals"][name]), display=False)
glue("retention_ci", interval_text(section["intervals"]["retention"], percent=True), display=False)
glue("retention_op_ci", interval_text(section["intervals"]["retention_operating_point"], percent=True),
     display=False)
glue("param_fraction_pct", 100 * record["parameter_fraction"], display=False)
glue("param_fraction_noemb_pct", 100 * record["parameter_fraction_without_embeddings"], display=False)
glue("flops_fraction_pct", 100 * record["flops_fraction"], display=False)
best = record["stages"]["costeff"]["best"] or {"step": "(last)", "score": float("nan")}
glue("best_step", best["step"], display=False)
glue("best_score", best["score"], display=False)
per_exit = pd.DataFrame({label(n): models[n]["per_exit_test"] for n in
                         ("teacher", "ta", "costeff", "no_ta", "final_importance") if n in models},
                        index=pd.RangeIndex(1, costeff["num_layers"] + 1, name="exit layer"))
display(per_exit.round(3))
glue_figure("fig_costeff_per_exit", plotting.fig_costeff_per_exit(record))

# %% [markdown]
# :::{glue:figure} fig_costeff_per_exit
# ---
# name: fig-costeff-per-exit
# alt: >-
#   Line plot: test accuracy at each exit layer for COST-EFF, its teaching assistant, its ablations and
#   the teacher's exits.
# ---
#
# Test accuracy of every exit of the slender COST-EFF model, the full-width teaching assistant it was
# cut from, the two ablations and the teacher's DeeBERT exits.
# :::

# %% [markdown]
# ## Accuracy against FLOPs
#
# Each multi-exit model runs the entropy policy at every threshold of the sweep (exit at the
# first layer whose softmax entropy is below the threshold); each point is the test accuracy
# against the measured FLOPs per example at that threshold. Static models are single
# points. The stars are the operating points chosen on validation (the fastest threshold
# within {glue:text}`tolerance_points` point(s) of the model's last exit).

# %% tags=["hide-input"]
glue("tolerance_points", round(100 * tolerance, 2), display=False)
glue_figure("fig_costeff_tradeoff", plotting.fig_costeff_tradeoff(record))

# %% [markdown]
# :::{glue:figure} fig_costeff_tradeoff
# ---
# name: fig-costeff-tradeoff
# alt: >-
#   Scatter plot on a log FLOPs axis: test accuracy against measured MFLOPs per example; lines for the
#   multi-exit models' entropy sweeps, points with error bars for the static models.
# ---
#
# Accuracy against measured FLOPs per example (log scale): each multi-exit model over its
# entropy-threshold sweep (stars: operating points), each static model as one point with its 95%
# interval.
# :::

# %% tags=["hide-input"]
ops = pd.DataFrame([{"model": label(n), "threshold": m["operating_point"]["threshold"],
                     f"validation {record['metric']}": m["operating_point"]["validation_metric"],
                     f"test {record['metric']}": m["operating_point"]["metric"],
                     "mean exit layer": m["operating_point"]["mean_exit_layer"],
                     "MFLOPs/example": m["operating_point"]["flops_per_example"] / 1e6,
                     "share of teacher's FLOPs": (m["operating_point"]["flops_per_example"]
                                                  / teacher["flops_per_example"])}
                    for n, m in models.items()]).set_index("model")
ops.round(3)

# %% [markdown]
# ## At matched FLOPs
#
# For each static model (a budget), every multi-exit model takes the threshold with the best
# *validation* accuracy among those whose FLOPs per example on the test sentences lie within
# {glue:text}`budget_pct`% of the static model's (FLOPs need no labels); the table gives its
# *test* accuracy and FLOPs. An empty cell means the model cannot spend that budget (its
# whole depth is cheaper, or its first exit dearer). Each of COST-EFF's matches is a paired
# comparison on the same test sentences: the 95% paired-bootstrap interval of its accuracy
# minus the static model's, and an exact McNemar test, Holm-corrected over the budgets. By
# the rule of the methods page COST-EFF beats the static model at {glue:text}`n_beats` of
# the {glue:text}`n_matched` budgets it can match, is within noise at
# {glue:text}`n_noise` and worse at {glue:text}`n_worse` ({glue:text}`verdicts_text`).

# %% tags=["hide-input"]
glue("budget_pct", round(100 * budget_tolerance), display=False)
rows, wins, matched_budgets = [], [], 0
for c in record["comparisons"]:
    row = {"budget (static model)": label(c["baseline"]), "MFLOPs/example": c["baseline_flops_per_example"] / 1e6,
           f"static {record['metric']}": c["baseline_metric"]}
    for n, match in c["matches"].items():
        if any(other["matches"].get(n) for other in record["comparisons"]):  # models that can match a budget
            row[label(n)] = float("nan") if match is None else match["metric"]
    costeff_match = next(b["costeff"] for b in section["matched_budgets"] if b["baseline"] == c["baseline"])
    if costeff_match is not None:
        matched_budgets += 1
        row["COST-EFF threshold"] = costeff_match["threshold"]
        row["COST-EFF MFLOPs/example"] = costeff_match["flops_per_example"] / 1e6
        row["COST-EFF - static [95% CI]"] = interval_text(costeff_match.get("difference"))
        row["McNemar p (Holm)"] = costeff_match.get("p_holm")
        row["verdict"] = costeff_match.get("verdict")
        wins.append(f"{label(c['baseline'])}: {costeff_match.get('verdict')}")
    rows.append(row)
found = [b["costeff"]["verdict"] for b in section["matched_budgets"] if b["costeff"]]
for key, verdict in (("n_beats", "beats"), ("n_noise", "within noise"), ("n_worse", "worse")):
    glue(key, sum(v == verdict for v in found), display=False)
glue("n_matched", matched_budgets, display=False)
glue("verdicts_text", "; ".join(wins) if wins else "no budget matched", display=False)
pd.DataFrame(rows).set_index("budget (static model)").round(3)

# %% [markdown]
# ## Ablations
#
# Without the TA, the slender model's last exit reaches {glue:text}`no_ta_final:.3f` (mean
# over exits {glue:text}`no_ta_mean:.3f`); with importance from the last exit only,
# {glue:text}`final_imp_final:.3f` (mean over exits {glue:text}`final_imp_mean:.3f`). COST-EFF
# itself: {glue:text}`costeff_final:.3f` (mean over exits {glue:text}`costeff_mean:.3f`).
# Paired on the same {glue:text}`n_test` test sentences (exact McNemar, paired-bootstrap
# interval of the difference), COST-EFF against no TA: {glue:text}`no_ta_verdict`
# ({glue:text}`no_ta_diff`); against last-exit importance: {glue:text}`final_imp_verdict`
# ({glue:text}`final_imp_diff`).

# %% tags=["remove-cell"]
nan = float("nan")
for key, name in (("no_ta", "no_ta"), ("final_imp", "final_importance"), ("costeff", "costeff")):
    m = models.get(name)
    if name != "costeff":  # COST-EFF's last exit is glued above
        glue(f"{key}_final", m["final_exit_metric"] if m else nan, display=False)
    glue(f"{key}_mean", sum(m["per_exit_test"]) / len(m["per_exit_test"]) if m else nan, display=False)
    if name != "costeff":
        test = section["ablation_tests"].get(name)
        glue(f"{key}_verdict", test["verdict"] if test else "not run", display=False)
        glue(f"{key}_diff", interval_text(test["difference"]) if test else "n/a", display=False)

# %% [markdown]
# ## Our figures beside the paper's claim
#
# COST-EFF reports about 96.5% of fine-tuned BERT-base's GLUE performance with 1/8 of its
# parameters and 1/19 of its FLOPs. Our setting differs in every dimension that matters for
# the size of these numbers: the backbone is {glue:text}`backbone_name` ({glue:text}`teacher_layers`
# layers, {glue:text}`teacher_params:.1f` M parameters, {glue:text}`embedding_share_pct:.0f`% of
# them the word embedding; under the default profile the 6-layer MiniLM sentence-embedding
# model, not the 12-layer BERT-base with 109.5 M); the task is {glue:text}`task_name`, not GLUE;
# each stage trains for two epochs or less on a 2-core CPU, and importance is estimated
# on {glue:text}`importance_examples_text` training sentences per event rather than a full pass;
# exits read {glue:text}`pooling_text`; and {glue:text}`ta_init_text`. FLOPs fractions are of
# the teacher running all its layers. Each verdict comes from the rule of the methods page.

# %% tags=["hide-input"]
glue("task_name", record["task"], display=False)
glue("ta_init_text", "our TA starts from the fine-tuned teacher's encoder (so a representation stage would start "
     "at zero loss and is shortened or skipped) rather than from the pre-trained model" if ta_init == "teacher"
     else "our TA starts, like the paper's, from the pre-trained backbone", display=False)
glued, claims, seeds = chapter_closing(profile, "costeff", section)
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
# COST-EFF's slender model keeps {glue:text}`retention_pct:.1f`% of its teacher's accuracy
# ({glue:text}`retention_ci`) with {glue:text}`param_fraction_pct:.1f`% of its parameters and
# {glue:text}`flops_fraction_pct:.1f`% of its FLOPs at the last exit; at matched FLOPs against
# the static baselines: {glue:text}`verdicts_text`. Of the published claims this chapter tests:
# {glue:text}`claims_tally`.

# %% tags=["remove-cell"]
glue("run_box", run_box("02_costeff", profile, params, computes=(
    "distils and slenderizes COST-EFF and its baselines (teaching assistant, static slender, "
    "depth-truncated, two ablations) and compares them at matched FLOPs"
)), display=False)
