"""An attack = goal function + constraints + transformation + search method (TextAttack's shape).

:class:`Attack` composes the four parts (Morris et al., 2020). A published recipe is a
module ``<method>_<author>_<year>.py`` whose ``build(victim)`` returns an :class:`Attack`.
:meth:`Attack.attack` runs it on one example and returns an :class:`AttackResult`:

- ``skipped``: the goal already holds for the original text (a misclassified example for
  an accuracy attack, a text exiting at the last layer for SAME); nothing is attacked;
- ``succeeded``: the search reached the goal;
- ``failed``: it did not (no candidates left, or the query budget was spent); the
  result still holds the best text found, which is what an attacker would submit.

Randomness (character edits, random word order) comes from one ``random.Random`` seeded per
example from ``(seed, text)``: a run is reproducible, and an example's result does not
depend on which examples ran before it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from costeff_same.attacks.constraints import Constraint
from costeff_same.attacks.goal_functions import GoalFunction, GoalResult
from costeff_same.attacks.search import SearchMethod
from costeff_same.attacks.text import AttackedText, unique_texts
from costeff_same.attacks.transformations import Transformation


@dataclass
class AttackResult:
    """The outcome of attacking one example.

    Attributes:
        original_text: the example's text.
        perturbed_text: the best text found (the original for a skipped example).
        label: the ground-truth class.
        status: ``succeeded``, ``failed`` or ``skipped``.
        original_prediction: served prediction on the original.
        perturbed_prediction: served prediction on the perturbed text.
        original_exit_layer: exit layer (1..L) of the original.
        perturbed_exit_layer: exit layer of the perturbed text.
        original_score: goal score of the original.
        perturbed_score: goal score of the perturbed text.
        num_words: words in the original.
        words_changed: words that differ from the original.
        perturbation_rate: ``words_changed / num_words``.
        changed_indices: the indices of those words.
        original_words: the original words at those indices.
        new_words: the words that replaced them.
        num_queries: model evaluations spent (cached answers are free).
        seconds: wall-clock of this example.
        budget_exhausted: the query budget stopped the search.
    """

    original_text: str
    perturbed_text: str
    label: int
    status: str
    original_prediction: int
    perturbed_prediction: int
    original_exit_layer: int
    perturbed_exit_layer: int
    original_score: float
    perturbed_score: float
    num_words: int
    words_changed: int
    perturbation_rate: float
    changed_indices: list[int]
    original_words: list[str]
    new_words: list[str]
    num_queries: int
    seconds: float
    budget_exhausted: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttackResult:
        """Rebuild from :meth:`to_dict`'s output."""
        return cls(**data)


