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
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from costeff_same.attacks.attack import Attack
from costeff_same.attacks.constraints import (
    MaxModificationRate,
    MinWordLength,
    RepeatModification,
    StopwordModification,
)
from costeff_same.attacks.goal_functions import GoalResult, Slowdown
from costeff_same.attacks.same_loss import LAMBDA, SameLoss
from costeff_same.attacks.search import BeamSearch
from costeff_same.attacks.text import AttackedText
from costeff_same.attacks.transformations import CharacterEdit, Transformation, match_case
from costeff_same.attacks.victim import MultiExitVictim

NAME = "same"

#: the character mutations of SAME's character level
CHAR_OPERATIONS = ("swap", "insert", "delete", "homoglyph")


def _stopwords() -> frozenset[str]:
    return StopwordModification().stopwords


def is_letter_word(word: str) -> bool:
    """True for a word made only of letters (SAME skips non-letter tokens)."""
    return word.isalpha()


# -- gradients ----------------------------------------------------------------------------------

@dataclass
class TextGradient:
    """The SAME loss gradient of one text, at its tokens' word-embedding rows.

    Attributes:
        text: the text.
        input_ids: ``(seq_len,)`` its token ids (special tokens included, no padding).
        grad: ``(seq_len, hidden)`` the gradient used to rank swaps: ``dL/de_j`` of this
            text (fresh), or, with the reference quirks, the accumulated embedding-weight
            gradient read at each token's row.
        word_positions: for every word, its token positions (``[]`` when truncated away).
        exit_layer: the exit layer (1..L) the text takes (it sets the dynamic weights).
    """

    text: AttackedText
    input_ids: torch.Tensor
    grad: torch.Tensor
    word_positions: list[list[int]]
    exit_layer: int


class SameGradients:
    """Computes SAME's loss gradients for texts, fresh or accumulated as the reference does.

    Args:
        victim: the victim (white-box gradient access).
        loss: the SAME loss.
        reference_quirks: reproduce the reference code's un-zeroed gradient: every call adds
            each text's gradient into one ``(vocab, hidden)`` accumulator (the embedding
            weight's ``.grad``, never reset, across expansions and examples) and reads the
            accumulated rows at the text's token ids.

    Attributes:
        calls: gradient computations so far (one per text).
        accumulated: ``(vocab, hidden)`` the accumulator (None until the first call with
            the quirks on).
    """

    def __init__(self, victim: MultiExitVictim, loss: SameLoss, reference_quirks: bool = False):
        self.victim = victim
        self.loss = loss
        self.reference_quirks = reference_quirks
        self.calls = 0
        self.accumulated: torch.Tensor | None = None

    def __call__(self, texts: Sequence[AttackedText]) -> list[TextGradient]:
        """The gradients of ``texts`` (one batched forward and backward through all exits).

        With the quirks on, texts are added to the accumulator in order, and each reads it
        right after its own addition (as a loop of ``backward()`` calls without
        ``zero_grad()`` would).
        """
        texts = list(texts)
        out = self.victim.gradients(texts, self.loss)
        results = []
        for row, text in enumerate(texts):
            keep = out.attention_mask[row].bool()
            ids = out.input_ids[row][keep]
            grad = out.grad[row][keep]
            if self.reference_quirks:
                if self.accumulated is None:
                    self.accumulated = torch.zeros(self.victim.word_embeddings.shape)
                # Reference quirk: the embedding gradient is summed into the weight's .grad
                # and never zeroed; a token's gradient is its (accumulated) row.
                self.accumulated.index_add_(0, ids, grad)
                grad = self.accumulated[ids].clone()
            self.calls += 1
            results.append(TextGradient(text, ids, grad, self.victim.word_alignment(text),
                                        int(out.exit_layer[row])))
        return results

    def reset(self) -> None:
        """Zero the accumulator (what the fixed attack does, implicitly, before every expansion)."""
        self.accumulated = None


# -- the transformation --------------------------------------------------------------------------

