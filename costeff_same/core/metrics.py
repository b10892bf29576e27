"""Metrics: task metrics, exit and efficiency metrics, measured FLOPs and wall-clock.

Named as the field names them (Xin et al., 2020; Chen et al., 2023; the methods page):

- exit layer (1..L) per example; mean exit layer; **speedup** = L / mean exit layer;
  **efficiency gain** g = 1 - mean exit layer / L; **efficiency-gain reduction**
  = (g_clean - g_adv) / g_clean (SAME; the paper's exact formula is unverified);
  **efficacy**, the area under the cumulative exit distribution (DeepSloth, WAFFLE).
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
from scipy.integrate import trapezoid
from scipy.stats import pearsonr, spearmanr, wilcoxon
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from torch.utils.flop_counter import FlopCounterMode

from costeff_same.core.encoding import Encoded
from costeff_same.core.exits import ExitPolicy, early_exit_forward, predictions_of
from costeff_same.core.modeling import MultiExitBertForSequenceClassification
from costeff_same.foundations.records import EfficiencyChange, ExitStats
from costeff_same.foundations.registry import TASK_METRICS


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


def per_exit_metric(metric: str, exit_logits: np.ndarray, labels: np.ndarray) -> list[float]:
    """The task metric of every exit: ``(L, N, C)`` logits -> ``L`` floats."""
    return [task_metric(metric, predictions_of(z), labels) for z in exit_logits]


def exit_stats(exit_layer: np.ndarray, depth: int) -> ExitStats:
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


def efficacy(exit_layer: np.ndarray, depth: int, axis: int = -1) -> np.ndarray:
    """DeepSloth's and WAFFLE's efficacy: the area under the cumulative early-exit distribution
    (Hong et al., 2021; Coalson et al., 2023).

    The share of examples that have exited by layer k, for k = 1..L, integrated by the
    trapezoid rule over the exit positions k / L in (0, 1]: from 1/(2L) (every example runs all L layers) to (L - 1)/L
    (every example exits at layer 1); larger means earlier exits, and a slowdown attack lowers it.

    Args:
        exit_layer: ``(..., N)`` exit layers in 1..L.
        depth: L.
        axis: the examples' axis.
    """
    e = np.moveaxis(np.asarray(exit_layer), axis, -1)
    cumulative = np.stack([np.mean(e <= k, axis=-1) for k in range(1, depth + 1)], axis=-1)
    return trapezoid(cumulative, (np.arange(depth) + 1) / depth, axis=-1)


def efficiency_gain_reduction(gain_clean: float, gain_adv: float) -> float:
    """SAME's efficiency-gain reduction ``(g_clean - g_adv) / g_clean`` (nan when g_clean is 0)."""
    return (gain_clean - gain_adv) / gain_clean if gain_clean > 0 else float("nan")


def efficiency_change(clean: np.ndarray, adv: np.ndarray, depth: int) -> EfficiencyChange:
    """Efficiency before and after an attack on the same examples (Chen et al., 2023, section 4).

    Args:
        clean: ``(N,)`` exit layers of the clean texts (1..L).
        adv: ``(N,)`` exit layers of their adversarial texts.
        depth: L.

    Returns:
        ``examples``; ``mean_exit_layer``, ``speedup``, ``efficiency_gain`` and ``histogram``
        with the suffixes ``_clean`` and ``_adv``; the ``efficiency_gain_reduction``; the
        shares of examples that exit ``later`` and ``earlier``, the ``mean_shift`` (layers);
        and ``wilcoxon_p``, the two-sided p-value of the paired Wilcoxon signed-rank test of
        the exit-layer shifts (scipy; 1.0 when nothing moved). ``{"examples": 0}`` when N = 0.
    """
    clean, adv = np.asarray(clean), np.asarray(adv)
    if len(clean) == 0:
        return {"examples": 0}
    before, after = exit_stats(clean, depth), exit_stats(adv, depth)
    moved = adv != clean
    p_value = float(wilcoxon(adv[moved], clean[moved]).pvalue) if moved.sum() >= 1 else 1.0
    return {
        "examples": len(clean),
        **{f"{k}_clean": before[k] for k in ("mean_exit_layer", "speedup", "efficiency_gain", "histogram")},
        **{f"{k}_adv": after[k] for k in ("mean_exit_layer", "speedup", "efficiency_gain", "histogram")},
        "efficiency_gain_reduction": efficiency_gain_reduction(before["efficiency_gain"], after["efficiency_gain"]),
        "later": float(np.mean(adv > clean)), "earlier": float(np.mean(adv < clean)),
        "mean_shift": float(np.mean(adv - clean)), "wilcoxon_p": p_value,
        "efficacy_clean": float(efficacy(clean, depth)), "efficacy_adv": float(efficacy(adv, depth)),
    }


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


