"""SAME's seconds per sentence, a beam's gradients in one batch against one text at a time.

Runs SAME (chapter 4's settings) against each of chapter 1's victims on the first
``--sentences`` of chapter 4's test sentences, every sentence twice in alternation (the
order swapped each sentence), once with :attr:`SameBeamSearch.batched_gradients` on and
once off, so a load that starts midway hits both. Prints, measured in one run, per victim:
seconds per sentence of each mode, the median and the spread (min-max) of the per-sentence
ratios and the ratio of the sums, and on how many sentences the two modes end at the same
exit layer and with the same text (only float rounding of the padded batch differs).

    .venv/bin/python benchmarks/same_attack.py --profile default --sentences 40

Needs chapter 1's cached victims.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np
import torch

from costeff_same.attacks.same_chen_2023 import build
from costeff_same.attacks.sentences import attack_sentences
from costeff_same.attacks.units import load_victim
from costeff_same.chapters.same import same_config
from costeff_same.engine.threads import TASK_THREADS
from costeff_same.foundations.config import load_profile
from costeff_same.victims import run_multi_exit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--sentences", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(TASK_THREADS)  # as every stage runs
    cfg = same_config(**load_profile(args.profile)["04_same"])
    chapter1 = run_multi_exit(cfg.multi_exit)
    texts, labels, _ = attack_sentences(cfg.multi_exit.data, args.sentences, cfg.seed)
    print(f"SAME on {args.sentences} sentences per victim, each run with the beam's gradients batched and not, "
          "in alternation")
    for name in cfg.victims:
        value = chapter1["victims"][name]["operating_point"]["value"]
        victim = load_victim(cfg.multi_exit.victim(name), name, value, cfg.batch_size)
        attack = build(victim, **cfg.settings.build_kwargs())
        seconds, ends = {True: [], False: []}, {True: [], False: []}
        for k, (text, label) in enumerate(zip(texts, labels)):
            for batched in ((True, False) if k % 2 == 0 else (False, True)):
                victim._cache.clear()  # no answer cached by the other mode
                attack.search.batched_gradients = batched
                start = time.perf_counter()
                result = attack.attack(text, label, cfg.seed)
                seconds[batched].append(time.perf_counter() - start)
                ends[batched].append((result.perturbed_exit_layer, result.perturbed_text))
        on, off = np.array(seconds[True]), np.array(seconds[False])
        ratios = on / off
        same_layer = sum(a[0] == b[0] for a, b in zip(ends[True], ends[False]))
        same_text = sum(a[1] == b[1] for a, b in zip(ends[True], ends[False]))
        print(f"{name}: batched {on.mean():.3f} s/sentence, one at a time {off.mean():.3f} s/sentence; "
              f"ratio of sums {on.sum() / off.sum():.3f}, per-sentence median {np.median(ratios):.3f} "
              f"(spread {ratios.min():.3f}-{ratios.max():.3f}); same exit layer on {same_layer}/{len(texts)}, "
              f"same text on {same_text}/{len(texts)}")


if __name__ == "__main__":
    main()