class SameTransformation(Transformation):
    """SAME's candidates: gradient-guided word swaps, then character mutations.

    Each call computes the loss gradient of the text afresh (see :class:`SameGradients`
    for the reference quirk), then proposes, in this order:

    1. word swaps (``word_level``): the ``top_n`` (word, vocabulary word) pairs whose
       first-order loss change ``mean_p (e_v - e_{w_p}) . g_p`` (over the word's pieces
       ``p``; HotFlip's ``(E g_j)[v] - (E g_j)[w_j]`` for a one-piece word) is most
       negative, most negative first. The vocabulary is the tokenizer's one-piece,
       letters-only, non-stopword entries of at least two letters;
    2. character mutations (``char_level``): for the ``top_k`` words with the largest
       gradient norm ``||mean_p g_p||``, every neighbour swap, random-letter insertion,
       deletion and homoglyph substitution; ``top_n`` of them sampled (seeded per example).

    Only letters-only words are touched (SAME skips special and non-letter tokens); the
    attack's constraints decide the rest (stopwords, repeats, budget).

    Args:
        gradients: the gradient provider.
        word_level: propose word swaps.
        char_level: propose character mutations.
        top_n: candidates of each level (100).
        top_k: words mutated at the character level (10).
        multi_piece: let words of several word pieces be swapped (the fix); False is the
            reference's behaviour (only one-piece words).

    Raises:
        ValueError: when both levels are off or ``top_n``/``top_k`` < 1.
    """

    def __init__(self, gradients: SameGradients, word_level: bool = True, char_level: bool = True,
                 top_n: int = 100, top_k: int = 10, multi_piece: bool = True):
        super().__init__()
        if not (word_level or char_level):
            raise ValueError("SAME needs word_level or char_level (or both)")
        if top_n < 1 or top_k < 1:
            raise ValueError(f"top_n={top_n} and top_k={top_k} must be >= 1")
        self.gradients = gradients
        self.word_level = word_level
        self.char_level = char_level
        self.top_n = top_n
        self.top_k = top_k
        self.multi_piece = multi_piece
        self.char_edits = [CharacterEdit(op, random_one=False) for op in CHAR_OPERATIONS]
        self.last_gradient: TextGradient | None = None
        self._prefetched: dict[str, TextGradient] = {}

    def set_rng(self, rng) -> None:
        super().set_rng(rng)
        for edit in self.char_edits:
            edit.set_rng(rng)

    @functools.cached_property
    def vocabulary(self) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """``(ids (Vc,), words, embeddings (Vc, hidden))`` of the swap vocabulary."""
        vocab = self.gradients.victim.tokenizer.get_vocab()
        stop = _stopwords()
        words = sorted((w for w in vocab if w.isalpha() and w.isascii() and len(w) > 1 and w not in stop),
                       key=vocab.get)
        ids = torch.tensor([vocab[w] for w in words], dtype=torch.long)
        return ids, words, self.gradients.victim.word_embeddings[ids].float()

    def eligible(self, text: AttackedText, tg: TextGradient, indices: Collection[int]) -> list[int]:
        """Word indices SAME may touch: allowed, letters only, not truncated away."""
        return [i for i in sorted(indices) if is_letter_word(text.words[i]) and tg.word_positions[i]]

    def word_scores(self, tg: TextGradient, words: Sequence[int]) -> torch.Tensor:
        """``(Vc, len(words))`` first-order loss change of replacing each word by each vocabulary word."""
        _, _, emb = self.vocabulary
        table = self.gradients.victim.word_embeddings
        mean_grads, base = [], []
        for i in words:
            pos = tg.word_positions[i]
            g = tg.grad[pos].float()                                   # (pieces, hidden)
            mean_grads.append(g.mean(0))
            base.append((table[tg.input_ids[pos]].float() * g).sum(-1).mean())
        grads = torch.stack(mean_grads)                                # (n, hidden)
        return emb @ grads.T - torch.stack(base).unsqueeze(0)          # (Vc, n)

    def word_candidates(self, text: AttackedText, tg: TextGradient, words: Sequence[int]) -> list[AttackedText]:
        """The ``top_n`` word swaps, most promising first."""
        if not self.multi_piece:
            # Reference behaviour: a word of several pieces can never be swapped.
            words = [i for i in words if len(tg.word_positions[i]) == 1]
        if not words:
            return []
        ids, vocab_words, _ = self.vocabulary
        scores = self.word_scores(tg, words)
        index = {w: k for k, w in enumerate(vocab_words)}
        for col, i in enumerate(words):
            own = index.get(text.words[i].lower())
            if own is not None:
                scores[own, col] = math.inf
        k = min(self.top_n, scores.numel())
        flat = torch.topk(scores.flatten(), k, largest=False)
        out = []
        for value, pos in zip(flat.values.tolist(), flat.indices.tolist()):
            if math.isinf(value):
                break
            row, col = divmod(pos, len(words))
            out.append(text.replace_word(words[col], match_case(vocab_words[row], text.words[words[col]])))
        return out

    def char_candidates(self, text: AttackedText, tg: TextGradient, words: Sequence[int]) -> list[AttackedText]:
        """``top_n`` character mutations of the ``top_k`` most important words (sampled)."""
        if not words:
            return []
        norms = [float(tg.grad[tg.word_positions[i]].float().mean(0).norm()) for i in words]
        ranked = [words[k] for k in sorted(range(len(words)), key=lambda k: -norms[k])][:self.top_k]
        options = []
        for i in ranked:
            for edit in self.char_edits:
                options += [(i, w) for w in edit.edits(text.words[i])]
        options = list(dict.fromkeys(options))
        if len(options) > self.top_n:
            keep = sorted(self.rng.sample(range(len(options)), self.top_n))
            options = [options[k] for k in keep]
        return [text.replace_word(i, w) for i, w in options]

    def prefetch(self, texts: Sequence[AttackedText]) -> None:
        """Compute the gradients of ``texts`` (a beam) in one batch, for the next calls on them.

        Each text's gradient is that of its own loss (the loss is summed over the batch), so
        only the padding of the batch differs from one text at a time (float rounding). With
        the reference quirks the texts enter the accumulator in order, as one call each would.
        """
        todo = list(dict.fromkeys(texts))
        self._prefetched = {tg.text.text: tg for tg in (self.gradients(todo) if todo else [])}

    def __call__(self, text: AttackedText, indices: Collection[int]) -> list[AttackedText]:
        """SAME's candidates for ``text`` (word swaps first, then character mutations).

        Args:
            text: the current text (a beam entry).
            indices: word indices the constraints allow.

        Returns:
            Candidate texts, each one word away from ``text``.
        """
        tg = self._prefetched.pop(text.text, None) or self.gradients([text])[0]
        self.last_gradient = tg
        words = self.eligible(text, tg, indices)
        out = []
        if self.word_level:
            out += self.word_candidates(text, tg, words)
        if self.char_level:
            out += self.char_candidates(text, tg, words)
        return out


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

    Raises:
        ValueError: as :class:`BeamSearch`, or for ``chunk_size < 1``.
    """

    def __init__(self, beam_width: int = 5, max_iterations: int | None = 10, return_best_seen: bool = True,
                 chunk_size: int | None = 32, tie_break: bool = True):
        super().__init__(beam_width, max_iterations, return_best_seen)
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
            if len(got) < len(chunk) or any(r.succeeded for r in got):
                break
        return results


# -- the recipe ---------------------------------------------------------------------------------

def build(victim: MultiExitVictim, query_budget: int | None = None, lam: float = LAMBDA,
          dynamic_weights: bool = True, word_level: bool = True, char_level: bool = True,
          reference_quirks: bool = False, beam_width: int = 5, max_iterations: int = 10, top_n: int = 100,
          top_k: int = 10, max_rate: float = 0.1, min_words: int = 3, chunk_size: int | None = 32,
          tie_break: bool = True, penalty: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Attack:
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

    Returns:
        The :class:`~costeff_same.attacks.attack.Attack`.

    Raises:
        ValueError: for an out-of-range setting (lambda outside [0, 1], both levels off, ...).
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda={lam} must be in [0, 1]")
    loss = SameLoss(lam=lam, dynamic=dynamic_weights, penalty=penalty)
    transformation = SameTransformation(SameGradients(victim, loss, reference_quirks), word_level, char_level,
                                        top_n, top_k, multi_piece=not reference_quirks)
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
    goal = Slowdown(victim, query_budget=query_budget)
    search = SameBeamSearch(beam_width, max_iterations, return_best_seen=not reference_quirks, chunk_size=chunk_size,
                            tie_break=tie_break)
    return Attack(goal, constraints, transformation, search, name=NAME)
