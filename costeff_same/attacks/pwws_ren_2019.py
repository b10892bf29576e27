"""PWWS: Probability Weighted Word Saliency (Ren et al., ACL 2019).

"Generating Natural Language Adversarial Examples through Probability Weighted Word
Saliency." Words are replaced by WordNet synonyms, greedily, in the order of
``softmax(word saliency) * best probability drop`` (:class:`GreedyWordSwapWIR` with
``weighted-saliency``), until the prediction flips. Composed as TextAttack's ``PWWSRen2019``
recipe (Morris et al., 2020), with the departures commented where they happen.
"""

from __future__ import annotations

from costeff_same.attacks.attack import Attack
from costeff_same.attacks.constraints import MinWordLength, RepeatModification, StopwordModification
from costeff_same.attacks.goal_functions import UntargetedClassification
from costeff_same.attacks.search import GreedyWordSwapWIR
from costeff_same.attacks.transformations import WordNetSynonymSwap
from costeff_same.attacks.victim import MultiExitVictim

NAME = "pwws"


def build(victim: MultiExitVictim, query_budget: int | None = None) -> Attack:
    """PWWS against ``victim``.

    Args:
        victim: the multi-exit victim (its served prediction is attacked).
        query_budget: model evaluations per example (None: unlimited, as in the paper).

    Raises:
        costeff_same.attacks.resources.ResourceError: when WordNet 3.0 is missing; the
            message says how to get it (``costeff-same data wordnet``).
    """
    # Departure: the paper swaps a word for synonyms of its own part of speech (spaCy's
    # tagger) and also replaces named entities by entities of the other class; no tagger or
    # NER model is available offline, so synonyms of every part of speech are proposed (as
    # TextAttack's WordSwapWordNet does) and named entities are not replaced. Multi-word
    # WordNet lemmas are left out.
    transformation = WordNetSynonymSwap()
    constraints = [
        RepeatModification(),
        # Departure: the stopword list is scikit-learn's (NLTK's cannot be fetched offline).
        StopwordModification(),
        # Departure: Rotten Tomatoes is pre-tokenised ("it 's", "do n't"), which leaves
        # one-letter fragments; WordNet would turn "s" into "second". They are not touched.
        MinWordLength(2),
    ]
    # Departure: the paper scores a word's saliency and its swap gain on the probability of
    # the true class of a single-exit model; here it is the probability at the exit the
    # text takes under the victim's exit policy (the prediction the deployed model serves).
    goal = UntargetedClassification(victim, query_budget=query_budget)
    return Attack(goal, constraints, transformation, GreedyWordSwapWIR("weighted-saliency"), name=NAME)
