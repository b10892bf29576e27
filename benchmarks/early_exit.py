"""Wall-clock of batched early exit against the layer speedup it promises.

Prints, measured in one run on the cached chapter-1 victim at its operating point, for
each batch size: the wall-clock speedup of batched early exit over running every layer,
the layer speedup L / mean exit layer, and their ratio (1.0 would mean that dropping
exited rows from the batch saves exactly the layers' share of time). The two paths are
timed in alternation, ``--runs`` times each, so a load that comes and goes hits both;
the ratio is given as the median over the runs with its spread (min-max), beside the
ratio of the fastest runs. Also checks that paths (a) and (b) agree on every test example.

The layer speedup counts layers, not work: a layer over a batch costs in proportion to its
rows times its padded length, and on these sentences the longer ones exit later. The
``token limit`` column is that count, ``sum(batch rows x padded length x layers)`` of the
full pass over the same sum for the rows still running at each layer (padding trimmed as
path (b) trims it), divided by the layer speedup: the ratio a perfect path (b) would reach
on these batches.

    .venv/bin/python benchmarks/early_exit.py --profile default --victim entropy

Needs chapter 1's cached result (``make book`` or ``costeff-same evaluate``).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.exits import ExitPolicy, simulate_exits
from costeff_same.core.metrics import exit_stats, time_inference
from costeff_same.engine.results import is_cached
from costeff_same.engine.threads import TASK_THREADS
from costeff_same.engine.training import collect_exit_logits
from costeff_same.evaluation import paths_agreement
from costeff_same.foundations.config import load_profile
from costeff_same.victims import multi_exit_config, run_multi_exit
from costeff_same.zoo import prepared_data, trained_model


def token_limit(lengths: np.ndarray, exit_layer: np.ndarray, depth: int, batches) -> float:
    """Work of the full pass over the work of batched early exit, in (row x padded token x layer)
    units, for batches of example indices in the order they are served."""
    full = early = 0
    for idx in batches:
        idx = np.asarray(idx)
        length, layers = lengths[idx], exit_layer[idx]
        full += depth * len(idx) * int(length.max())
        for k in range(1, depth + 1):
            alive = layers >= k
            if alive.any():
                early += int(alive.sum()) * int(length[alive].max())
    return full / early


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    parser.add_argument("--victim", default="entropy", choices=("entropy", "patience"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 64, 256])
    parser.add_argument("--runs", type=int, default=9, help="timed passes of each path, interleaved (>= 1)")
    parser.add_argument("--limit", type=int, default=None,
                        help="time only the first LIMIT test examples in length order (default: all)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs {args.runs} must be >= 1")
    torch.set_num_threads(TASK_THREADS)  # as every stage runs

    cfg = multi_exit_config(**load_profile(args.profile)["01_multi_exit"])
    if not is_cached("multi_exit", cfg):
        raise SystemExit(f"chapter 1 has not run under profile {args.profile!r}: run `make book` "
                         f"or `.venv/bin/costeff-same evaluate --profile {args.profile}` first")
    record = run_multi_exit(cfg)
    value = record["victims"][args.victim]["operating_point"]["value"]
    policy = ExitPolicy(args.victim, value)
    model, _ = trained_model(cfg.victim(args.victim))
    _, data = prepared_data(cfg.data, load_tokenizer(cfg.entropy_model.backbone))
    test = data["test"]

    decision = simulate_exits(collect_exit_logits(model, test), policy)
    stats = exit_stats(decision.exit_layer, model.num_layers)
    layer = stats["speedup"]
    print(f"victim {args.victim} ({args.victim} = {value:g}), {len(test)} test examples, {args.runs} interleaved "
          f"runs of each path; layer speedup L/mean exit {layer:.3f}x (mean exit layer "
          f"{stats['mean_exit_layer']:.3f} of {model.num_layers})")
    print(f"{'batch':>5}  {'all layers s':>12}  {'early exit s':>12}  {'wall-clock':>10}  "
          f"{'ratio median':>12}  {'ratio min-max':>13}  {'ratio fastest':>13}  {'token limit':>11}  agree")
    for batch_size in args.batch_sizes:
        agreement = paths_agreement(model, test, policy, batch_size, (decision.exit_layer, decision.predictions))
        full, early = [], []
        for _ in range(args.runs):
            full.append(time_inference(model, test, batch_size, None, limit=args.limit)["seconds"])
            early.append(time_inference(model, test, batch_size, policy, limit=args.limit)["seconds"])
        full, early = np.array(full), np.array(early)
        ratios = full / early / layer
        served = [idx for idx, _ in test.eval_batches(batch_size)]
        if args.limit is not None:
            served = served[: max(1, (args.limit + batch_size - 1) // batch_size)]
        limit = token_limit(test.lengths, decision.exit_layer, model.num_layers, served) / layer
        print(f"{batch_size:>5}  {np.median(full):>12.3f}  {np.median(early):>12.3f}  "
              f"{np.median(full / early):>9.3f}x  {np.median(ratios):>12.3f}  "
              f"{ratios.min():>6.3f}-{ratios.max():.3f}  {full.min() / early.min() / layer:>13.3f}  {limit:>11.3f}  "
              f"{agreement['exit_layer']:.1%}, {agreement['prediction']:.1%}")
    print("ratio = (all-layers seconds / early-exit seconds) / layer speedup, per pair of interleaved runs; "
          "token limit = the ratio a perfect early exit reaches on these batches (module docstring); "
          "agree = share of test examples on which paths (a) and (b) give the same exit layer, and the same "
          "prediction")


if __name__ == "__main__":
    main()
