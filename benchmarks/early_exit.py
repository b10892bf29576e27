"""Wall-clock of batched early exit against the layer speedup it promises.

Prints, measured in one run on the cached chapter-1 victim at its operating point:
the wall-clock speedup of batched early exit over running every layer (batch 64 by
default), the layer speedup L / mean exit layer, and their ratio (1.0 would mean that
dropping exited rows from the batch saves exactly the layers' share of time). Also
checks that paths (a) and (b) agree on every test example.

    .venv/bin/python benchmarks/early_exit.py --profile default --victim entropy

Needs chapter 1's cached result (``make book`` or ``costeff-same evaluate``).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from costeff_same.core.backbones import load_tokenizer
from costeff_same.core.exits import ExitPolicy, simulate_exits
from costeff_same.core.metrics import exit_stats, time_inference
from costeff_same.engine.results import is_cached
from costeff_same.engine.training import collect_exit_logits, set_threads
from costeff_same.evaluation import paths_agreement
from costeff_same.foundations.config import load_profile
from costeff_same.victims import multi_exit_config, run_multi_exit
from costeff_same.zoo import prepared_data, trained_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    parser.add_argument("--victim", default="entropy", choices=("entropy", "patience"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each path (the fastest counts)")
    args = parser.parse_args()
    set_threads()

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
    agreement = paths_agreement(model, test, policy, args.batch_size, (decision.exit_layer, decision.predictions))

    full, early = [], []
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both paths
        full.append(time_inference(model, test, args.batch_size, None)["seconds"])
        early.append(time_inference(model, test, args.batch_size, policy)["seconds"])
    wall = min(full) / min(early)
    print(f"victim {args.victim} ({args.victim} = {value:g}), {len(test)} test examples, batch {args.batch_size}")
    print(f"all layers:   {min(full):.3f} s   (runs: {', '.join(f'{t:.3f}' for t in full)})")
    print(f"early exit:   {min(early):.3f} s   (runs: {', '.join(f'{t:.3f}' for t in early)})")
    print(f"wall-clock speedup          {wall:.3f}x")
    print(f"layer speedup L/mean exit   {stats['speedup']:.3f}x  (mean exit layer {stats['mean_exit_layer']:.3f} "
          f"of {model.num_layers})")
    print(f"ratio wall-clock / layer    {wall / stats['speedup']:.3f}")
    print(f"paths (a) and (b) agree on  {agreement['exit_layer']:.1%} of exit layers, "
          f"{agreement['prediction']:.1%} of predictions")


if __name__ == "__main__":
    main()
