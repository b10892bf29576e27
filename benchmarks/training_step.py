"""One training step of the full-width and of the slender model, before and after the speed-ups.

Prints, measured in one run with the steps of every variant interleaved (``--steps`` each,
after two warm-up steps), the median step time, its spread and the ratio to the first
variant, for chapter 1's full-width DeeBERT-style model (MiniLM-L6) and for COST-EFF's
default slender shape (2 heads and FFN 256 per layer, embedding rank 64):

- ``before``: float32, ``nn.Dropout`` (a ``bernoulli_`` mask), the per-tensor AdamW loop;
- ``fused AdamW``: the same with PyTorch's fused AdamW;
- ``mask dropout``: also :class:`~costeff_same.core.modeling.MaskDropout` (``rand_like >= p``);
- ``bf16 autocast``: also the forward pass under bfloat16 autocast (the default profiles').

With ``--profile-ops`` it also prints ``torch.profiler``'s table of the slowest operators of
the ``before`` step.

    .venv/bin/python benchmarks/training_step.py
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch import nn

from costeff_same.core.backbones import load_backbone
from costeff_same.core.modeling import (
    MaskDropout,
    MultiExitBertConfig,
    MultiExitBertForSequenceClassification,
    from_backbone,
    task_loss,
)
from costeff_same.engine.threads import TASK_THREADS
from costeff_same.engine.trainer import adamw


def with_dropout(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose :class:`MaskDropout` modules are plain ``nn.Dropout`` again."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, MaskDropout):
                setattr(module, name, nn.Dropout(child.p))
    return model


def step_fn(model, batch: dict, labels: torch.Tensor, fused: bool, bf16: bool):
    """One optimiser step of the sum of exit losses (chapter 1's joint loss)."""
    model.train()
    optimizer = adamw(list(model.named_parameters()), 1e-5, 0.01, fused)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(**batch)
            loss = sum(task_loss(z, labels, model.num_labels) for z in out.exit_logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps of each variant (>= 1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=40, help="tokens per example")
    parser.add_argument("--profile-ops", action="store_true", help="print the profiler's slowest operators")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps {args.steps} must be >= 1")
    torch.set_num_threads(TASK_THREADS)  # as every stage runs
    backbone = load_backbone("minilm-l6", seed=0)
    full = from_backbone(backbone.model, 2, "deebert", seed=0, exit_pooling="mean")
    shape = {k: v for k, v in full.config.to_dict().items()
             if k not in ("architectures", "transformers_version", "model_type")}
    shape.update(exit_style="costeff", heads_per_layer=[2] * 6, ffn_per_layer=[256] * 6, embedding_rank=64)
    slender = MultiExitBertForSequenceClassification(MultiExitBertConfig(**shape))
    torch.manual_seed(0)
    ids = torch.randint(1000, 20000, (args.batch_size, args.tokens))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    labels = torch.randint(0, 2, (args.batch_size,))
    print(f"torch threads {torch.get_num_threads()}, batch {args.batch_size} x {args.tokens} tokens, "
          f"{args.steps} interleaved steps per variant")
    for label, model in (("full width", full), ("slender", slender)):
        variants = {
            "before": step_fn(with_dropout(model), batch, labels, fused=False, bf16=False),
            "fused AdamW": step_fn(with_dropout(model), batch, labels, fused=True, bf16=False),
            "mask dropout": step_fn(copy.deepcopy(model), batch, labels, fused=True, bf16=False),
            "bf16 autocast": step_fn(copy.deepcopy(model), batch, labels, fused=True, bf16=True),
        }
        for step in variants.values():
            step()
            step()
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.steps):
            for name, step in variants.items():
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["before"])
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{label:10s}  {name:14s} median {1000 * median:7.1f} ms   min-max {1000 * min(values):6.1f}-"
                  f"{1000 * max(values):6.1f} ms   ratio to before {median / base:.3f}")
        if args.profile_ops:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(3):
                    variants["before"]()
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
