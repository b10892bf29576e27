"""costeff_same: a reproducible companion to COST-EFF (Shen et al., EMNLP 2022) and
SAME (Chen et al., ACL 2023).

The package is layered; each layer imports only from the layers below it (an
import-linter contract in ``pyproject.toml``, run by the tests):

1. ``foundations``: paths, sha256 integrity, hub reachability, the registries of names,
   typed stage configs, the chapters' parameter schemas and the shared record types;
2. ``core``: tasks and encodings, backbones, the multi-exit BERT, exit policies and
   batched early exit, task metrics, efficiency statistics and FLOPs;
3. ``engine``: the one trainer, fine-tuning regimes, safe checkpoints, the results cache
   (keyed by config, data and code) and the stage graph;
4. methods: ``compression`` (COST-EFF), ``attacks`` (framework, recipes, attack units),
   ``victims`` (chapter 1's victims at their operating points), ``zoo`` (trained models),
   ``evaluation`` and ``selection`` (sweeps, operating points, matched FLOPs);
5. ``chapters``: one module per book chapter, never importing each other;
6. interfaces: ``summary``, ``cli``, ``notebooks``, ``parameters``, ``plotting``.

The book's methods page explains every method with its equations and its paper.
"""

__version__ = "0.1.0"
