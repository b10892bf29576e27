"""TextFooler (Jin et al., AAAI 2020).

"Is BERT Really Robust? A Strong Baseline for Natural Language Attack on Text
Classification and Entailment." Words are ranked by how much leaving them out lowers the
true class's probability (:class:`GreedyWordSwapWIR` with ``delete``); each is replaced by
the embedding neighbour that most lowers it, among the 50 nearest with cosine >= 0.5,
subject to part-of-speech agreement and a sentence-encoder similarity over a 15-word
window. Composed as TextAttack's ``TextFoolerJin2019`` recipe (Morris et al., 2020).

**Substitutes** (the resources TextFooler names cannot be fetched offline):

- the counter-fitted word vectors (Mrksic et al., 2016) -> counter-fitted here
  (:mod:`costeff_same.attacks.word_vectors`: GloVe 6B 50d, WordNet's synonyms and antonyms;
  the paper's are 300-dimensional Paragram-SL999 vectors), or, with
  ``word_vectors="minilm"``, the input word embeddings of the packaged all-MiniLM-L6-v2
  (whole-word WordPiece entries: the stand-in before); WordNet antonyms are removed from
  either (:class:`NoAntonymSwap`);
- the Universal Sentence Encoder (Cer et al., 2018; English, v4) -> its multilingual v3 port
  (``encoder="use"``, the default) or the packaged all-MiniLM-L6-v2, mean-pooled
  (``encoder="minilm"``);
- the POS tagger -> none (no POS constraint).
"""

from __future__ import annotations

import warnings

from costeff_same.attacks.attack import Attack
from costeff_same.attacks.constraints import (
    MinWordLength,
    NoAntonymSwap,
    RepeatModification,
    SentenceSimilarity,
    StopwordModification,
    sentence_encoder,
)
from costeff_same.attacks.goal_functions import UntargetedClassification
from costeff_same.attacks.resources import wordnet_available
from costeff_same.attacks.search import GreedyWordSwapWIR
from costeff_same.attacks.victim import MultiExitVictim
from costeff_same.attacks.word_vectors import neighbour_swap

NAME = "textfooler"


def build(victim: MultiExitVictim, query_budget: int | None = None, antonym_filter: bool | None = None,
          min_cos_sim: float = 0.5, max_candidates: int = 50, min_similarity: float = 0.84,
          word_vectors: str = "counter_fitted", encoder: str = "use") -> Attack:
    """TextFooler against ``victim``.

    Args:
        victim: the multi-exit victim (its served prediction is attacked).
        query_budget: model evaluations per example (None: unlimited, as in the paper).
        antonym_filter: drop WordNet antonyms from the swaps; None uses it when WordNet is
            present (and warns when it is not).
        min_cos_sim: least cosine similarity of a swap to the word (the paper's 0.5), in the
            space of ``word_vectors``.
        max_candidates: neighbours per word (the paper's 50).
        min_similarity: least angular sentence similarity (TextAttack's 0.840 for USE).
        word_vectors: ``counter_fitted`` (built here) or ``minilm`` (the stand-in).
        encoder: the sentence encoder, ``use`` (the USE port) or ``minilm``.

    Raises:
        ValueError: for an unknown ``word_vectors`` or ``encoder`` (the accepted ones are listed).
    """
    # Departure: the paper's counter-fitted vectors -> ours, or MiniLM's (the module docstring).
    # The paper's numbers (50 neighbours, cosine >= 0.5) are kept; in MiniLM's space fewer
    # neighbours pass 0.5 than in counter-fitted space.
    transformation = neighbour_swap(word_vectors, max_candidates=max_candidates, min_cos_sim=min_cos_sim)
    constraints = [
        RepeatModification(),
        # Departure: scikit-learn's English stopwords instead of TextFooler's own list.
        StopwordModification(),
        # Departure: pre-tokenised one-letter fragments ("s" of "it 's") are not touched.
        MinWordLength(2),
    ]
    if antonym_filter is None:
        antonym_filter = wordnet_available()
        if not antonym_filter:
            warnings.warn("TextFooler: WordNet is missing, so antonyms are not removed from the embedding "
                          "swaps (get it with `costeff-same data wordnet`)", stacklevel=2)
    if antonym_filter:
        # Departure (addition): stands in for the antonym repulsion of counter-fitting.
        constraints.append(NoAntonymSwap())
    # Departure: no part-of-speech agreement (no tagger offline).
    # Departure: the English USE v4 -> the multilingual USE v3 port (or MiniLM). Like
    # TextFooler's code, the similarity is taken over the 15 words around the swap against the
    # text before the swap, and a text shorter than the window is compared whole (TextAttack's
    # recipe skips such texts instead). The threshold is TextAttack's 0.840 on angular
    # similarity; MiniLM's scale differs from USE's, so there it is the same number, not the
    # same strictness.
    constraints.append(SentenceSimilarity(sentence_encoder(encoder), min_similarity=min_similarity,
                                          metric="angular", window_size=15,
                                          compare_against="current", skip_shorter_than_window=False))
    # Departure: the paper's "delete" importance is the drop in the true class's probability
    # (plus the gain of the new class when the prediction changes); we rank by the goal
    # score 1 - p(y) of the text without the word, at the exit the text takes.
    goal = UntargetedClassification(victim, query_budget=query_budget)
    # Efficiency, not a departure in what is found: the sentence similarity (a MiniLM forward per
    # candidate) is checked lazily on the scored candidates, best first, which picks the same
    # replacement as filtering every candidate first; the queries then also count candidates
    # the similarity constraint rejects.
    search = GreedyWordSwapWIR("delete", lazy_constraints=True)
    return Attack(goal, constraints, transformation, search, name=NAME)
