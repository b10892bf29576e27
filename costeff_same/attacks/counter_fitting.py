"""Counter-fitting word vectors to synonymy and antonymy (Mrkšić et al., NAACL 2016).

TextFooler (Jin et al., 2020) swaps a word for its nearest neighbours among counter-fitted
word vectors: vectors moved so that synonyms are close and antonyms far apart, while the
rest of the space keeps its local structure. With ``d(u, v) = 1 - cos(u, v)`` and
``tau(x) = max(0, x)``, the new vectors ``V'`` minimise (the methods page)

    k1 * AR + k2 * SA + k3 * VSP,
    AR  = sum over antonym pairs (u, w)  of tau(delta - d(v'_u, v'_w))      (antonym repel)
    SA  = sum over synonym pairs (u, w)  of tau(d(v'_u, v'_w) - gamma)      (synonym attract)
    VSP = sum over words i in a pair, neighbours j of i (d(v_i, v_j) < rho)
          of tau(d(v'_i, v'_j) - d(v_i, v_j))                               (vector space preservation)

with the paper's ``delta = 1``, ``gamma = 0``, ``rho = 0.2`` and ``k1 = k2 = k3 = 1``,
minimised by stochastic gradient descent for 20 epochs. Only the words of some pair move;
every other vector is kept as it is (so the preservation term reads them as fixed points).
Our choice where the paper's description leaves it open: the two words of a synonym or
antonym pair are not each other's neighbours for the preservation term (antonyms are often
distributional neighbours, and the two terms would cancel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from costeff_same.foundations.config import StageConfig

#: moving words whose distances to the whole vocabulary are computed at once (memory: chunk x V floats)
NEIGHBOUR_CHUNK = 2048


@dataclass(frozen=True)
class CounterFitting(StageConfig):
    """The objective's weights and margins (Mrkšić et al., 2016, section 2).

    Attributes:
        delta: antonyms are pushed until their cosine distance is at least this.
        gamma: synonyms are pulled until their cosine distance is at most this.
        rho: a word's neighbours for the preservation term lie within this cosine distance.
        k_repel, k_attract, k_preserve: the weights of AR, SA and VSP.
        epochs: passes of gradient descent; learning_rate: its step.
    """

    delta: float = 1.0
    gamma: float = 0.0
    rho: float = 0.2
    k_repel: float = 1.0
    k_attract: float = 1.0
    k_preserve: float = 1.0
    epochs: int = 20
    learning_rate: float = 0.1


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine distance ``1 - cos`` of ``(n, d)`` and ``(n, d)``: ``(n,)``."""
    return 1.0 - (_unit(a) * _unit(b)).sum(-1)


def _neighbours(original: torch.Tensor, moving: np.ndarray, pairs: dict[str, np.ndarray],
                rho: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The preservation term's neighbourhoods: ``(rows, cols, distances)`` with ``rows`` positions in
    ``moving``, ``cols`` vocabulary rows within cosine distance ``rho`` of that word in the original
    space (the word itself and its own synonyms and antonyms excluded), ``distances`` theirs."""
    size = original.shape[0]
    both = np.concatenate(list(pairs.values()))
    excluded = np.concatenate([both[:, 0] * size + both[:, 1], both[:, 1] * size + both[:, 0]])
    rows, cols, before = [], [], []
    for start in range(0, len(moving), NEIGHBOUR_CHUNK):
        words = torch.as_tensor(moving[start:start + NEIGHBOUR_CHUNK])
        distances = 1.0 - original[words] @ original.T                        # (chunk, V)
        distances[torch.arange(len(words)), words] = float("inf")
        r, c = torch.nonzero(distances < rho, as_tuple=True)
        keep = torch.as_tensor(~np.isin((words[r] * size + c).numpy(), excluded))
        rows.append(r[keep] + start)
        cols.append(c[keep])
        before.append(distances[r[keep], c[keep]])
    return torch.cat(rows), torch.cat(cols), torch.cat(before)


def counter_fit(vectors: np.ndarray, synonyms: Sequence[tuple[int, int]], antonyms: Sequence[tuple[int, int]],
                settings: CounterFitting = CounterFitting()) -> np.ndarray:
    """Counter-fit ``vectors`` to the synonym and antonym pairs (module docstring).

    Args:
        vectors: ``(V, d)`` word vectors (any norm; the result is unit-normalised).
        synonyms: pairs of row indices that should end close.
        antonyms: pairs of row indices that should end far apart.
        settings: the objective's margins, weights and optimisation.

    Returns:
        ``(V, d)`` float32 unit vectors; rows in no pair are the inputs, normalised.

    Raises:
        ValueError: for a vectors array that is not 2-D, or a pair index outside ``0..V-1``.
    """
    original = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
    if original.ndim != 2:
        raise ValueError(f"vectors must be (words, dimensions), got shape {tuple(original.shape)}")
    n = original.shape[0]
    pairs = {"synonyms": np.asarray(synonyms, dtype=np.int64).reshape(-1, 2),
             "antonyms": np.asarray(antonyms, dtype=np.int64).reshape(-1, 2)}
    for name, p in pairs.items():
        if p.size and (p.min() < 0 or p.max() >= n):
            raise ValueError(f"{name} pair index {int(p.max() if p.max() >= n else p.min())} outside 0..{n - 1}")
    original = _unit(original)
    moving = np.unique(np.concatenate([pairs["synonyms"].ravel(), pairs["antonyms"].ravel()]))
    if moving.size == 0:
        return original.numpy()
    near_rows, near_cols, near_before = _neighbours(original, moving, pairs, settings.rho)
    position = {int(w): i for i, w in enumerate(moving)}
    syn = torch.as_tensor([[position[int(a)], position[int(b)]] for a, b in pairs["synonyms"]], dtype=torch.long)
    ant = torch.as_tensor([[position[int(a)], position[int(b)]] for a, b in pairs["antonyms"]], dtype=torch.long)
    params = original[moving].clone().requires_grad_(True)
    optimizer = torch.optim.SGD([params], lr=settings.learning_rate)
    for _ in range(settings.epochs):
        optimizer.zero_grad()
        current = original.clone()
        current[torch.as_tensor(moving)] = params
        loss = params.new_zeros(())
        if len(ant):
            loss = loss + settings.k_repel * torch.relu(
                settings.delta - _distance(params[ant[:, 0]], params[ant[:, 1]])).sum()
        if len(syn):
            loss = loss + settings.k_attract * torch.relu(
                _distance(params[syn[:, 0]], params[syn[:, 1]]) - settings.gamma).sum()
        if len(near_rows):
            loss = loss + settings.k_preserve * torch.relu(
                _distance(params[near_rows], current[near_cols]) - near_before).sum()
        loss.backward()
        optimizer.step()
    out = original.clone()
    out[torch.as_tensor(moving)] = _unit(params.detach())
    return out.numpy()
