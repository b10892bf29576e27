"""Metrics: task metrics, exit and efficiency metrics, measured FLOPs and wall-clock.

Named as the field names them (papers.md section 4):

- exit layer (1..L) per example; mean exit layer; **speedup** = L / mean exit layer;
  **efficiency gain** g = 1 - mean exit layer / L; **efficiency-gain reduction**
  = (g_clean - g_adv) / g_clean (SAME; the paper's exact formula is unverified).
- task metric per GLUE task (scikit-learn / scipy): accuracy, F1 (MRPC, QQP), Matthews
  correlation (CoLA), mean of Pearson and Spearman (STS-B).
- FLOPs per example, counted by ``torch.utils.flop_counter`` at batch 1 (a multiply-add
  counts as 2 FLOPs).
- wall-clock seconds, examples per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from torch.utils.flop_counter import FlopCounterMode

from .data import Encoded
from .exits import ExitPolicy, early_exit_forward
from .modeling import MultiExitBertForSequenceClassification

TASK_METRICS = ("accuracy", "f1", "matthews", "pearson_spearman")


def task_metric(name: str, predictions: np.ndarray, labels: np.ndarray) -> float:
    """The task metric ``name`` of ``(N,)`` predictions against ``(N,)`` labels.

    Raises:
        ValueError: for an unknown metric name.
    """
    if name == "accuracy":
        return float(accuracy_score(labels, predictions))
    if name == "f1":
        return float(f1_score(labels, predictions))
    if name == "matthews":
        return float(matthews_corrcoef(labels, predictions))
    if name == "pearson_spearman":
        return float((pearsonr(predictions, labels)[0] + spearmanr(predictions, labels)[0]) / 2)
    raise ValueError(f"unknown metric {name!r}; accepted: {', '.join(TASK_METRICS)}")


def predictions_of(logits: np.ndarray) -> np.ndarray:
    """Argmax class of ``(..., C)`` logits, or the value for regression (``C == 1``)."""
    return logits[..., 0] if logits.shape[-1] == 1 else logits.argmax(-1)


def per_exit_metric(metric: str, exit_logits: np.ndarray, labels: np.ndarray) -> list[float]:
    """The task metric of every exit: ``(L, N, C)`` logits -> ``L`` floats."""
    return [task_metric(metric, predictions_of(z), labels) for z in exit_logits]


def exit_stats(exit_layer: np.ndarray, depth: int) -> dict[str, float | list[int]]:
    """Mean exit layer, speedup, efficiency gain and the exit-layer histogram.

    Args:
        exit_layer: ``(N,)`` exit layers in 1..``depth``.
        depth: L, the number of layers.

    Raises:
        ValueError: when an exit layer is outside 1..L or ``exit_layer`` is empty.
    """
    exit_layer = np.asarray(exit_layer)
    if exit_layer.size == 0 or exit_layer.min() < 1 or exit_layer.max() > depth:
        raise ValueError(f"exit layers must be in 1..{depth}, got {exit_layer[:10]}")
    mean = float(exit_layer.mean())
    return {
        "mean_exit_layer": mean,
        "speedup": depth / mean,
        "efficiency_gain": 1.0 - mean / depth,
        "histogram": np.bincount(exit_layer, minlength=depth + 1)[1:].tolist(),
    }


def efficiency_gain_reduction(gain_clean: float, gain_adv: float) -> float:
    """SAME's efficiency-gain reduction ``(g_clean - g_adv) / g_clean`` (nan when g_clean is 0)."""
    return (gain_clean - gain_adv) / gain_clean if gain_clean > 0 else float("nan")


def _count(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@torch.no_grad()
def cumulative_flops(model: MultiExitBertForSequenceClassification, seq_len: int) -> np.ndarray:
    """FLOPs of one example of ``seq_len`` tokens that exits after layer k, for k = 1..L.

    Counted with ``torch.utils.flop_counter`` at batch 1: embeddings, then each layer and
    its exit (an example that exits at layer k has computed exits 1..k).

    Returns:
        ``(L,)`` int64, FLOPs through layer k (index k - 1).
    """
    model.eval()
    ids = torch.full((1, seq_len), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    holder = {}

    def embed():
        holder["h"] = model.embed(ids)
        holder["bias"] = model.attention_bias(mask, holder["h"])

    total = _count(embed)
    out = []
    for i in range(model.num_layers):
        def layer(i=i):
            holder["h"] = model.layer_forward(i, holder["h"], holder["bias"])
            model.exit_forward(i, holder["h"], mask)

        total += _count(layer)
        out.append(total)
    return np.asarray(out, dtype=np.int64)


def flops_per_example(model: MultiExitBertForSequenceClassification, lengths: np.ndarray,
                      exit_layer: np.ndarray | None = None) -> float:
    """Mean measured FLOPs per example, each at its own length and exit layer.

    Args:
        model: the multi-exit model.
        lengths: ``(N,)`` tokens per example.
        exit_layer: ``(N,)`` exit layers; None means every example runs all L layers.
    """
    lengths = np.asarray(lengths)
    exit_layer = np.full(len(lengths), model.num_layers) if exit_layer is None else np.asarray(exit_layer)
    table = {int(n): cumulative_flops(model, int(n)) for n in np.unique(lengths)}
    return float(np.mean([table[int(n)][k - 1] for n, k in zip(lengths, exit_layer)]))


def count_parameters(model: torch.nn.Module, embeddings: bool = True) -> int:
    """Parameters of ``model``; with ``embeddings=False`` the embedding layer is left out."""
    return sum(p.numel() for n, p in model.named_parameters()
               if embeddings or ".embeddings." not in f".{n}")


@torch.no_grad()
def time_inference(model: MultiExitBertForSequenceClassification, data: Encoded, batch_size: int,
                   policy: ExitPolicy | None = None, limit: int | None = None) -> dict[str, float]:
    """Wall-clock of inference over ``data`` (batches ordered by length, as served).

    Args:
        model: the multi-exit model.
        data: the encoded examples.
        batch_size: examples per forward.
        policy: None runs every layer (the static model); otherwise batched early exit.
        limit: time only the first ``limit`` examples (in length order).

    Returns:
        ``{"seconds", "examples", "examples_per_second", "ms_per_example"}``.
    """
    model.eval()
    batches = [b for _, b in data.eval_batches(batch_size)]
    if limit is not None:
        batches = batches[: max(1, (limit + batch_size - 1) // batch_size)]
    for b in batches:
        b.pop("labels", None)
    n = sum(len(b["input_ids"]) for b in batches)
    run = (lambda b: model(**b)) if policy is None else (
        lambda b: early_exit_forward(model, b["input_ids"], b["attention_mask"], policy, b.get("token_type_ids")))
    run(batches[0])  # warm-up
    start = time.perf_counter()
    for b in batches:
        run(b)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "examples": n, "examples_per_second": n / seconds,
            "ms_per_example": 1000 * seconds / n}
