"""The test sentences every attack chapter attacks: one seeded, label-balanced selection.

Chapters 3 and 4 (and any attack with the same seed) draw the same sentences
(:func:`attack_sentences`), so their figures compare like with like; every prefix of the
order keeps the labels in proportion to the split (:func:`balanced_order`), so the first
sentences (chapter 4's ablations) are balanced too. A module of its own, so that changing
the selection recomputes the attacks but never retrains the models they attack.
"""

from __future__ import annotations

import numpy as np

from costeff_same.core.data import load_data, subsample
from costeff_same.foundations.config import ConfigError, DataConfig


def balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded order of examples in which every prefix keeps the labels' proportions.

    The examples are shuffled with ``seed``; each gets its rank within its label as a
    fraction of that label's count, and the order sorts by it. So the first ``n`` hold each
    label in proportion to ``labels`` (within one example), whatever ``n``.

    Args:
        labels: ``(N,)`` integer labels.
        seed: seeds the shuffle.

    Returns:
        ``(N,)`` int64, a permutation of 0..N-1.
    """
    labels = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    fraction = np.empty(len(labels))
    for label in np.unique(labels):
        members = order[labels[order] == label]
        fraction[members] = (np.arange(len(members)) + 0.5) / len(members)
    return order[np.argsort(fraction[order], kind="stable")]


def attack_sentences(data: DataConfig, n: int, seed: int,
                   who: str = "this attack") -> tuple[list[str], list[int], list[int]]:
    """The ``n`` test sentences every attack chapter attacks: the first ``n`` of
    :func:`balanced_order` of the test split as chapter 1 prepares it.

    Chapters 3 and 4 (and any attack with the same ``seed``) draw the same sentences, with
    both labels in proportion to the split.

    Args:
        data: the task (its ``eval_size`` subsample of the test split, as chapter 1's).
        n: how many (at most the split's size).
        seed: seeds the order.
        who: named in the error.

    Returns:
        The sentences, their labels and their indices in chapter 1's test split.

    Raises:
        ConfigError: for a sentence-pair task.
    """
    task = load_data(data)
    if task.has_pairs:
        raise ConfigError(f"task {task.name!r} has sentence pairs; {who} takes single sentences")
    test = subsample(task.splits["test"], data.eval_size, data.seed)
    order = balanced_order(np.asarray(test["label"]), seed)[:n]
    return ([test["text"][int(i)] for i in order], [int(test["label"][int(i)]) for i in order],
            [int(i) for i in order])
