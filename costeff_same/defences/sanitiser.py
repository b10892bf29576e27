"""Input defence: character-level sanitisation before the victim sees a text.

SAME's character mutations (Chen et al., 2023) and DeepWordBug's edits (Gao et al., 2018)
leave a word that no dictionary holds: a Cyrillic look-alike in place of a Latin letter
(TextBugger's homoglyphs, Li et al., 2019), two letters swapped, one inserted or deleted.
The sanitiser undoes them in two steps, each with a well-kept library (the idea of
cleaning the input before the model is WAFFLE's, Coalson et al., 2023, who clean with a
large language model; here with a dictionary, as spelling-correction defences against
character attacks do, Pruthi et al., 2019):

1. **homoglyph folding**: every character that Unicode's confusables table
   (``confusable_homoglyphs``, from the Unicode Consortium's ``confusables.txt``) lists as a
   look-alike of one ASCII letter is replaced by that letter (:func:`homoglyph_table`), and
   every other character by its Unicode NFKC normal form (full-width and mathematical
   letters become ASCII), folded by the table again;
2. **spelling correction**: every run of letters and digits (with a letter, of at least
   three characters) that the dictionary does not hold is
   replaced by the dictionary word nearest in edit distance (at most ``max_distance``,
   the most frequent among the nearest; ``symspellpy``, Garbe's symmetric-delete
   algorithm), keeping its case; a word with no dictionary word that near is kept.

The dictionary is built from the training split (each lower-cased word with its count),
so a clean training sentence is left unchanged (``tests/test_defences.py`` counts them).
Word swaps to real words pass through: the sanitiser only defends the character level.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from symspellpy import SymSpell, Verbosity

from costeff_same.attacks.transformations import match_case

#: a run of letters and digits (any script): the unit the sanitiser corrects (a digit may stand for a letter)
WORD = re.compile(r"[^\W_]+")
#: runs shorter than this are never corrected (too many dictionary words lie one edit away)
MIN_CORRECTED = 3


@functools.lru_cache(maxsize=1)
def homoglyph_table() -> dict[str, str]:
    """Unicode's confusables folded onto ASCII letters: ``{character: ascii letter}``.

    A non-ASCII character is mapped to an ASCII letter when the confusables table lists
    that letter among its look-alikes (one character, directly). Where it lists several
    (a character that looks like both ``l`` and ``I``), the lower-case one first, then
    the alphabetically first.

    Returns:
        About 1,200 entries (Cyrillic ``а`` -> ``a``, Greek ``ο`` -> ``o``, ...).
    """
    from confusable_homoglyphs.confusables import confusables_data

    table = {}
    for char, looks in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        letters = sorted({x["c"] for x in looks if len(x["c"]) == 1 and x["c"].isascii() and x["c"].isalpha()},
                         key=lambda c: (not c.islower(), c))
        if letters:
            table[char] = letters[0]
    return table


def fold_homoglyphs(text: str) -> str:
    """Replace every character of :func:`homoglyph_table` by its letter, and NFKC-normalise the others
    (whose normal forms are folded by the table too)."""
    table = homoglyph_table()
    return "".join(table[c] if c in table else "".join(table.get(n, n) for n in unicodedata.normalize("NFKC", c))
                   for c in text)


class Sanitiser:
    """Homoglyph folding and dictionary spelling correction of a text.

    Args:
        sentences: the training sentences the dictionary is built from (their lower-cased
            letter runs, with their counts).
        max_distance: the largest edit distance corrected (Damerau-Levenshtein; 1 or 2).
        min_count: dictionary words seen at least this often.

    Attributes:
        dictionary_size: words in the dictionary.

    Raises:
        ValueError: for ``max_distance`` outside 1..2, ``min_count < 1`` or no sentences.
    """

    def __init__(self, sentences: Iterable[str], max_distance: int = 2, min_count: int = 1):
        if max_distance not in (1, 2) or min_count < 1:
            raise ValueError(f"max_distance={max_distance} must be 1 or 2 and min_count={min_count} >= 1")
        counts = Counter(w.lower() for s in sentences for w in WORD.findall(fold_homoglyphs(s)))
        words = {w: c for w, c in counts.items() if c >= min_count}
        if not words:
            raise ValueError("the sanitiser's dictionary is empty: give it training sentences")
        self.max_distance = max_distance
        self._spell = SymSpell(max_dictionary_edit_distance=max_distance, prefix_length=7)
        for word, count in words.items():
            self._spell.create_dictionary_entry(word, count)
        self._known = frozenset(words)
        self.dictionary_size = len(words)
        self._correct = functools.lru_cache(maxsize=200_000)(self._correct_word)

    def _correct_word(self, word: str) -> str:
        lower = word.lower()
        if lower in self._known or len(word) < MIN_CORRECTED or not any(c.isalpha() for c in word):
            return word
        found = self._spell.lookup(lower, Verbosity.TOP, max_edit_distance=self.max_distance)
        return match_case(found[0].term, word) if found else word

    def __call__(self, text: str) -> str:
        """The sanitised ``text``: homoglyphs folded, then unknown letter runs corrected."""
        return WORD.sub(lambda m: self._correct(m.group()), fold_homoglyphs(text))

    def changed(self, texts: Iterable[str]) -> int:
        """How many of ``texts`` the sanitiser changes."""
        return sum(self(t) != t for t in texts)
