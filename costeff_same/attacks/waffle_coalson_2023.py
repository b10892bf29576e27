"""WAFFLE (Coalson et al., NeurIPS 2023): a slowdown attack on multi-exit language models.

"BERT Lost Patience Won't Be Robust to Adversarial Slowdown." WAFFLE adapts a TextAttack
word-level attack to slow a multi-exit model down: its goal function scores a text by how
undecided *every* exit is,

    s(x) = (1 / L) * sum_i [ 1 - ||p_i(x) - u||_1 / (C - 1) ]

with ``p_i`` exit ``i``'s softmax, ``u`` the uniform distribution over the ``C`` classes and
``L`` the exits (:func:`waffle_score`; 1 when every exit is uniform; for ``C = 2`` it is 0
when every exit is certain). A text that no exit is sure of runs through every layer under
an entropy or a patience policy.

Choices where the paper's description leaves the recipe open (each commented where it is
made; the methods page lists them):

- **success**: the text exits at the last layer (as SAME's goal,
  :class:`~costeff_same.attacks.goal_functions.Slowdown`), so success rates compare with
  SAME's; the search climbs the WAFFLE score, not the exit layer;
- **transformation and search**: TextFooler's (Jin et al., 2020), as the TextAttack recipe it
  is built from: embedding-neighbour word swaps (chapter 3's counter-fitted vectors,
  :mod:`costeff_same.attacks.word_vectors`, cosine >= 0.5, 50 neighbours) in the order of word
  importance by deletion, greedily, one word at a time; no sentence-similarity constraint
  (chapter 4 measures the similarity of its texts instead, as SAME's);
- **constraints**: no stopword, no word twice, words of two letters or more, and SAME's
  perturbation budget (at most 10% of the words, never fewer than 3), so the two slowdown
  attacks spend the same number of words.
"""

from __future__ import annotations

import numpy as np

from costeff_same.attacks.attack import Attack
from costeff_same.attacks.constraints import (
    MaxModificationRate,
    MinWordLength,
    RepeatModification,
    StopwordModification,
)
from costeff_same.attacks.goal_functions import Slowdown
from costeff_same.attacks.search import GreedyWordSwapWIR
from costeff_same.attacks.victim import MultiExitVictim, VictimOutput
from costeff_same.attacks.word_vectors import neighbour_swap

NAME = "waffle"


def waffle_score(exit_probs: np.ndarray) -> float:
    """WAFFLE's slowdown score of one text (Coalson et al., 2023; the module docstring).

    Args:
        exit_probs: ``(L, C)`` softmax of every exit, ``C >= 2``.

    Returns:
        The mean over the ``L`` exits of ``1 - ||p_i - u||_1 / (C - 1)``.

    Raises:
        ValueError: for an array that is not ``(L, C)`` with ``C >= 2``.
    """
    probs = np.asarray(exit_probs, dtype=float)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"exit_probs of shape {probs.shape} must be (L exits, C >= 2 classes)")
    classes = probs.shape[1]
    distance = np.abs(probs - 1.0 / classes).sum(axis=1)
    return float(np.mean(1.0 - distance / (classes - 1)))


class WaffleSlowdown(Slowdown):
    """WAFFLE's goal: climb :func:`waffle_score`; reached when the text exits at the last layer
    (a choice: see the module docstring). Needs every exit's probabilities (a full forward)."""

    needs_all_exits = True

    def score(self, output: VictimOutput) -> float:
        return waffle_score(output.exit_probs)


def build(victim: MultiExitVictim, query_budget: int | None = None, max_rate: float = 0.1, min_words: int = 3,
          min_cos_sim: float = 0.5, max_candidates: int = 50, word_vectors: str = "counter_fitted") -> Attack:
    """WAFFLE against ``victim``.

    Args:
        victim: the multi-exit victim.
        query_budget: model evaluations per sentence (None: unlimited).
        max_rate: words changed at most, as a fraction of the words (SAME's 0.1) ...
        min_words: ... and never fewer than this many (SAME's 3).
        min_cos_sim: least cosine similarity of a swap to its word (TextFooler's 0.5).
        max_candidates: neighbours per word (TextFooler's 50).
        word_vectors: the word space of the swaps (``counter_fitted`` or ``minilm``).

    Raises:
        ValueError: for an unknown ``word_vectors`` (the accepted ones are listed).
    """
    transformation = neighbour_swap(word_vectors, max_candidates=max_candidates, min_cos_sim=min_cos_sim)
    constraints = [RepeatModification(), StopwordModification(), MinWordLength(2),
                   # Choice: SAME's word budget, so WAFFLE and SAME change as many words.
                   MaxModificationRate(max_rate, min_words)]
    goal = WaffleSlowdown(victim, query_budget=query_budget)
    # Choice: TextFooler's search (importance by deletion, greedy), the TextAttack recipe WAFFLE adapts.
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR("delete"), name=NAME)
