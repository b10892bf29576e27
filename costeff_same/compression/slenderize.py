"""Slenderization: narrower heads/FFN and a factorised embedding.

COST-EFF (Shen et al., 2022, section 3.2); the methods page.

COST-EFF keeps the depth and the residual width and prunes the width:

- whole attention heads (Q/K/V output rows and attention-output input columns),
- FFN neurons (intermediate rows and FFN-output columns),
- the word embedding, factorised by truncated SVD ``E (V x H) ~ (U_r S_r) V_r``, stored as
  ``Embedding(V, r)`` followed by ``Linear(r, H, bias=False)``.

Position/type embeddings, LayerNorms and the exits are kept. Every function here is pure:
it returns a new model and leaves its input untouched. Slenderizing with everything kept
is the identity (same weights, identical logits).

:func:`prune_schedule` gives the iterative schedule: ``K = heads - target_heads`` events,
each removing one head per layer while FFN width and embedding rank shrink linearly to
their targets. :func:`truncate_depth` builds the depth-truncated baseline (first ``k``
layers and their exits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from costeff_same.compression.importance import Importance
from costeff_same.core.modeling import MultiExitBertConfig, MultiExitBertForSequenceClassification


@dataclass(frozen=True)
class Shape:
    """The width of a slender model.

    Attributes:
        heads: kept attention heads per layer (one int per layer).
        ffn: FFN width per layer.
        embedding_rank: rank of the factorised word embedding; None keeps it whole.
    """

    heads: tuple[int, ...]
    ffn: tuple[int, ...]
    embedding_rank: int | None

    def to_dict(self) -> dict:
        return {"heads": list(self.heads), "ffn": list(self.ffn), "embedding_rank": self.embedding_rank}


def shape_of(model: MultiExitBertForSequenceClassification) -> Shape:
    """The current :class:`Shape` of ``model``."""
    cfg = model.config
    layers = range(cfg.num_hidden_layers)
    return Shape(tuple(cfg.layer_heads(i) for i in layers), tuple(cfg.layer_ffn(i) for i in layers),
                 cfg.embedding_rank)


def prune_schedule(start: Shape, heads: int, ffn: int, embedding_rank: int | None,
                   hidden_size: int) -> list[Shape]:
    """The shapes after each of COST-EFF's iterative slenderization events.

    ``K = max(start heads) - heads`` events (at least one if the FFN or the embedding
    changes): event ``e`` (1..K) keeps ``max(start_i - e, heads)`` heads in layer ``i`` and
    moves the FFN width and the embedding rank linearly from the start (rank: the hidden
    size, i.e. the whole embedding) to the target, reaching it at event ``K``.

    Args:
        start: the shape before pruning.
        heads: target heads per layer.
        ffn: target FFN width per layer.
        embedding_rank: target embedding rank (None: keep the embedding whole).
        hidden_size: ``H``, the rank of the whole embedding.

    Returns:
        ``K`` shapes, the last one the target.

    Raises:
        ValueError: when a target is larger than the start or not positive.
    """
    if heads < 1 or ffn < 1 or (embedding_rank is not None and not 1 <= embedding_rank <= hidden_size):
        raise ValueError(f"targets heads={heads}, ffn={ffn}, embedding_rank={embedding_rank} must be >= 1 "
                         f"(rank <= hidden size {hidden_size})")
    if heads > min(start.heads) or ffn > min(start.ffn):
        raise ValueError(f"targets heads={heads}, ffn={ffn} exceed the start shape {start.to_dict()}")
    start_rank = start.embedding_rank or hidden_size
    if embedding_rank is not None and embedding_rank > start_rank:
        raise ValueError(f"embedding_rank={embedding_rank} exceeds the current rank {start_rank}")
    events = max(start.heads) - heads
    rank_changes = embedding_rank is not None and embedding_rank != start.embedding_rank
    if events == 0 and (any(f != ffn for f in start.ffn) or rank_changes):
        events = 1
    shapes = []
    for e in range(1, events + 1):
        frac = e / events
        layer_heads = tuple(max(h - e, heads) for h in start.heads)
        layer_ffn = tuple(round(f + (ffn - f) * frac) for f in start.ffn)
        rank = (start.embedding_rank if embedding_rank is None
                else round(start_rank + (embedding_rank - start_rank) * frac))
        if rank is not None and rank >= hidden_size and start.embedding_rank is None:
            rank = None  # still the whole embedding: a rank-H factorisation would only add parameters
        shapes.append(Shape(layer_heads, layer_ffn, rank))
    return shapes


def factorise_embedding(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD of a word-embedding matrix: ``E ~ (U_r S_r) V_r``.

    The right singular vectors ``V_r`` are the top eigenvectors of the small Gram matrix
    ``E^T E`` (``hidden x hidden``, float64), and ``U_r S_r = E V_r^T``: the same factors as
    a full SVD (up to signs), about three times faster for a BERT vocabulary.

    Args:
        weight: ``(vocab, hidden)`` embedding matrix, ``vocab >= hidden``.
        rank: ``r``, 1..hidden.

    Returns:
        ``(U_r S_r, V_r)``: ``(vocab, r)`` embedding rows and ``(r, hidden)`` projection.

    Raises:
        ValueError: for a rank outside 1..hidden.
    """
    if not 1 <= rank <= min(weight.shape):
        raise ValueError(f"embedding rank {rank} must be in 1..{min(weight.shape)}")
    w = weight.detach().double()
    _, vectors = torch.linalg.eigh(w.T @ w)                 # ascending eigenvalues
    right = vectors[:, -rank:].flip(1)                     # (hidden, r), largest first
    return (w @ right).to(weight.dtype), right.T.contiguous().to(weight.dtype)


