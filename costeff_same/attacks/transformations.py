"""Transformations: the candidate texts one step of an attack may move to.

Each transformation proposes, for the words it is allowed to touch, replacement words;
every candidate differs from the current text in exactly one word. Which words may be
touched is decided by the attack's constraints (:mod:`costeff_same.attacks.constraints`),
and every candidate is checked against them again afterwards, whatever transformation
made it (unlike TextAttack, where a transformation that does not subclass ``WordSwap``
silently escapes the stopword constraint).

- :class:`WordNetSynonymSwap`: WordNet 3.0 synonyms (PWWS, Ren et al., 2019).
- :class:`EmbeddingNeighbourSwap`: nearest neighbours in a word-embedding space
  (TextFooler, Jin et al., 2020). TextFooler uses counter-fitted word vectors, which
  cannot be fetched offline; :meth:`EmbeddingNeighbourSwap.from_minilm` uses the input
  word embeddings of the packaged all-MiniLM-L6-v2 instead (whole-word WordPiece entries).
- :class:`CharacterEdit`: one character-level edit of a word: neighbour swap, substitution,
  deletion, insertion (DeepWordBug, Gao et al., 2018) and homoglyph substitution
  (TextBugger, Li et al., 2019; SAME's character mutations, Chen et al., 2023).
- :class:`CompositeTransformation`: the union of several.

Random transformations draw from ``self.rng`` (a ``random.Random``), which the attack
re-seeds for every example (:meth:`Transformation.set_rng`), so a run is reproducible.
"""

from __future__ import annotations

import functools
import random
import string
from collections.abc import Collection, Sequence

import numpy as np
import torch

from costeff_same.attacks.resources import load_wordnet, minilm
from costeff_same.attacks.text import AttackedText

#: Latin letters and look-alike letters from other scripts (Cyrillic, Greek, Armenian).
HOMOGLYPHS: dict[str, str] = {
    "a": "\u0430", "c": "\u0441", "d": "\u0501", "e": "\u0435", "g": "\u0261", "h": "\u04bb",
    "i": "\u0456", "j": "\u0458", "k": "\u03ba", "l": "\u04cf", "n": "\u0578", "o": "\u043e",
    "p": "\u0440", "q": "\u051b", "s": "\u0455", "u": "\u057d", "v": "\u0475", "w": "\u051d",
    "x": "\u0445", "y": "\u0443",
}


class Transformation:
    """Base class: candidate texts that each replace one word of the text.

    Subclasses define :meth:`replacements`.
    """

    def __init__(self):
        self.rng = random.Random(0)

    def set_rng(self, rng: random.Random) -> None:
        """Use ``rng`` for every random choice (the attack re-seeds it per example)."""
        self.rng = rng

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_")
                           and isinstance(v, (int, float, str, bool)) and k != "letters")
        return f"{type(self).__name__}({fields})"

    def replacements(self, text: AttackedText, index: int) -> list[str]:
        """Replacement words for word ``index`` of ``text`` (may be empty)."""
        raise NotImplementedError

    def __call__(self, text: AttackedText, indices: Collection[int]) -> list[AttackedText]:
        """Candidates replacing one of the words at ``indices``.

        Args:
            text: the current text.
            indices: word indices that may be replaced (in any order; used sorted).

        Returns:
            One text per (index, replacement); replacements equal to the current word or
            empty are dropped.
        """
        out = []
        for i in sorted(indices):
            current = text.words[i]
            for word in dict.fromkeys(self.replacements(text, i)):
                if word and word != current:
                    out.append(text.replace_word(i, word))
        return out


class CompositeTransformation(Transformation):
    """The union of the candidates of several transformations, in order.

    Args:
        transformations: the parts.

    Raises:
        ValueError: when ``transformations`` is empty.
    """

    def __init__(self, transformations: Sequence[Transformation]):
        super().__init__()
        if not transformations:
            raise ValueError("CompositeTransformation needs at least one transformation")
        self.transformations = list(transformations)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(t) for t in self.transformations)})"

    def set_rng(self, rng: random.Random) -> None:
        super().set_rng(rng)
        for t in self.transformations:
            t.set_rng(rng)

    def replacements(self, text: AttackedText, index: int) -> list[str]:
        return [w for t in self.transformations for w in t.replacements(text, index)]


