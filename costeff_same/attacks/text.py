"""The text under attack: words, the separators between them, and what has been changed.

TextAttack's ``AttackedText`` in miniature (Morris et al., 2020). A text is split into
**words** (maximal runs that start with a letter or digit and continue with letters,
digits, ``'`` or ``-``; Cyrillic and Greek letters count, so a homoglyph edit keeps a word
one word) and the **separators** around them, so that replacing a word keeps the
punctuation and spacing of the rest. Word positions never move: a replacement is always
one word (an empty string only for the leave-one-out texts of word-importance ranking),
so "word ``i``" means the same word across a whole attack, and each word carries a count
of how often it has been modified (for the no-repeat constraint).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

WORD_PATTERN = re.compile(r"[^\W_][\w'\-]*")


class AttackedText:
    """An immutable text split into words, with the modifications made to it.

    Args:
        text: the original text.

    Attributes:
        words: ``(n_words,)`` the current words.
        original_words: ``(n_words,)`` the words of the original text.
        modification_counts: ``(n_words,)`` how many times each word was replaced.
    """

    __slots__ = ("_separators", "_text", "modification_counts", "original_words", "words")

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"AttackedText needs a str, got {type(text).__name__}")
        separators, words, last = [], [], 0
        for match in WORD_PATTERN.finditer(text):
            separators.append(text[last:match.start()])
            words.append(match.group())
            last = match.end()
        separators.append(text[last:])
        self._separators = tuple(separators)
        self.words = tuple(words)
        self.original_words = self.words
        self.modification_counts = (0,) * len(words)
        self._text = text

    @classmethod
    def _build(cls, separators, words, original_words, counts) -> AttackedText:
        new = cls.__new__(cls)
        new._separators, new.words = separators, tuple(words)
        new.original_words, new.modification_counts = original_words, tuple(counts)
        new._text = None
        return new

    # -- reading --------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The text with the current words."""
        if self._text is None:
            parts = [self._separators[0]]
            for word, sep in zip(self.words, self._separators[1:]):
                parts += [word, sep]
            self._text = "".join(parts)
        return self._text

    @property
    def num_words(self) -> int:
        """Number of words."""
        return len(self.words)

    @property
    def changed_indices(self) -> frozenset[int]:
        """Indices of the words that differ from the original."""
        return frozenset(i for i, (a, b) in enumerate(zip(self.words, self.original_words)) if a != b)

    @property
    def perturbation_rate(self) -> float:
        """Changed words / words (0 for a text without words)."""
        return len(self.changed_indices) / self.num_words if self.num_words else 0.0

    def word_spans(self) -> list[tuple[int, int]]:
        """``(start, end)`` character offsets of every word in :attr:`text`."""
        spans, pos = [], len(self._separators[0])
        for word, sep in zip(self.words, self._separators[1:]):
            spans.append((pos, pos + len(word)))
            pos += len(word) + len(sep)
        return spans

    def window(self, center: int, size: int) -> str:
        """The text of the ``size`` words around word ``center`` (the whole text if shorter)."""
        if size >= self.num_words:
            return self.text
        start = min(max(0, center - size // 2), self.num_words - size)
        spans = self.word_spans()
        return self.text[spans[start][0]:spans[start + size - 1][1]]

    def diff_indices(self, other: AttackedText) -> list[int]:
        """Indices where this text's words differ from ``other``'s (same original)."""
        return [i for i, (a, b) in enumerate(zip(self.words, other.words)) if a != b]

    # -- changing -------------------------------------------------------------------------

    def replace_words(self, indices: Sequence[int], new_words: Sequence[str]) -> AttackedText:
        """A new text with ``words[indices[k]] = new_words[k]``; counts each as a modification.

        Raises:
            IndexError: for an index outside ``0..n_words-1``.
            ValueError: when a new word contains whitespace (it would not stay one word).
        """
        words, counts = list(self.words), list(self.modification_counts)
        for i, word in zip(indices, new_words):
            if not 0 <= i < len(words):
                raise IndexError(f"word index {i} outside 0..{len(words) - 1}")
            if any(c.isspace() for c in word):
                raise ValueError(f"replacement {word!r} for word {i} contains whitespace")
            words[i] = word
            counts[i] += 1
        return AttackedText._build(self._separators, words, self.original_words, counts)

    def replace_word(self, index: int, new_word: str) -> AttackedText:
        """A new text with word ``index`` replaced by ``new_word``."""
        return self.replace_words([index], [new_word])

    def delete_word(self, index: int) -> AttackedText:
        """A new text with word ``index`` left out (for leave-one-out word importance)."""
        return self.replace_words([index], [""])

    # -- identity -------------------------------------------------------------------------

    def __eq__(self, other) -> bool:
        return isinstance(other, AttackedText) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"AttackedText({self.text!r})"


def unique_texts(texts: Iterable[AttackedText], exclude: AttackedText | None = None) -> list[AttackedText]:
    """``texts`` without repeats (first kept) and without ``exclude``, in order."""
    seen = {exclude.text} if exclude is not None else set()
    out = []
    for t in texts:
        if t.text not in seen:
            seen.add(t.text)
            out.append(t)
    return out


def highlight_html(result: dict[str, Any]) -> str:
    """An attack result's original sentence as HTML: each changed word struck through, its replacement in bold.

    Args:
        result: a per-example attack record with ``original_text``, ``changed_indices``
            (word indices, ascending) and ``new_words`` (their replacements).

    Raises:
        IndexError: when a changed index is not a word index of ``original_text``.
    """
    text = AttackedText(result["original_text"])
    spans = text.word_spans()
    out, last = [], 0
    for i, new in zip(result["changed_indices"], result["new_words"]):
        start, end = spans[i]
        out.append(html.escape(text.text[last:start]))
        out.append(f"<del>{html.escape(text.text[start:end])}</del> <b>{html.escape(new)}</b>")
        last = end
    out.append(html.escape(text.text[last:]))
    return "".join(out)