def kept_units(scores: torch.Tensor, keep: int) -> list[int]:
    """Indices of the ``keep`` highest-scoring units, in their original order.

    Ties are broken toward the lower index, so equal scores give a deterministic choice.

    Raises:
        ValueError: when ``keep`` is not in 1..len(scores).
    """
    if not 1 <= keep <= len(scores):
        raise ValueError(f"cannot keep {keep} of {len(scores)} units")
    order = sorted(range(len(scores)), key=lambda j: (-float(scores[j]), j))
    return sorted(order[:keep])


def slenderize(model: MultiExitBertForSequenceClassification, importance: Importance | None,
               shape: Shape) -> MultiExitBertForSequenceClassification:
    """A new model of ``shape`` keeping ``model``'s most important heads and neurons.

    Pure: ``model`` is not changed. Layer ``i`` keeps its ``shape.heads[i]`` highest-scoring
    heads and ``shape.ffn[i]`` highest-scoring FFN neurons (original order preserved); a
    new ``shape.embedding_rank`` re-factorises the effective word embedding by truncated
    SVD. Everything else is copied. With ``shape == shape_of(model)`` the result computes
    exactly the same function.

    Args:
        model: the source model.
        importance: head and neuron scores of ``model`` (None only when nothing is pruned).
        shape: the target shape; no dimension may grow.

    Returns:
        The slender model, in ``model``'s training mode.

    Raises:
        ValueError: when the shape has the wrong length, grows a dimension, or pruning is
            asked for without importance scores.
    """
    cfg = model.config
    current = shape_of(model)
    layers = cfg.num_hidden_layers
    if len(shape.heads) != layers or len(shape.ffn) != layers:
        raise ValueError(f"shape {shape.to_dict()} must give {layers} layers")
    for i in range(layers):
        if not (1 <= shape.heads[i] <= current.heads[i] and 1 <= shape.ffn[i] <= current.ffn[i]):
            raise ValueError(f"layer {i}: cannot go from {current.heads[i]} heads/{current.ffn[i]} FFN to "
                             f"{shape.heads[i]}/{shape.ffn[i]} (pruning only removes units)")
    prunes = shape.heads != current.heads or shape.ffn != current.ffn
    if prunes and importance is None:
        raise ValueError("pruning heads or neurons needs importance scores")
    d = cfg.attention_head_size
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        if shape.heads[i] != current.heads[i]:
            heads = kept_units(importance.heads[i], shape.heads[i])
            rows = torch.cat([torch.arange(j * d, (j + 1) * d) for j in heads])
            for name in ("query", "key", "value"):
                state[f"{p}attention.self.{name}.weight"] = state[f"{p}attention.self.{name}.weight"][rows]
                state[f"{p}attention.self.{name}.bias"] = state[f"{p}attention.self.{name}.bias"][rows]
            state[f"{p}attention.output.dense.weight"] = state[f"{p}attention.output.dense.weight"][:, rows]
        if shape.ffn[i] != current.ffn[i]:
            neurons = torch.tensor(kept_units(importance.neurons[i], shape.ffn[i]))
            state[f"{p}intermediate.dense.weight"] = state[f"{p}intermediate.dense.weight"][neurons]
            state[f"{p}intermediate.dense.bias"] = state[f"{p}intermediate.dense.bias"][neurons]
            state[f"{p}output.dense.weight"] = state[f"{p}output.dense.weight"][:, neurons]
    rank = shape.embedding_rank
    if rank != current.embedding_rank:
        if rank is None:
            raise ValueError("a factorised embedding cannot be made whole again")
        whole = model.bert.embeddings.word_embeddings.weight          # (vocab, hidden), effective
        rows, projection = factorise_embedding(whole, rank)
        prefix = "bert.embeddings.word_embeddings."
        for key in [k for k in state if k.startswith(prefix)]:
            del state[key]
        state[prefix + "embed.weight"] = rows
        state[prefix + "project.weight"] = projection.T.contiguous()    # Linear(r, H).weight is (H, r)
    new_config = MultiExitBertConfig.from_dict({
        **cfg.to_dict(), "heads_per_layer": list(shape.heads), "ffn_per_layer": list(shape.ffn),
        "embedding_rank": rank, "attention_head_size": d,
    })
    new = MultiExitBertForSequenceClassification(new_config)
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise RuntimeError(f"slenderized weights do not fit: missing {missing}, unexpected {unexpected}")
    return new.train(model.training)


def truncate_depth(model: MultiExitBertForSequenceClassification,
                   layers: int) -> MultiExitBertForSequenceClassification:
    """A new model made of ``model``'s first ``layers`` layers and their exits (a depth-truncated baseline).

    Pure: ``model`` is not changed. For ``deebert`` exits the first ``layers`` poolers are
    kept, so the new last exit is the source's exit ``layers``.

    Raises:
        ValueError: when ``layers`` is not in 1..L.
    """
    cfg = model.config
    if not 1 <= layers <= cfg.num_hidden_layers:
        raise ValueError(f"layers={layers} must be in 1..{cfg.num_hidden_layers}")
    values = {**cfg.to_dict(), "num_hidden_layers": layers}
    for key in ("heads_per_layer", "ffn_per_layer"):
        if values.get(key):
            values[key] = values[key][:layers]
    new = MultiExitBertForSequenceClassification(MultiExitBertConfig.from_dict(values))
    state = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if key.startswith("bert.encoder.layer.") and int(parts[3]) >= layers:
            continue
        if parts[0] in ("classifiers", "poolers") and int(parts[1]) >= layers and not (
                parts[0] == "poolers" and cfg.exit_style == "pabee"):
            continue
        state[key] = value.detach().clone()
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise RuntimeError(f"truncated weights do not fit: missing {missing}, unexpected {unexpected}")
    return new.train(model.training)
