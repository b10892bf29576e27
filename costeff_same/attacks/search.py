"""Search methods: how an attack walks from the original text towards its goal.

- :class:`GreedyWordSwapWIR`: rank the words by importance, then, word by word in that
  order, take the best-scoring replacement if it improves the goal score; stop at success.
  Importance (TextAttack's ``wir_method``, Morris et al., 2020):

  - ``delete``: the goal score of the text with the word left out (TextFooler, Jin et
    al., 2020: the drop in the true class's probability);
  - ``unk``: the goal score of the text with the word replaced by ``[UNK]`` (DeepWordBug's
    "replace-one" score, Gao et al., 2018);
  - ``weighted-saliency``: PWWS (Ren et al., 2019): ``softmax(S)_i * dP*_i``, where the
    word saliency ``S_i`` is the score with the word replaced by ``[UNK]`` and ``dP*_i``
    is the best score gain of the word's own replacements;
  - ``random``: a seeded shuffle.

- :class:`BeamSearch`: keep the ``beam_width`` best texts; each iteration expands every
  beam text with all its candidates, scores them in one batch, keeps the best; stops on
  success, when nothing is left to try, or after ``max_iterations`` (SAME, Chen et al.,
  2023: width 5, 10 iterations). Returns the best text seen, or, with
  ``return_best_seen=False``, the best of the last iteration (the SAME reference code's
  behaviour).

Every search scores candidates in batches through the goal function, which enforces the
query budget.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from costeff_same.attacks.goal_functions import GoalResult
from costeff_same.attacks.text import AttackedText


class AttackParts(Protocol):
    """What a search method uses of :class:`costeff_same.attacks.attack.Attack` (a structural
    type: the attack module imports this one, not the other way round)."""

    goal: Any
    rng: Any

    def allowed_indices(self, text: AttackedText) -> set[int]: ...

    def candidates(self, text: AttackedText, indices=None, deferred: bool = False) -> list[AttackedText]: ...

    def first_acceptable(self, results: list[GoalResult], current: AttackedText) -> GoalResult | None: ...

    def acceptable(self, results: list[GoalResult], count: int,
                   current: AttackedText | None = None) -> list[GoalResult]: ...


class SearchMethod:
    """Base class: ``search(attack, initial) -> best GoalResult found``."""

    def search(self, attack: AttackParts, initial: GoalResult) -> GoalResult:
        """Search from ``initial`` (the original text's result) using ``attack``'s parts."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class GreedyWordSwapWIR(SearchMethod):
    """Greedy search over words ordered by importance.

    Args:
        wir_method: ``delete``, ``unk``, ``weighted-saliency`` or ``random``.
        lazy_constraints: score a word's candidates before checking the expensive constraints
            (sentence similarity), then check them in score order until one passes. The word
            gets the same replacement as when every candidate is filtered first; the query
            count then includes candidates the expensive constraints reject.

    Raises:
        ValueError: for an unknown ``wir_method`` (the accepted ones are listed).
    """

    WIR_METHODS = ("delete", "unk", "weighted-saliency", "random")

    def __init__(self, wir_method: str = "unk", lazy_constraints: bool = False):
        if wir_method not in self.WIR_METHODS:
            raise ValueError(f"unknown wir_method {wir_method!r}; accepted: {', '.join(self.WIR_METHODS)}")
        self.wir_method = wir_method
        self.lazy_constraints = lazy_constraints

    def rank(self, attack: AttackParts, initial: GoalResult, indices: list[int]) -> list[int]:
        """``indices`` ordered from the most to the least important word."""
        text = initial.text
        if self.wir_method == "random":
            order = list(indices)
            attack.rng.shuffle(order)
            return order
        if self.wir_method == "delete":
            probes = [text.delete_word(i) for i in indices]
        else:
            probes = [text.replace_word(i, attack.goal.victim.unk_token) for i in indices]
        results = attack.goal.evaluate(probes)
        scores = np.full(len(indices), -np.inf)
        scores[:len(results)] = [r.score for r in results]
        if self.wir_method == "weighted-saliency":
            saliency = np.where(np.isfinite(scores), scores, -1e9)
            weights = np.exp(saliency - saliency.max())
            weights /= weights.sum()
            per_index = {i: attack.candidates(text, [i]) for i in indices}
            flat = [c for i in indices for c in per_index[i]]
            scored = attack.goal.evaluate(flat)
            best_gain, pos = {}, 0
            for i in indices:
                n = len(per_index[i])
                chunk = scored[pos:pos + n]
                pos += n
                best_gain[i] = max((r.score for r in chunk), default=initial.score) - initial.score
            scores = np.array([weights[k] * best_gain[i] if np.isfinite(scores[k]) else -np.inf
                               for k, i in enumerate(indices)])
        order = np.argsort(-scores, kind="stable")
        return [indices[k] for k in order]

    def search(self, attack: AttackParts, initial: GoalResult) -> GoalResult:
        indices = sorted(attack.allowed_indices(initial.text))
        if not indices:
            return initial
        order = self.rank(attack, initial, indices)
        current = initial
        for i in order:
            if attack.goal.budget_exhausted:
                break
            candidates = attack.candidates(current.text, [i], deferred=self.lazy_constraints)
            if not candidates:
                continue
            results = attack.goal.evaluate(candidates)
            if not results:
                break
            if self.lazy_constraints:
                best = attack.first_acceptable(results, current.text)
                if best is None:
                    continue
            else:
                best = max(results, key=lambda r: r.score)
            if best.score > current.score:
                current = best
            if current.succeeded:
                break
        return current


class BeamSearch(SearchMethod):
    """Beam search over word replacements.

    Args:
        beam_width: texts kept per iteration (1 is plain greedy search).
        max_iterations: expansions at most (each changes one more word); None: until the
            constraints leave no candidate.
        return_best_seen: return the best text seen over all iterations (True), or the best
            of the last iteration (False: the SAME reference code).
        lazy_constraints: check the expensive constraints (sentence similarity) only on the
            candidates the search keeps (the first success, the beam), best first, instead of
            on every candidate: the same texts are kept, for far fewer encoder calls.

    Raises:
        ValueError: for ``beam_width < 1`` or ``max_iterations < 1``.
    """

    def __init__(self, beam_width: int = 5, max_iterations: int | None = 10, return_best_seen: bool = True,
                 lazy_constraints: bool = False):
        if beam_width < 1 or (max_iterations is not None and max_iterations < 1):
            raise ValueError(f"beam_width={beam_width} and max_iterations={max_iterations} must be >= 1")
        self.beam_width = beam_width
        self.max_iterations = max_iterations
        self.return_best_seen = return_best_seen
        self.lazy_constraints = lazy_constraints

    def expand(self, attack: AttackParts, beam: list[GoalResult]) -> list[AttackedText]:
        """All candidates of every beam text, without repeats."""
        seen, out = {b.text.text for b in beam}, []
        for b in beam:
            for c in attack.candidates(b.text, deferred=self.lazy_constraints):
                if c.text not in seen:
                    seen.add(c.text)
                    out.append(c)
        return out

    def score(self, attack: AttackParts, candidates: list[AttackedText]) -> list[GoalResult]:
        """The goal's results for ``candidates`` (fewer when the query budget runs out)."""
        return attack.goal.evaluate(candidates)

    def rank_key(self, result: GoalResult) -> Any:
        """Sort key of a candidate in the beam (higher is better): its goal score."""
        return result.score

    def search(self, attack: AttackParts, initial: GoalResult) -> GoalResult:
        beam, best = [initial], initial
        iterations = math.inf if self.max_iterations is None else self.max_iterations
        step = 0
        while step < iterations and not attack.goal.budget_exhausted:
            step += 1
            candidates = self.expand(attack, beam)
            if not candidates:
                break
            results = self.score(attack, candidates)
            if not results:
                break
            done = [r for r in results if r.succeeded]
            if self.lazy_constraints:
                done = attack.acceptable(done, 1)
            if done:  # the first (acceptable) success in candidate order
                return done[0]
            results.sort(key=self.rank_key, reverse=True)  # stable: ties keep candidate order
            beam = attack.acceptable(results, self.beam_width) if self.lazy_constraints else results[:self.beam_width]
            if not beam:
                break
            if beam[0].score > best.score:
                best = beam[0]
        return best if self.return_best_seen else beam[0]
