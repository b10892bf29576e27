"""Victim throughput with dynamic padding against padding every query to 512 tokens.

TextAttack's stock ``HuggingFaceModelWrapper`` pads every query to the model's maximum
length (512 tokens); our victim (:class:`costeff_same.attacks.victim.MultiExitVictim`) pads
each batch to its longest text and groups texts by length. Prints, measured in one run on
Rotten Tomatoes test sentences: sequences per second of each, and their ratio.

    .venv/bin/python benchmarks/victim_queries.py --profile default --victim entropy

Uses chapter 1's cached victim at its operating point when it exists; otherwise a
multi-exit model freshly built on the packaged MiniLM (untrained exits, every layer run),
which is said in the output. The cache of the victim is off, so every text is a model query.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from costeff_same.attacks.victim import MultiExitVictim
from costeff_same.core.backbones import load_backbone, load_tokenizer
from costeff_same.core.data import load_data, subsample
from costeff_same.core.exits import ExitPolicy
from costeff_same.core.modeling import from_backbone
from costeff_same.engine.results import is_cached
from costeff_same.foundations.config import load_profile
from costeff_same.victims import multi_exit_config, run_multi_exit
from costeff_same.zoo import trained_model


def throughput(victim: MultiExitVictim, texts: list[str], repeats: int) -> float:
    """Best-of-``repeats`` sequences per second of answering ``texts`` (no cache)."""
    victim(texts[: victim.batch_size])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        victim(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", choices=("smoke", "default", "paper"))
    parser.add_argument("--victim", default="entropy", choices=("entropy", "patience"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dynamic-texts", type=int, default=512, help="sentences timed with dynamic padding")
    parser.add_argument("--padded-texts", type=int, default=64, help="sentences timed padded to 512 tokens")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default: 1, as every stage)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = multi_exit_config(**load_profile(args.profile)["01_multi_exit"])
    if is_cached("multi_exit", cfg):
        value = run_multi_exit(cfg)["victims"][args.victim]["operating_point"]["value"]
        model, _ = trained_model(cfg.victim(args.victim))
        policy = ExitPolicy(args.victim, value)
        what = f"chapter-1 {args.victim} victim at {args.victim} = {value:g}"
    else:
        backbone = load_backbone(cfg.entropy_model.backbone)
        model = from_backbone(backbone.model, 2).eval()
        policy = ExitPolicy("entropy", 0.0)  # never exits early: every layer runs
        what = f"untrained multi-exit {cfg.entropy_model.backbone} (chapter 1 not cached), every layer"
    tokenizer = load_tokenizer(cfg.entropy_model.backbone)
    task = load_data(cfg.data)
    texts = list(subsample(task.splits["test"], cfg.data.eval_size, cfg.data.seed)["text"])
    dynamic = MultiExitVictim(model, tokenizer, policy, max_length=cfg.data.max_length,
                              batch_size=args.batch_size, cache_size=0)
    padded = MultiExitVictim(model, tokenizer, policy, max_length=cfg.data.max_length,
                             batch_size=args.batch_size, cache_size=0, pad_to=512)
    mean_tokens = sum(len(ids) for ids in tokenizer(texts[: args.dynamic_texts], truncation=True,
                                                    max_length=cfg.data.max_length)["input_ids"])
    mean_tokens /= min(len(texts), args.dynamic_texts)
    fast = throughput(dynamic, texts[: args.dynamic_texts], args.repeats)
    slow = throughput(padded, texts[: args.padded_texts], args.repeats)
    print(f"{what}; {cfg.data.task} sentences, mean {mean_tokens:.1f} tokens (max_length {cfg.data.max_length}), "
          f"batch {args.batch_size}, {torch.get_num_threads()} thread(s)")
    print(f"dynamic padding : {fast:8.1f} sequences/s ({min(len(texts), args.dynamic_texts)} sentences)")
    print(f"padded to 512   : {slow:8.1f} sequences/s ({min(len(texts), args.padded_texts)} sentences)")
    print(f"ratio           : {fast / slow:8.1f}x")


if __name__ == "__main__":
    main()
