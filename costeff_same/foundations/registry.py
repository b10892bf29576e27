"""The registries of names the configs accept: tasks, backbones, exit styles, poolings,
exit policies, training regimes, task metrics and attack recipes.

They live here, below every module that implements them, so that a config can check a
name without importing the implementation (the import graph points one way). The
implementing modules import their names from here; a test checks that each registry
matches its implementation.
"""

from __future__ import annotations

#: tasks shipped in a PyPI wheel (no network)
PACKAGED_TASKS = ("rotten_tomatoes", "imdb")
#: GLUE tasks, loaded from the hub for online users (:data:`costeff_same.core.data.GLUE_TASKS`)
GLUE_TASK_NAMES = ("sst2", "cola", "mrpc", "rte", "qnli", "qqp", "mnli", "stsb")
TASKS = (*PACKAGED_TASKS, *GLUE_TASK_NAMES, "local")

#: backbones built without the hub (any hub id or local folder is accepted too)
PACKAGED_BACKBONES = ("minilm-l6", "tiny-random")

#: exit heads: DeeBERT (pooler + classifier), PABEE (classifier), COST-EFF (tanh(h_CLS) + classifier)
EXIT_STYLES = ("deebert", "pabee", "costeff")
#: what an exit reads: the [CLS] state (the papers) or the masked mean of the token states
EXIT_POOLINGS = ("cls", "mean")
#: exit policies: entropy threshold (DeeBERT), patience (PABEE), max-probability
POLICIES = ("entropy", "patience", "maxprob")
#: multi-exit fine-tuning regimes
REGIMES = ("joint", "weighted", "two_stage")
#: training precisions: float32 throughout, or bfloat16 autocast of the forward pass (fp32 weights)
PRECISIONS = ("fp32", "bf16")
#: task metrics
TASK_METRICS = ("accuracy", "f1", "matthews", "pearson_spearman")

#: the two victims of the book: DeeBERT-style (entropy exit) and PABEE-style (patience exit)
VICTIMS = ("entropy", "patience")

#: accuracy-attack recipes (their modules: :data:`costeff_same.attacks.RECIPES`)
RECIPES = ("pwws", "textfooler", "deepwordbug")