def match_case(word: str, like: str) -> str:
    """``word`` with the capitalisation of ``like`` (all upper, first upper, or as it is)."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class WordNetSynonymSwap(Transformation):
    """Replace a word by one of its WordNet 3.0 synonyms (PWWS, Ren et al., 2019).

    Synonyms are the lemmas of every synset of the word, of any part of speech (no POS
    tagger is available offline; TextAttack's ``WordSwapWordNet`` does the same).
    Multi-word lemmas (``trade_good``) are left out, so that a swap replaces one word by one
    word.

    Args:
        wordnet: an NLTK WordNet reader; None loads the project's copy.

    Raises:
        costeff_same.attacks.resources.ResourceError: when WordNet is missing (the message
            says how to get it).
    """

    def __init__(self, wordnet=None):
        super().__init__()
        if wordnet is None:
            wordnet = load_wordnet()
        self.wordnet = wordnet
        self._synonyms = functools.lru_cache(maxsize=100_000)(self._lookup)

    def _lookup(self, word: str) -> tuple[str, ...]:
        out = []
        for synset in self.wordnet.synsets(word):
            for lemma in synset.lemmas():
                name = lemma.name()
                if "_" in name or " " in name or name.lower() == word or not name.replace("-", "").isalpha():
                    continue
                out.append(name.lower())
        return tuple(dict.fromkeys(out))

    def synonyms(self, word: str) -> list[str]:
        """WordNet synonyms of ``word`` (lower-case, one word each, first-seen order)."""
        return list(self._synonyms(word.lower()))

    def replacements(self, text: AttackedText, index: int) -> list[str]:
        word = text.words[index]
        return [match_case(s, word) for s in self.synonyms(word)]


class EmbeddingNeighbourSwap(Transformation):
    """Replace a word by its nearest neighbours in a word-embedding space (TextFooler).

    Args:
        vectors: ``(V, D)`` word vectors.
        vocabulary: the ``V`` words.
        max_candidates: neighbours kept per word (TextFooler: 50).
        min_cos_sim: least cosine similarity of a neighbour to the word (TextFooler: 0.5
            in counter-fitted space).

    Raises:
        ValueError: when ``vectors`` and ``vocabulary`` differ in length, or for
            ``max_candidates < 1``.
    """

    def __init__(self, vectors: torch.Tensor | np.ndarray, vocabulary: Sequence[str], max_candidates: int = 50,
                 min_cos_sim: float = 0.5):
        super().__init__()
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if len(vectors) != len(vocabulary):
            raise ValueError(f"{len(vectors)} vectors for {len(vocabulary)} words")
        if max_candidates < 1:
            raise ValueError(f"max_candidates={max_candidates} must be >= 1")
        self.vectors = torch.nn.functional.normalize(vectors, dim=-1)
        self.vocabulary = list(vocabulary)
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self.max_candidates = max_candidates
        self.min_cos_sim = min_cos_sim
        self._neighbours = functools.lru_cache(maxsize=100_000)(self._lookup)

    @classmethod
    def from_minilm(cls, max_candidates: int = 50, min_cos_sim: float = 0.5) -> EmbeddingNeighbourSwap:
        """Neighbours in the input word embeddings of the packaged all-MiniLM-L6-v2.

        The vocabulary is MiniLM's whole-word WordPiece entries made only of letters (no
        ``##`` pieces, no special or unused tokens): about 20,000 words. This stands in for
        the counter-fitted vectors TextFooler uses (not available offline).
        """
        model, tokenizer = minilm()
        vocab = tokenizer.get_vocab()
        words = sorted((w for w in vocab if w.isalpha() and w.isascii() and len(w) > 1), key=vocab.get)
        rows = torch.tensor([vocab[w] for w in words])
        vectors = model.embeddings.word_embeddings.weight.detach()[rows]
        return cls(vectors, words, max_candidates, min_cos_sim)

    def _lookup(self, word: str) -> tuple[tuple[str, float], ...]:
        row = self.index.get(word)
        if row is None:
            return ()
        sims = self.vectors @ self.vectors[row]
        sims[row] = -1.0
        top = torch.topk(sims, min(self.max_candidates, len(sims) - 1))
        return tuple((self.vocabulary[int(i)], float(s)) for s, i in zip(top.values, top.indices)
                     if s >= self.min_cos_sim)

    def neighbours(self, word: str) -> list[tuple[str, float]]:
        """``(neighbour, cosine similarity)`` pairs of ``word``, most similar first."""
        return list(self._neighbours(word.lower()))

    def replacements(self, text: AttackedText, index: int) -> list[str]:
        word = text.words[index]
        return [match_case(w, word) for w, _ in self.neighbours(word)]


class CharacterEdit(Transformation):
    """One character-level edit of a word (DeepWordBug, Gao et al., 2018; homoglyphs: TextBugger).

    Args:
        operation: ``swap`` (two neighbouring characters), ``substitute`` (a character by a
            random letter), ``delete`` (a character), ``insert`` (a random letter) or
            ``homoglyph`` (a letter by a look-alike from another script, :data:`HOMOGLYPHS`).
        random_one: propose one random edit per word (DeepWordBug, as TextAttack's recipe);
            otherwise every possible edit (for substitutions and insertions, one random
            letter per position).
        skip_first_char: never edit the first character.
        skip_last_char: never edit the last character.
        letters: the alphabet of substitutions and insertions.

    Raises:
        ValueError: for an unknown operation (the accepted ones are listed).
    """

    OPERATIONS = ("swap", "substitute", "delete", "insert", "homoglyph")

    def __init__(self, operation: str, random_one: bool = True, skip_first_char: bool = False,
                 skip_last_char: bool = False, letters: str = string.ascii_lowercase):
        super().__init__()
        if operation not in self.OPERATIONS:
            raise ValueError(f"unknown character operation {operation!r}; accepted: {', '.join(self.OPERATIONS)}")
        self.operation = operation
        self.random_one = random_one
        self.skip_first_char = skip_first_char
        self.skip_last_char = skip_last_char
        self.letters = letters

    def edits(self, word: str) -> list[str]:
        """Every edit of ``word`` this operation allows (random letters drawn from ``rng``)."""
        start = 1 if self.skip_first_char else 0
        end = len(word) - (1 if self.skip_last_char else 0)
        op, out = self.operation, []
        if op == "swap":
            out = [word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(start, end - 1)
                   if word[i] != word[i + 1]]
        elif op == "substitute":
            out = [word[:i] + self.rng.choice(self.letters.replace(word[i], "") or self.letters) + word[i + 1:]
                   for i in range(start, end)]
        elif op == "delete":
            out = [word[:i] + word[i + 1:] for i in range(start, end)] if len(word) > 1 else []
        elif op == "insert":
            out = [word[:i] + self.rng.choice(self.letters) + word[i:] for i in range(start, end + 1)]
        elif op == "homoglyph":
            out = [word[:i] + HOMOGLYPHS[word[i]] + word[i + 1:] for i in range(start, end) if word[i] in HOMOGLYPHS]
        return [w for w in dict.fromkeys(out) if w != word]

    def replacements(self, text: AttackedText, index: int) -> list[str]:
        options = self.edits(text.words[index])
        if self.random_one and options:
            return [self.rng.choice(options)]
        return options


def deepwordbug_edits(random_one: bool = True) -> CompositeTransformation:
    """DeepWordBug's four edits: neighbour swap, substitution, deletion, insertion."""
    return CompositeTransformation([CharacterEdit(op, random_one=random_one)
                                    for op in ("swap", "substitute", "delete", "insert")])
