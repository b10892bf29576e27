"""Shared fixtures: offline Hugging Face libraries, a private results cache, tiny models."""

import os

# before any Hugging Face import: fail at once instead of retrying for ~23 s
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch


@pytest.fixture(autouse=True)
def private_results(tmp_path, monkeypatch):
    """Every test writes its results cache into its own temporary folder."""
    monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.fixture(scope="session")
def tokenizer():
    """MiniLM's uncased WordPiece tokenizer (packaged)."""
    from costeff_same.core.backbones import load_tokenizer

    return load_tokenizer("tiny-random")


@pytest.fixture
def tiny_backbone():
    """A 4-layer BERT of hidden 32 with seeded random weights."""
    from costeff_same.core.backbones import load_backbone

    return load_backbone("tiny-random", seed=0)


@pytest.fixture
def tiny_model(tiny_backbone):
    """A DeeBERT-style multi-exit model on the tiny backbone, in eval mode."""
    from costeff_same.core.modeling import from_backbone

    torch.manual_seed(0)
    return from_backbone(tiny_backbone.model, 2, "deebert").eval()


def spread_victim(model, tokenizer, texts, batch_size):
    """``model`` behind an entropy policy whose threshold (the median first-exit entropy on
    ``texts``) spreads the texts' exits over the layers."""
    from costeff_same.attacks.victim import MultiExitVictim
    from costeff_same.core.exits import ExitPolicy, entropy

    with torch.no_grad():
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        first = model(**batch).exit_logits[0]
    return MultiExitVictim(model, tokenizer, ExitPolicy("entropy", float(entropy(first).median())),
                           max_length=32, batch_size=batch_size)


def slender_flops_by_hand(heads_per_layer, ffn_per_layer, n, hidden, num_labels, head_size, rank):
    """FLOPs through each exit (``(L,)`` list) of a ``costeff``-style slender model at ``n``
    tokens, counted by hand as ``torch.utils.flop_counter`` counts them: 2 per multiply-add
    of every matmul (the factorised embedding's projection, Q, K, V, the attention output, the
    FFN, the exit classifier on the CLS state). The counter does not register PyTorch's CPU
    attention kernel, so the attention-score and attention-value products are left out."""
    expected, total = [], 2 * n * rank * hidden
    for heads, ffn in zip(heads_per_layer, ffn_per_layer):
        w = heads * head_size
        total += 2 * n * hidden * w * 3 + 2 * n * w * hidden
        total += 2 * n * hidden * ffn * 2
        total += 2 * hidden * num_labels
        expected.append(total)
    return expected
