"""Layer 2, model and data: tasks and encodings, backbones, the multi-exit BERT, exit
policies and batched early exit, task metrics, efficiency statistics and FLOPs.
Imports only :mod:`costeff_same.foundations`."""
