"""COST-EFF (Shen et al., EMNLP 2022): slenderized multi-exit models (Shen et al., 2022; the book's methods page).

- :mod:`~costeff_same.compression.importance`: first-order Taylor importance of heads and
  FFN neurons under the all-exit distillation loss;
- :mod:`~costeff_same.compression.slenderize`: pure model -> model pruning of heads and
  neurons, SVD factorisation of the word embedding, the iterative schedule, depth truncation;
- :mod:`~costeff_same.compression.distill`: prediction and hidden-state distillation losses
  and the exit mappings;
- :mod:`~costeff_same.compression.pipeline`: teacher -> teaching assistant -> iterative
  slenderization -> recovery, each stage cached and resumable, and the baselines;
- :mod:`~costeff_same.compression.experiment`: chapter 2's comparison at matched FLOPs (its
  config, its cached run), which chapter 2 presents and chapter 5 attacks.
"""
