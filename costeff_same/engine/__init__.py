"""Layer 3, engine: the one trainer, resumable checkpoints that cannot run code, the
results cache (keyed by config, data content and code) and the stage graph."""
