"""costeff_same: a reproducible companion to COST-EFF (Shen et al., EMNLP 2022) and
SAME (Chen et al., ACL 2023).

Modules, one concept each: ``config`` (typed stage configs), ``data`` (task registry),
``backbones`` (pretrained encoders), ``modeling`` (multi-exit BERT), ``exits`` (exit
policies and batched early exit), ``training`` (multi-exit fine-tuning regimes),
``metrics``, ``results`` (the keyed cache), ``experiments`` (run_* functions),
``plotting`` and ``cli``.
"""

__version__ = "0.1.0"
