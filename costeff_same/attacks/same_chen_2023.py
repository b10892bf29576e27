"""SAME: the slowdown attack on multi-exit language models (Chen et al., ACL 2023).

"Dynamic Transformers Provide a False Sense of Efficiency" (Chen et al., ACL 2023, section 3; the methods page). SAME
perturbs a text so that a multi-exit model stops exiting early: the goal is the exit
layer, and the search is guided by a loss over **all** internal exits
(:mod:`costeff_same.attacks.same_loss`). :func:`build` composes, in TextAttack's shape:

- goal: :class:`~costeff_same.attacks.goal_functions.Slowdown`, score = exit layer / L,
  success when the text exits at the last layer L; a text that already exits at L is
  skipped (and counted as skipped);
- transformation: :class:`SameTransformation`, the union of

  - gradient-guided word swaps (HotFlip-style, first order): with ``g_j`` the gradient of
    the SAME loss at the word-embedding row of token ``j`` and ``E`` the embedding matrix,
    replacing token ``w_j`` by ``v`` changes the loss by about ``(E g_j)[v] - (E g_j)[w_j]``;
    the ``top_n`` (100) (word, vocabulary word) pairs with the most negative change are
    proposed. Special tokens, non-letter words and stopwords are never swapped;
  - character mutations on the ``top_k`` (10) most important words (largest gradient
    norm): every neighbour swap, random-letter insertion, deletion and homoglyph
    substitution; ``top_n`` of them are sampled;

- constraints: stopwords untouched, no word modified twice, at most
  ``max(3, ceil(0.1 * words))`` words changed;
- search: :class:`SameBeamSearch`, beam width 5, at most 10 iterations, stop on success.

A **constrained variant** (``constrained=True``; not in the paper, chapter 4 runs it beside the
paper's) holds SAME to meaning: word swaps only to a word's near neighbours among the
counter-fitted vectors, and a sentence-similarity floor under the Universal Sentence Encoder.

**Fixes of the reference code** (departures from Chen et al.'s released code, explained on
the methods page), each switched back on by
``reference_quirks=True`` so that the book can show what they change:

1. the gradient is computed afresh for every expansion (the reference never zeroes the
   embedding gradient, so it accumulates across expansions and examples; here
   :class:`SameGradients` keeps that accumulator when the quirks are on);
2. the search returns the best text seen over all iterations (the reference returns the
   best of the last beam);
3. words made of several word pieces can be swapped: their pieces' first-order scores are
   averaged and the whole word is replaced by a one-piece vocabulary word (the reference
   can never swap them);
4. speed: candidates are scored with batched early exit (rows leave the batch when they
   exit: :func:`costeff_same.core.exits.early_exit_forward`) instead of a full forward
   each, and scoring stops at the first batch that holds a success (the exit layers are
   identical to a full forward's and the text returned is the same; see
   :class:`SameBeamSearch`); the gradients of a beam's texts are computed in one batched
   forward and backward (:meth:`SameTransformation.prefetch`; only float rounding differs
   from one text at a time). These stay on with the quirks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from costeff_same.attacks.attack import Attack
from costeff_same.attacks.constraints import (
    MaxModificationRate,
    MinWordLength,
    NoAntonymSwap,
    RepeatModification,
    SentenceSimilarity,
    StopwordModification,
    sentence_encoder,
)
from costeff_same.attacks.goal_functions import GoalResult, Slowdown
from costeff_same.attacks.same_loss import LAMBDA, SameLoss
from costeff_same.attacks.same_transformation import SameGradients, SameTransformation
from costeff_same.attacks.search import BeamSearch
from costeff_same.attacks.text import AttackedText
from costeff_same.attacks.victim import MultiExitVictim
from costeff_same.attacks.word_vectors import neighbour_swap

NAME = "same"


# -- the search ---------------------------------------------------------------------------------

class SameBeamSearch(BeamSearch):
    """SAME's beam search, scoring candidates in batches that stop at the first success.

    Each iteration expands every beam text, scores the candidates with the victim's
    batched early exit, keeps the ``beam_width`` best and stops as soon as a candidate
    exits at the last layer. Candidates are scored ``chunk_size`` at a time, in candidate
    order, and scoring stops after the first chunk that holds a success: a success has the
    highest possible score (1), so the text returned (the first success in candidate
    order) is exactly the one a full evaluation of the iteration would return, for fewer
    queries.

    Args:
        beam_width: texts kept per iteration (5).
        max_iterations: iterations at most (10).
        return_best_seen: True returns the best text seen (the fix); False the best of the
            last iteration (the reference).
        chunk_size: candidates per scoring batch (None: all of an iteration at once).
        tie_break: rank candidates that exit at the same layer by the entropy of that exit
            (:meth:`rank_key`; a departure from the paper).
        lazy_constraints: as :class:`BeamSearch` (the constrained variant's similarity);
            scoring then stops after a chunk that holds an *acceptable* success.

    Raises:
        ValueError: as :class:`BeamSearch`, or for ``chunk_size < 1``.
    """

    def __init__(self, beam_width: int = 5, max_iterations: int | None = 10, return_best_seen: bool = True,
                 chunk_size: int | None = 32, tie_break: bool = True, lazy_constraints: bool = False):
        super().__init__(beam_width, max_iterations, return_best_seen, lazy_constraints)
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size={chunk_size} must be >= 1 or None")
        self.chunk_size = chunk_size
        self.tie_break = tie_break

    def rank_key(self, result: GoalResult) -> tuple[float, float]:
        """Sort key of a candidate: its goal score, then (with ``tie_break``) the entropy of the exit it takes.

        Departure: the paper ranks by the goal score (exit layer / L) alone, so the many
        candidates that exit at the same layer are kept in candidate order. We break those
        ties by the softmax entropy (nats) at the exit taken: the less sure that exit is, the
        closer the text is to passing it (an entropy exit) or to flipping its prediction (a
        patience exit). The goal, its score and success are unchanged; the key is computed
        from the answer the victim already gave (no extra query).
        """
        if not self.tie_break:
            return (result.score, 0.0)
        probs = np.clip(np.asarray(result.output.probs, dtype=float), 1e-12, 1.0)
        return (result.score, float(-(probs * np.log(probs)).sum()))

    #: compute a beam's gradients in one batch (False: one text at a time; ``benchmarks/same_attack.py`` compares)
    batched_gradients = True

    def expand(self, attack: Attack, beam: list[GoalResult]) -> list[AttackedText]:
        """Every beam text's candidates, the beam's gradients computed in one batch first."""
        transformation = getattr(attack, "transformation", None)
        if self.batched_gradients and hasattr(transformation, "prefetch"):
            transformation.prefetch([b.text for b in beam])
        return super().expand(attack, beam)

    def score(self, attack: Attack, candidates: list[AttackedText]) -> list[GoalResult]:
        """Score ``candidates`` chunk by chunk, stopping after a chunk that holds a success."""
        size = self.chunk_size or max(1, len(candidates))
        results: list[GoalResult] = []
        for start in range(0, len(candidates), size):
            chunk = candidates[start:start + size]
            got = attack.goal.evaluate(chunk)
            results += got
            successes = [r for r in got if r.succeeded]
            if self.lazy_constraints:
                successes = attack.acceptable(successes, 1)
            if len(got) < len(chunk) or successes:
                break
        return results


# -- the recipe ---------------------------------------------------------------------------------

def build(victim: MultiExitVictim, query_budget: int | None = None, lam: float = LAMBDA,
          dynamic_weights: bool = True, word_level: bool = True, char_level: bool = True,
          reference_quirks: bool = False, beam_width: int = 5, max_iterations: int = 10, top_n: int = 100,
          top_k: int = 10, max_rate: float = 0.1, min_words: int = 3, chunk_size: int | None = 32,
          tie_break: bool = True, penalty: Callable[[torch.Tensor], torch.Tensor] | None = None,
          constrained: bool = False, min_similarity: float = 0.84) -> Attack:
    """SAME against ``victim``.

    Args:
        victim: the multi-exit victim (white-box: its gradients guide the word swaps).
        query_budget: model evaluations per example (None: unlimited, as in the paper).
        lam: lambda of ``lambda * L_X + (1 - lambda) * L_U`` (0.8; 0 = uniform term only,
            1 = cross-prediction term only).
        dynamic_weights: SAME's dynamic exit weights (False: every exit weighs 1).
        word_level: gradient-guided word swaps.
        char_level: character mutations.
        reference_quirks: reproduce the reference code: the gradient accumulates across
            expansions and examples, the last beam's best is returned, multi-piece words are
            never swapped.
        beam_width: texts kept per beam-search iteration (5).
        max_iterations: beam-search iterations (10).
        top_n: candidates per level and expansion (100).
        top_k: words mutated at the character level (10).
        max_rate: words changed at most, as a fraction of the words (0.1) ...
        min_words: ... but never fewer than this many (3).
        chunk_size: candidates per scoring batch (None: a whole iteration).
        tie_break: among candidates that exit at the same layer, prefer the one whose exit is
            least sure (a departure from the paper: :meth:`SameBeamSearch.rank_key`).
        penalty: ``(L, batch, C)`` exit logits -> ``(batch,)``, added to SAME's loss of each text
            (an attacker who knows a defence: chapter 6's guard); None: SAME's loss alone.
        constrained: hold SAME to meaning (not in the paper): a word may only become one of
            its near neighbours among the counter-fitted vectors (TextFooler's 50 at cosine
            >= 0.5, WordNet antonyms removed), and a text's angular similarity to the original
            under the Universal Sentence Encoder must stay >= ``min_similarity`` (checked
            lazily on the texts the search keeps).
        min_similarity: the constrained variant's similarity threshold (TextAttack's 0.840).

    Returns:
        The :class:`~costeff_same.attacks.attack.Attack`.

    Raises:
        ValueError: for an out-of-range setting (lambda outside [0, 1], both levels off, ...).
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda={lam} must be in [0, 1]")
    loss = SameLoss(lam=lam, dynamic=dynamic_weights, penalty=penalty)
    neighbours = None
    if constrained:
        swap = neighbour_swap("counter_fitted")
        antonyms = NoAntonymSwap()
        neighbours = functools.lru_cache(maxsize=100_000)(
            lambda word: tuple(w for w, _ in swap.neighbours(word) if w not in antonyms.antonyms(word)))
    transformation = SameTransformation(SameGradients(victim, loss, reference_quirks), word_level, char_level,
                                        top_n, top_k, multi_piece=not reference_quirks, neighbours=neighbours)
    constraints = [
        RepeatModification(),
        # Departure: SAME uses NLTK's English stopwords; NLTK's list cannot be fetched offline,
        # scikit-learn's (318 words) stands in.
        StopwordModification(),
        # Departure: Rotten Tomatoes is pre-tokenised ("it 's", "does n't"), which leaves
        # one-letter fragments ("s", "t") that NLTK's list holds and scikit-learn's does not;
        # they are not touched.
        MinWordLength(2),
        MaxModificationRate(max_rate, min_words=min_words),
    ]
    if constrained:
        # Not in the paper: the whole text stays close to the original (no window: the
        # beam's texts come from several parents, and the original is their common reference).
        constraints.append(SentenceSimilarity(sentence_encoder("use"), min_similarity=min_similarity,
                                              metric="angular", compare_against="original"))
    goal = Slowdown(victim, query_budget=query_budget)
    search = SameBeamSearch(beam_width, max_iterations, return_best_seen=not reference_quirks, chunk_size=chunk_size,
                            tie_break=tie_break, lazy_constraints=constrained)
    return Attack(goal, constraints, transformation, search, name=NAME)
