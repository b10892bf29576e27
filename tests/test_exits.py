"""Exit policies, and the agreement of simulated and batched early exit (paths (a) and (b))."""

import numpy as np
import pytest
import torch

from costeff_same.core.exits import ExitPolicy, early_exit_forward, entropy, simulate_exits
from costeff_same.core.metrics import exit_stats
from costeff_same.core.modeling import from_backbone

TEXTS = [
    "the film is a charming and often affecting journey",
    "a sour little movie",
    "it 's a lovely film with lovely performances by buy and accorsi",
    "too slow , too long and too little happens",
    "ok",
    "an ambitious , serious film that manages to do virtually everything wrong ; sitting through it is something "
    "akin to an endurance challenge",
] * 6


def _logits_sequence(rows):
    """(L, N, 2) logits from per-layer [p(class 1)] lists."""
    p = torch.tensor(rows, dtype=torch.float32).T  # (L, N)
    return torch.stack([torch.log(1 - p), torch.log(p)], -1)


def test_entropy_policy_exits_at_first_confident_layer():
    logits = _logits_sequence([[0.5, 0.99, 0.999], [0.6, 0.7, 0.8]])
    decision = simulate_exits(logits, ExitPolicy("entropy", 0.1))
    assert decision.exit_layer.tolist() == [2, 3]  # second row never confident: last layer
    assert entropy(logits[1])[0] < 0.1


def test_patience_counts_consecutive_agreeing_layers():
    # predictions per layer: row 0: 1 1 1 0 0; row 1: 1 0 1 1 1; row 2: 0 1 0 1 0
    p = [[0.9, 0.8, 0.7, 0.2, 0.1], [0.9, 0.2, 0.8, 0.9, 0.7], [0.1, 0.9, 0.2, 0.9, 0.2]]
    decision = simulate_exits(_logits_sequence(p), ExitPolicy("patience", 2))
    assert decision.exit_layer.tolist() == [3, 5, 5]
    assert decision.predictions.tolist() == [1, 1, 0]


def test_maxprob_policy():
    logits = _logits_sequence([[0.5, 0.95], [0.97, 0.99]])
    assert simulate_exits(logits, ExitPolicy("maxprob", 0.9)).exit_layer.tolist() == [2, 1]


@pytest.mark.parametrize("name,threshold", [("entropy", 7.0), ("patience", 0.5), ("maxprob", 1.5), ("depth", 1)])
def test_bad_policies_are_refused(name, threshold):
    with pytest.raises(ValueError, match=name if name != "depth" else "accepted: entropy, patience, maxprob"):
        if name == "entropy":
            ExitPolicy(name, -threshold)
        else:
            ExitPolicy(name, threshold)


def _policy(kind: str, full: torch.Tensor) -> ExitPolicy:
    """A policy whose threshold splits the tiny random model's examples across layers."""
    if kind == "entropy":
        return ExitPolicy("entropy", float(entropy(full[0]).median()))
    if kind == "maxprob":
        return ExitPolicy("maxprob", float(torch.softmax(full[0], -1).max(-1).values.median()))
    return ExitPolicy("patience", int(kind[-1]))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("kind", ["entropy", "maxprob", "patience1", "patience2"])
@pytest.mark.parametrize("batch_size", [1, 5, 36])
def test_batched_early_exit_agrees_with_simulation(tiny_backbone, tokenizer, kind, batch_size, pooling):
    tiny_model = from_backbone(tiny_backbone.model, 2, "deebert", seed=0, exit_pooling=pooling).eval()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        full = tiny_model(**enc).exit_logits
    policy = _policy(kind, full)
    expected = simulate_exits(full, policy)
    layers, preds, logits = [], [], []
    for start in range(0, len(TEXTS), batch_size):
        part = {k: v[start:start + batch_size] for k, v in enc.items()}
        out = early_exit_forward(tiny_model, part["input_ids"], part["attention_mask"], policy,
                                 part["token_type_ids"])
        layers.append(out.exit_layer.numpy())
        preds.append(out.logits.argmax(-1).numpy())
        logits.append(out.logits.numpy())
    layers, preds = np.concatenate(layers), np.concatenate(preds)
    assert np.array_equal(layers, expected.exit_layer)
    assert np.array_equal(preds, expected.predictions)
    np.testing.assert_allclose(np.concatenate(logits), expected.logits, rtol=0, atol=1e-5)
    if kind in ("entropy", "maxprob"):  # the threshold really spreads examples over layers
        assert len(set(layers.tolist())) >= 2


@pytest.mark.parametrize("side", ["right", "left"])
def test_batched_early_exit_cuts_padding_only_where_no_remaining_row_needs_it(tiny_backbone, tokenizer, side):
    """Rows of very different lengths: once the long row leaves, the short rows run on fewer
    columns; with left padding nothing may be cut. Either way the logits are the full forward's."""
    tokenizer.padding_side = side
    try:
        enc = tokenizer(["a b c d e f g h i j k l m n o p", "a b", "c d"], padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = "right"
    for seed in range(50):  # exits seeded until the long row is the most confident at layer 1
        tiny_model = from_backbone(tiny_backbone.model, 2, "deebert", seed=seed).eval()
        with torch.no_grad():
            full = tiny_model(**enc).exit_logits
        first = entropy(full[0])
        if first[0] < first[1:].min():
            break
    policy = ExitPolicy("entropy", float(first[0] + first[1:].min()) / 2)  # only the long row exits at layer 1
    assert simulate_exits(full, policy).exit_layer[0] == 1 and first[0] < first[1:].min()
    widths = []
    layer = tiny_model.layer_forward
    tiny_model.layer_forward = lambda i, hidden, bias: (widths.append(hidden.shape[1]), layer(i, hidden, bias))[1]
    out = early_exit_forward(tiny_model, enc["input_ids"], enc["attention_mask"], policy, enc["token_type_ids"])
    expected = simulate_exits(full, policy)
    assert np.array_equal(out.exit_layer.numpy(), expected.exit_layer)
    np.testing.assert_allclose(out.logits.numpy(), expected.logits, rtol=0, atol=1e-5)
    if side == "right":
        assert widths[0] == enc["input_ids"].shape[1] and max(widths[1:]) < widths[0]
    else:
        assert set(widths) == {enc["input_ids"].shape[1]}


def test_exit_stats():
    stats = exit_stats(np.array([1, 2, 3, 6]), 6)
    assert stats["mean_exit_layer"] == 3.0
    assert stats["speedup"] == 2.0
    assert stats["efficiency_gain"] == 0.5
    assert stats["histogram"] == [1, 1, 1, 0, 0, 1]
    with pytest.raises(ValueError, match="1..6"):
        exit_stats(np.array([0, 7]), 6)