#: ``{seq_len: (L,) FLOPs through exit k}`` of one model
FlopsTable = dict[int, np.ndarray]


def flops_table(model: MultiExitBertForSequenceClassification, lengths: np.ndarray) -> FlopsTable:
    """``{seq_len: (L,) FLOPs through exit k}`` for every distinct length, from measured counts.

    FLOPs at batch 1 are a polynomial of degree at most 2 in the sequence length (linear
    layers grow with ``n``, attention scores with ``n**2``, exits are constant), so the
    counts measured by ``torch.utils.flop_counter`` at three lengths determine every other
    length exactly. A fourth measured length checks the interpolation; if it does not
    agree to the FLOP, every length is measured instead.
    """
    distinct = [int(n) for n in np.unique(lengths)]
    if len(distinct) <= 4:
        return {n: cumulative_flops(model, n) for n in distinct}
    probes = [distinct[0], distinct[len(distinct) // 2], distinct[-1]]
    check = distinct[len(distinct) // 4]
    measured = {n: cumulative_flops(model, n) for n in probes + [check]}
    x = np.asarray(probes, dtype=np.float64)
    coeffs = [np.polyfit(x, np.asarray([measured[n][k] for n in probes], dtype=np.float64), 2)
              for k in range(model.num_layers)]

    def interpolate(n: int) -> np.ndarray:
        return np.asarray([round(float(np.polyval(c, n))) for c in coeffs], dtype=np.int64)

    if not np.array_equal(interpolate(check), measured[check]):
        return {n: cumulative_flops(model, n) for n in distinct}
    return {n: measured[n] if n in measured else interpolate(n) for n in distinct}


def example_flops(table: FlopsTable, lengths: np.ndarray, exit_layer: np.ndarray) -> np.ndarray:
    """``(N,)`` float64 FLOPs of each example at its own length (tokens) and exit layer (1..L)."""
    return np.asarray([table[int(n)][int(k) - 1] for n, k in zip(lengths, exit_layer)], dtype=np.float64)


def mean_flops(table: FlopsTable, lengths: np.ndarray, exit_layer: np.ndarray) -> float:
    """Mean FLOPs per example, each at its own length (tokens) and exit layer (1..L)."""
    return float(np.mean(example_flops(table, lengths, exit_layer)))


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
    return mean_flops(flops_table(model, lengths), lengths, exit_layer)


def count_parameters(model: torch.nn.Module, embeddings: bool = True) -> int:
    """Parameters of ``model``; with ``embeddings=False`` the embedding layer is left out."""
    return sum(p.numel() for n, p in model.named_parameters()
               if embeddings or ".embeddings." not in f".{n}")


@torch.no_grad()
def time_inference(model: MultiExitBertForSequenceClassification, data: Encoded, batch_size: int,
                   policy: ExitPolicy | None = None, limit: int | None = None, repeats: int = 1) -> dict[str, float]:
    """Wall-clock of inference over ``data`` (batches ordered by length, as served).

    The first batch is run once untimed (warm-up); then ``repeats`` timed passes, of which
    the fastest counts.

    Args:
        model: the multi-exit model.
        data: the encoded examples.
        batch_size: examples per forward.
        policy: None runs every layer (the static model); otherwise batched early exit.
        limit: time only the first ``limit`` examples (in length order).
        repeats: timed passes (>= 1).

    Returns:
        ``{"seconds", "examples", "examples_per_second", "ms_per_example"}``: seconds of one
        pass over the examples.

    Raises:
        ValueError: for ``repeats < 1``.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be >= 1")
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
    sync = torch.cuda.synchronize if next(model.parameters()).is_cuda else (lambda: None)
    seconds = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for b in batches:
            run(b)
        sync()                  # a GPU's kernels finish before the clock stops
        seconds = min(seconds, time.perf_counter() - start)
    return {"seconds": seconds, "examples": n, "examples_per_second": n / seconds,
            "ms_per_example": 1000 * seconds / n}
