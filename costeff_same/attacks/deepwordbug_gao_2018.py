"""DeepWordBug (Gao et al., IEEE S&P Workshops 2018).

"Black-box Generation of Adversarial Text Sequences to Evade Deep Learning Classifiers."
Tokens are ranked by a black-box score (we use "replace-one": the score with the word
replaced by ``[UNK]``, :class:`GreedyWordSwapWIR` with ``unk``), and the most important
ones are changed by one character edit each (neighbour swap, substitution, deletion,
insertion), keeping the Levenshtein distance to the original within 30. Composed as
TextAttack's ``DeepWordBugGao2018`` recipe (Morris et al., 2020).
"""

from __future__ import annotations

from costeff_same.attacks.attack import Attack
from costeff_same.attacks.constraints import (
    LevenshteinDistance,
    MinWordLength,
    RepeatModification,
    StopwordModification,
)
from costeff_same.attacks.goal_functions import UntargetedClassification
from costeff_same.attacks.search import GreedyWordSwapWIR
from costeff_same.attacks.transformations import deepwordbug_edits
from costeff_same.attacks.victim import MultiExitVictim

NAME = "deepwordbug"


def build(victim: MultiExitVictim, query_budget: int | None = None, max_edit_distance: int = 30) -> Attack:
    """DeepWordBug against ``victim``.

    Args:
        victim: the multi-exit victim (its served prediction is attacked).
        query_budget: model evaluations per example (None: unlimited).
        max_edit_distance: Levenshtein budget in characters (the paper's 30).
    """
    # As TextAttack's recipe: each of the four edits proposes one random edit per word
    # (seeded per example), and the greedy search keeps the one that helps most. The paper
    # applies one chosen edit per token; proposing all four and keeping the best is
    # TextAttack's reading.
    transformation = deepwordbug_edits(random_one=True)
    constraints = [
        RepeatModification(),
        # Departure: the paper edits any token; TextAttack's recipe (and this one) leaves
        # stopwords alone (scikit-learn's list here).
        StopwordModification(),
        # Departure: pre-tokenised one-letter fragments ("s" of "it 's") are not touched.
        MinWordLength(2),
        LevenshteinDistance(max_edit_distance),
    ]
    # Departure: the paper's temporal (head/tail) scores are not used; "replace-one" by
    # [UNK] is the paper's variant TextAttack uses, on the probability at the exit taken.
    goal = UntargetedClassification(victim, query_budget=query_budget)
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR("unk"), name=NAME)
