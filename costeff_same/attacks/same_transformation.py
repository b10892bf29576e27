"""SAME's transformation: gradient-guided word swaps and character mutations (Chen et al., ACL 2023, section 3).

The candidates of one SAME expansion (the methods page): the loss gradient over all exits
(:mod:`costeff_same.attacks.same_loss`) at each token's word-embedding row ranks word swaps
to first order (HotFlip-style), and the words with the largest gradient norm get character
mutations. :mod:`costeff_same.attacks.same_chen_2023` composes them into the recipe.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import torch

from costeff_same.attacks.constraints import StopwordModification
from costeff_same.attacks.same_loss import SameLoss
from costeff_same.attacks.text import AttackedText
from costeff_same.attacks.transformations import CharacterEdit, Transformation, match_case
from costeff_same.attacks.victim import MultiExitVictim

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
        neighbours: ``word -> allowed replacements`` (the constrained variant: a word may only
            become one of its near neighbours); None: the whole swap vocabulary (the paper).

    Raises:
        ValueError: when both levels are off or ``top_n``/``top_k`` < 1.
    """

    def __init__(self, gradients: SameGradients, word_level: bool = True, char_level: bool = True,
                 top_n: int = 100, top_k: int = 10, multi_piece: bool = True,
                 neighbours: Callable[[str], Sequence[str]] | None = None):
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
        self.neighbours = neighbours
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

    @functools.cached_property
    def vocabulary_index(self) -> dict[str, int]:
        """Row of each swap-vocabulary word in :attr:`vocabulary`."""
        return {w: k for k, w in enumerate(self.vocabulary[1])}

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
        index = self.vocabulary_index
        for col, i in enumerate(words):
            if self.neighbours is not None:  # the constrained variant: only the word's near neighbours
                allowed = [index[w] for w in self.neighbours(text.words[i].lower()) if w in index]
                column = torch.full_like(scores[:, col], math.inf)
                column[allowed] = scores[allowed, col]
                scores[:, col] = column
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