class Attack:
    """An attack: what it wants, what it may change, how it changes it, how it searches.

    The arguments come in TextAttack's order, ``Attack(goal_function, constraints,
    transformation, search_method)`` (Morris et al., 2020).

    Args:
        goal: the goal function (holds the victim and the query budget).
        constraints: every candidate must satisfy all of them; list cheap ones first
            (they run in order, each on the survivors of the previous).
        transformation: proposes candidate texts.
        search: the search method.
        name: the recipe's name, for results.
    """

    def __init__(self, goal: GoalFunction, constraints: Sequence[Constraint], transformation: Transformation,
                 search: SearchMethod, name: str = "attack"):
        self.goal = goal
        self.transformation = transformation
        self.constraints = list(constraints)
        self.search = search
        self.name = name
        self.rng = random.Random(0)
        self.original: AttackedText | None = None

    @property
    def victim(self):
        """The goal function's victim."""
        return self.goal.victim

    def allowed_indices(self, text: AttackedText) -> set[int]:
        """Word indices every constraint allows to replace next."""
        allowed = set(range(text.num_words))
        for constraint in self.constraints:
            allowed &= constraint.allowed_indices(text)
        return allowed

    def filter(self, candidates: Sequence[AttackedText], current: AttackedText,
               deferred: bool = False) -> list[AttackedText]:
        """The candidates that satisfy every constraint (with ``deferred``: every cheap one)."""
        kept = list(candidates)
        for constraint in self.constraints:
            if not kept:
                break
            if deferred and constraint.expensive:
                continue
            kept = [c for c, ok in zip(kept, constraint.check(kept, self.original, current)) if ok]
        return kept

    def candidates(self, text: AttackedText, indices: Collection[int] | None = None,
                   deferred: bool = False) -> list[AttackedText]:
        """Constraint-satisfying candidates one replacement away from ``text``.

        Args:
            text: the current text.
            indices: only replace these words (still subject to the constraints).
            deferred: leave the expensive constraints (``Constraint.expensive``) unchecked;
                the caller must pass its pick through :meth:`first_acceptable`.
        """
        allowed = self.allowed_indices(text)
        if indices is not None:
            allowed &= set(indices)
        if not allowed:
            return []
        return self.filter(unique_texts(self.transformation(text, allowed), exclude=text), text, deferred)

    def acceptable(self, results: Sequence[GoalResult], count: int, current: AttackedText | None = None,
                   chunk: int = 8) -> list[GoalResult]:
        """The first ``count`` of ``results`` (in their order) whose texts satisfy the expensive constraints.

        The expensive constraints are checked lazily: the first result alone (it usually
        passes), then ``chunk`` at a time, until ``count`` have passed. A search that keeps the
        best ``count`` candidates gets the same ones as when every candidate is filtered first,
        at a fraction of the cost.

        Args:
            results: scored candidates, best first (the caller's order).
            count: results wanted.
            current: the text the candidates were made from (None: the original), for a
                constraint that compares against it.
        """
        expensive = [c for c in self.constraints if c.expensive]
        if not expensive:
            return list(results[:count])
        current = current if current is not None else self.original
        bounds = [0, 1, *range(1 + chunk, len(results) + chunk, chunk)]
        out: list[GoalResult] = []
        for start, end in zip(bounds, bounds[1:]):
            part = results[start:end]
            if not part:
                break
            ok = [True] * len(part)
            for constraint in expensive:
                checks = constraint.check([r.text for r in part], self.original, current)
                ok = [a and b for a, b in zip(ok, checks)]
            out += [r for r, good in zip(part, ok) if good]
            if len(out) >= count:
                break
        return out[:count]

    def first_acceptable(self, results: Sequence[GoalResult], current: AttackedText,
                         chunk: int = 8) -> GoalResult | None:
        """The best-scoring result whose text satisfies the expensive constraints, or None
        (:meth:`acceptable` of the results in descending score order)."""
        ranked = sorted(results, key=lambda r: r.score, reverse=True)
        found = self.acceptable(ranked, 1, current, chunk)
        return found[0] if found else None

    def attack(self, text: str, label: int, seed: int = 0) -> AttackResult:
        """Attack one example.

        Args:
            text: the example's text.
            label: its ground-truth class.
            seed: with ``text``, seeds every random choice of this example.

        Returns:
            An :class:`AttackResult`.
        """
        started = time.perf_counter()
        self.rng = random.Random(f"{seed}|{text}")
        self.transformation.set_rng(self.rng)
        self.original = AttackedText(text)
        initial = self.goal.start(self.original, label)
        if self.goal.should_skip(initial):
            final, status = initial, "skipped"
        else:
            final = self.search.search(self, initial)
            status = "succeeded" if final.succeeded else "failed"
        return self._result(initial, final, status, label, time.perf_counter() - started)

    def attack_many(self, examples: Iterable[tuple[str, int]], seed: int = 0) -> list[AttackResult]:
        """Attack every ``(text, label)`` pair, in order."""
        return [self.attack(text, label, seed) for text, label in examples]

    def _result(self, initial: GoalResult, final: GoalResult, status: str, label: int, seconds: float) -> AttackResult:
        changed = sorted(final.text.changed_indices)
        return AttackResult(
            original_text=initial.text.text, perturbed_text=final.text.text, label=int(label), status=status,
            original_prediction=initial.output.prediction, perturbed_prediction=final.output.prediction,
            original_exit_layer=initial.output.exit_layer, perturbed_exit_layer=final.output.exit_layer,
            original_score=initial.score, perturbed_score=final.score,
            num_words=initial.text.num_words, words_changed=len(changed),
            perturbation_rate=final.text.perturbation_rate, changed_indices=changed,
            original_words=[final.text.original_words[i] for i in changed],
            new_words=[final.text.words[i] for i in changed],
            num_queries=self.goal.num_queries, seconds=seconds, budget_exhausted=self.goal.budget_exhausted,
        )

    def describe(self) -> dict[str, Any]:
        """The attack's parts as plain data: goal, query budget, transformation, constraints, search."""
        return {"name": self.name, "goal": type(self.goal).__name__, "query_budget": self.goal.query_budget,
                "transformation": repr(self.transformation),
                "constraints": [repr(c) for c in self.constraints], "search": repr(self.search)}

    def __repr__(self) -> str:
        parts = "\n  ".join([f"goal: {type(self.goal).__name__}(query_budget={self.goal.query_budget})",
                             f"transformation: {type(self.transformation).__name__}",
                             *[f"constraint: {c!r}" for c in self.constraints], f"search: {self.search!r}"])
        return f"Attack {self.name}:\n  {parts}"
