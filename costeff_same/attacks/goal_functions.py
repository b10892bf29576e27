"""Goal functions: what an attack wants from the victim, as a score to climb.

A goal function scores a candidate text from the victim's answer (higher is closer to the
goal) and says when the goal is reached. It also owns the per-example query count and
query budget: once the budget is spent, :meth:`GoalFunction.evaluate` answers only the
texts that fit and the search stops (TextAttack's ``query_budget``, Morris et al., 2020).

- :class:`UntargetedClassification`: flip the served prediction; score ``1 - p_exit(y)``
  (the probability of the true class at the exit the text takes). Used by PWWS,
  TextFooler and DeepWordBug.
- :class:`Slowdown`: SAME's goal (Chen et al., 2023): score ``exit_layer / L``; reached when
  the text exits at the target layer (by default the last). Texts that already exit there
  are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from costeff_same.attacks.text import AttackedText
from costeff_same.attacks.victim import MultiExitVictim, VictimOutput


@dataclass
class GoalResult:
    """A text, the victim's answer for it and its goal score.

    Attributes:
        text: the text.
        output: the victim's answer.
        score: the goal score (higher is closer to the goal).
        succeeded: True when the goal is reached.
    """

    text: AttackedText
    output: VictimOutput
    score: float
    succeeded: bool


class GoalFunction:
    """Base class: scores victim answers and counts queries against a budget.

    Args:
        victim: the victim.
        query_budget: model evaluations allowed per example (cached answers are free);
            None for no limit.

    Raises:
        ValueError: for a budget below 1.
    """

    #: whether scoring needs every exit's probabilities (a forward through all layers)
    needs_all_exits = False

    def __init__(self, victim: MultiExitVictim, query_budget: int | None = None):
        if query_budget is not None and query_budget < 1:
            raise ValueError(f"query_budget={query_budget} must be >= 1 or None (no limit)")
        self.victim = victim
        self.query_budget = query_budget
        self.label: int | None = None
        self._start_queries = 0
        self.budget_exhausted = False

    # -- to be defined by each goal -------------------------------------------------------

    def score(self, output: VictimOutput) -> float:
        """Goal score of one answer (higher is closer to the goal)."""
        raise NotImplementedError

    def is_goal_complete(self, output: VictimOutput) -> bool:
        """True when the answer reaches the goal."""
        raise NotImplementedError

    # -- per example ------------------------------------------------------------------------

    @property
    def num_queries(self) -> int:
        """Model evaluations spent on the current example."""
        return self.victim.num_queries - self._start_queries

    def start(self, text: AttackedText, label: int) -> GoalResult:
        """Begin a new example: reset the query count, evaluate the original text.

        Args:
            text: the original text.
            label: its ground-truth class.

        Returns:
            The original text's :class:`GoalResult` (its query counts).
        """
        self.label = int(label)
        self._start_queries = self.victim.num_queries
        self.budget_exhausted = False
        return self._results([text])[0]

    def should_skip(self, initial: GoalResult) -> bool:
        """True when the example is not attacked (the goal already holds for the original)."""
        return initial.succeeded

    def evaluate(self, texts: Sequence[AttackedText]) -> list[GoalResult]:
        """Score candidate texts in one batched query, within the budget.

        Returns:
            The results of the texts that fit in the remaining budget, in order (all of them
            when there is no budget). Sets :attr:`budget_exhausted` when some did not fit
            or the budget is now spent.
        """
        if self.label is None:
            raise RuntimeError("call start(text, label) before evaluate()")
        texts = list(texts)
        if self.query_budget is not None:
            left = self.query_budget - self.num_queries
            keep, new = [], set()
            for t in texts:
                fresh = not self.victim.is_cached(t.text, self.needs_all_exits) and t.text not in new
                if fresh:
                    if left <= 0:
                        self.budget_exhausted = True
                        break
                    left -= 1
                    new.add(t.text)
                keep.append(t)
            texts = keep
            if left <= 0:
                self.budget_exhausted = True
        return self._results(texts) if texts else []

    def _results(self, texts: Sequence[AttackedText]) -> list[GoalResult]:
        outputs = self.victim(texts, all_exits=self.needs_all_exits)
        return [GoalResult(t, o, float(self.score(o)), bool(self.is_goal_complete(o))) for t, o in zip(texts, outputs)]


class UntargetedClassification(GoalFunction):
    """Flip the served prediction away from the true label.

    Score: ``1 - p(y)`` at the exit the text takes. Reached when the served prediction
    differs from ``y``. Examples the victim already gets wrong are skipped.
    """

    def score(self, output: VictimOutput) -> float:
        return 1.0 - float(output.probs[self.label])

    def is_goal_complete(self, output: VictimOutput) -> bool:
        return output.prediction != self.label


class Slowdown(GoalFunction):
    """SAME's slowdown goal: make the text exit as late as possible.

    Score: ``exit_layer / L``. Reached when the exit layer is at least ``target_layer``
    (default L, the last layer). Examples that already exit there are skipped.

    Args:
        victim: the victim.
        query_budget: as :class:`GoalFunction`.
        target_layer: the exit layer that counts as success (1..L; None: L).

    Raises:
        ValueError: for a target layer outside 1..L.
    """

    def __init__(self, victim: MultiExitVictim, query_budget: int | None = None, target_layer: int | None = None):
        super().__init__(victim, query_budget)
        depth = victim.num_layers
        self.target_layer = depth if target_layer is None else int(target_layer)
        if not 1 <= self.target_layer <= depth:
            raise ValueError(f"target_layer={target_layer} must be in 1..{depth}")

    def score(self, output: VictimOutput) -> float:
        return output.exit_layer / self.victim.num_layers

    def is_goal_complete(self, output: VictimOutput) -> bool:
        return output.exit_layer >= self.target_layer
