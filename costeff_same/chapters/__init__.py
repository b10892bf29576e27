"""Layer 5, chapters: one module per book chapter (its config builder, ``run_*``, record
and summary section). Chapters never import each other: a later chapter reads an earlier
chapter's results through :mod:`costeff_same.zoo` and the results cache."""
