"""SAME's candidate scoring: batched early exit against a full forward per candidate.

The SAME reference code scores every candidate with a forward through all layers; our
attack scores them with batched early exit (:func:`costeff_same.core.exits.early_exit_forward`:
rows leave the batch at their exit). This replays the texts that a default SAME run sent
to the model (stored by chapter 4's main unit of each victim in
``results/same_attack-<hash>/work/candidates.jsonl.gz``, in the same batches), and prints,
measured in one run:

- the wall-clock of scoring them with a full forward (every layer and exit, then the exit
  decision simulated, as the reference does) and with batched early exit, timed in
  alternation chunk by chunk (``--chunk`` batches of one path, then the same batches of
  the other, the order swapped each chunk), so a load that starts midway hits both;
- the median and the spread (min-max) of the per-chunk ratios beside the ratio of the sums;
- their ratio beside its limit ``L / mean exit layer`` of those candidates (dropping exited
  rows can save at most the layers they skip), and the ratio as a fraction of the limit;
- whether the two paths give identical exit layers on every candidate.

    .venv/bin/python benchmarks/same_scoring.py --profile default

Needs chapter 1's cached victims; runs (or reads) chapter 4's main SAME unit of each victim.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np
import torch

from costeff_same.attacks.same_units import run_same_unit, stored_candidates
from costeff_same.attacks.units import load_victim
from costeff_same.chapters.same import same_config
from costeff_same.core.exits import early_exit_forward, simulate_exits
from costeff_same.engine.results import is_cached
from costeff_same.engine.threads import TASK_THREADS
from costeff_same.foundations.config import load_profile
from costeff_same.victims import run_multi_exit


def batches_of(victim, calls: list[list[str]], batch_size: int) -> list[dict]:
    """Tokenised batches exactly as the victim formed them: per call, sorted by length, ``batch_size`` a batch."""
    out = []
    for texts in calls:
        encoded = victim.tokenizer(texts, truncation=True, max_length=victim.max_length)["input_ids"]
        lengths = [len(ids) for ids in encoded]
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), batch_size):
            out.append(dict(victim.encode([texts[i] for i in order[start:start + batch_size]])))
    return out


@torch.inference_mode()
def full_pass(model, policy, batches) -> tuple[float, np.ndarray]:
    """Seconds and exit layers of scoring every batch with a forward through all layers."""
    layers = []
    start = time.perf_counter()
    for b in batches:
        layers.append(simulate_exits(model(**b).exit_logits, policy).exit_layer)
    return time.perf_counter() - start, np.concatenate(layers)


@torch.inference_mode()
def early_pass(model, policy, batches) -> tuple[float, np.ndarray]:
    """Seconds and exit layers of scoring every batch with batched early exit."""
    layers = []
    start = time.perf_counter()
    for b in batches:
        out = early_exit_forward(model, b["input_ids"], b["attention_mask"], policy, b.get("token_type_ids"))
        layers.append(out.exit_layer.numpy())
    return time.perf_counter() - start, np.concatenate(layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    parser.add_argument("--victim", choices=("entropy", "patience"), help="only this victim (default: both)")
    parser.add_argument("--chunk", type=int, default=20, help="batches timed on one path before switching (>= 1)")
    parser.add_argument("--max-texts", type=int, default=None, help="replay only the first this many texts")
    args = parser.parse_args()
    if args.chunk < 1:
        parser.error(f"--chunk {args.chunk} must be >= 1")
    torch.set_num_threads(TASK_THREADS)  # as every stage runs

    cfg = same_config(**load_profile(args.profile)["04_same"])
    if not is_cached("multi_exit", cfg.multi_exit):
        raise SystemExit(f"chapter 1 is not cached under profile {args.profile}: run "
                         f"`costeff-same evaluate --profile {args.profile}` first")
    chapter1 = run_multi_exit(cfg.multi_exit)
    print(f"profile {args.profile}: {chapter1['backbone']}, {chapter1['task']}, {chapter1['num_layers']} layers; "
          f"torch threads {torch.get_num_threads()}")
    for name in [args.victim] if args.victim else cfg.victims:
        value = chapter1["victims"][name]["operating_point"]["value"]
        unit_cfg = cfg.unit(name, value)
        record = run_same_unit(unit_cfg)  # the default SAME run (cached); it stored what it sent to the model
        calls = [texts for all_exits, texts in stored_candidates(record) if not all_exits]
        if args.max_texts is not None:
            kept, n = [], 0
            for texts in calls:
                if n >= args.max_texts:
                    break
                kept.append(texts[: args.max_texts - n])
                n += len(kept[-1])
            calls = kept
        victim = load_victim(unit_cfg.victim, unit_cfg.policy, unit_cfg.policy_value, unit_cfg.batch_size)
        model, policy, depth = victim.model, victim.policy, victim.num_layers
        batches = batches_of(victim, calls, unit_cfg.batch_size)
        n_texts = sum(len(c) for c in calls)
        early_pass(model, policy, batches[:3])  # warm-up
        full_pass(model, policy, batches[:3])
        full_s, early_s, chunk_ratios, full_layers, early_layers = 0.0, 0.0, [], [], []
        for k, start in enumerate(range(0, len(batches), args.chunk)):
            chunk = batches[start:start + args.chunk]
            first, second = (full_pass, early_pass) if k % 2 == 0 else (early_pass, full_pass)
            timed = {first: first(model, policy, chunk), second: second(model, policy, chunk)}
            (f_s, f_layers), (e_s, e_layers) = timed[full_pass], timed[early_pass]
            full_s, early_s = full_s + f_s, early_s + e_s
            chunk_ratios.append(f_s / e_s)
            full_layers.append(f_layers)
            early_layers.append(e_layers)
        full_layers, early_layers = np.concatenate(full_layers), np.concatenate(early_layers)
        identical = bool(np.array_equal(full_layers, early_layers))
        mean_exit = float(early_layers.mean())
        limit = depth / mean_exit
        ratio = full_s / early_s
        print(f"\n{name} victim ({name} = {value:g}): {n_texts} candidate texts in {len(calls)} scoring calls "
              f"({len(batches)} batches of at most {unit_cfg.batch_size}) from {len(record['results'])} attacked "
              f"sentences")
        print(f"  full forward : {full_s:8.2f} s  ({1000 * full_s / n_texts:.2f} ms / candidate)")
        print(f"  early exit   : {early_s:8.2f} s  ({1000 * early_s / n_texts:.2f} ms / candidate)")
        print(f"  mean exit layer of the candidates: {mean_exit:.3f} of {depth}")
        print(f"  wall-clock ratio full / early exit: {ratio:.3f}   limit L / mean exit layer: {limit:.3f}   "
              f"ratio / limit: {ratio / limit:.3f} ({'meets' if ratio / limit >= 0.8 else 'below'} 0.8)")
        print(f"  per-chunk ratio ({len(chunk_ratios)} chunks of {args.chunk} batches): median "
              f"{np.median(chunk_ratios):.3f}, min-max {min(chunk_ratios):.3f}-{max(chunk_ratios):.3f}; "
              f"median / limit {np.median(chunk_ratios) / limit:.3f}")
        print(f"  exit layers identical on every candidate: {identical} "
              f"({int((full_layers == early_layers).sum())}/{n_texts})")


if __name__ == "__main__":
    main()
