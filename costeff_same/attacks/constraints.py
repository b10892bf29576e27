"""Constraints: which words an attack may touch, and which candidate texts it may keep.

A constraint has two sides (TextAttack's pre- and post-transformation constraints, Morris
et al., 2020):

- :meth:`Constraint.allowed_indices` narrows the words a transformation is asked to
  replace (cheap, before candidates are made);
- :meth:`Constraint.check` accepts or rejects finished candidates, in a batch. Every
  constraint implements it, so a candidate that breaks a rule is rejected whichever
  transformation made it.

The constraints:

- :class:`StopwordModification`: stopwords are never modified (scikit-learn's English
  list, ``ENGLISH_STOP_WORDS``: NLTK's list cannot be fetched offline).
- :class:`RepeatModification`: no word is modified twice.
- :class:`MinWordLength`: words shorter than ``n`` characters are never modified.
- :class:`MaxModificationRate`: at most ``max(min_words, ceil(rate * words))`` words changed.
- :class:`SentenceSimilarity`: the candidate's sentence embedding stays close to the
  reference's, under the Universal Sentence Encoder (Cer et al., 2018) as the papers'
  (:class:`UniversalSentenceEncoder`, the packaged multilingual USE v3 port) or the
  packaged all-MiniLM-L6-v2 (:class:`MiniLMSentenceEncoder`, the stand-in before it).
- :class:`LevenshteinDistance`: the character edit distance to the original is bounded
  (DeepWordBug, Gao et al., 2018: 30).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import torch

from costeff_same.attacks.resources import load_wordnet, minilm, universal_sentence_encoder
from costeff_same.attacks.text import AttackedText


class Constraint:
    """Base class. Subclasses define :meth:`check_one` or :meth:`check`, and may narrow
    :meth:`allowed_indices`."""

    #: shown in logs and results
    name = "constraint"
    #: costly to check (a model forward per candidate): a search may check it lazily, only on
    #: the best-scoring candidates (:meth:`costeff_same.attacks.attack.Attack.first_acceptable`)
    expensive = False

    def allowed_indices(self, text: AttackedText) -> set[int]:
        """Word indices of ``text`` that may be replaced next (default: all)."""
        return set(range(text.num_words))

    def check_one(self, candidate: AttackedText, original: AttackedText, current: AttackedText) -> bool:
        """True when ``candidate`` satisfies the constraint."""
        raise NotImplementedError

    def check(self, candidates: Sequence[AttackedText], original: AttackedText,
              current: AttackedText) -> list[bool]:
        """Accept (True) or reject each candidate.

        Args:
            candidates: texts one step away from ``current``.
            original: the text the attack started from.
            current: the text the candidates were made from.
        """
        return [self.check_one(c, original, current) for c in candidates]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_")
                           and isinstance(v, (int, float, str, bool, type(None))))
        return f"{type(self).__name__}({fields})"


class StopwordModification(Constraint):
    """Stopwords are never modified.

    Args:
        stopwords: lower-case words; default scikit-learn's ``ENGLISH_STOP_WORDS`` (318
            words).
    """

    name = "stopwords"

    def __init__(self, stopwords: Sequence[str] | None = None):
        if stopwords is None:
            from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

            stopwords = ENGLISH_STOP_WORDS
        self.stopwords = frozenset(w.lower() for w in stopwords)

    def is_stopword(self, word: str) -> bool:
        """True for a stopword (case-insensitive)."""
        return word.lower() in self.stopwords

    def allowed_indices(self, text: AttackedText) -> set[int]:
        return {i for i, w in enumerate(text.original_words) if not self.is_stopword(w)}

    def check_one(self, candidate, original, current) -> bool:
        return not any(self.is_stopword(candidate.original_words[i]) for i in candidate.changed_indices)


class RepeatModification(Constraint):
    """No word is modified twice (its modification count never exceeds 1)."""

    name = "repeat"

    def allowed_indices(self, text: AttackedText) -> set[int]:
        return {i for i, n in enumerate(text.modification_counts) if n == 0}

    def check_one(self, candidate, original, current) -> bool:
        return max(candidate.modification_counts, default=0) <= 1


class MinWordLength(Constraint):
    """Words shorter than ``min_length`` characters are never modified.

    Args:
        min_length: characters.
    """

    name = "min_word_length"

    def __init__(self, min_length: int = 2):
        self.min_length = min_length

    def allowed_indices(self, text: AttackedText) -> set[int]:
        return {i for i, w in enumerate(text.original_words) if len(w) >= self.min_length}

    def check_one(self, candidate, original, current) -> bool:
        return all(len(candidate.original_words[i]) >= self.min_length for i in candidate.changed_indices)


class MaxModificationRate(Constraint):
    """At most ``max(min_words, ceil(max_rate * n_words))`` words differ from the original.

    Args:
        max_rate: fraction of the words (0..1; 0: a fixed budget of ``min_words`` words).
        min_words: the budget is never below this many words (SAME: 3).

    Raises:
        ValueError: for a rate outside [0, 1], a negative ``min_words``, or a budget of no word
            (``max_rate=0`` with ``min_words=0``).
    """

    name = "max_modification_rate"

    def __init__(self, max_rate: float, min_words: int = 0):
        if not 0 <= max_rate <= 1 or min_words < 0 or (max_rate == 0 and min_words == 0):
            raise ValueError(f"max_rate={max_rate} must be in [0, 1] and min_words={min_words} >= 0, "
                             "not both 0")
        self.max_rate = max_rate
        self.min_words = min_words

    def budget(self, num_words: int) -> int:
        """Words that may change in a text of ``num_words`` words."""
        return max(self.min_words, math.ceil(self.max_rate * num_words))

    def allowed_indices(self, text: AttackedText) -> set[int]:
        changed = text.changed_indices
        if len(changed) >= self.budget(text.num_words):
            return set(changed)  # only words already changed could still be rewritten
        return set(range(text.num_words))

    def check_one(self, candidate, original, current) -> bool:
        return len(candidate.changed_indices) <= self.budget(candidate.num_words)


def _levenshtein(a: str, b: str) -> int:
    """Character edit distance (insertions, deletions, substitutions; each costs 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            row.append(min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = row
    return previous[-1]


class LevenshteinDistance(Constraint):
    """The character edit distance between the candidate and the original is at most ``max_distance``.

    Computed word by word (words keep their positions, so the sum over changed words is an
    upper bound); the whole texts are compared only when that bound exceeds the budget.

    Args:
        max_distance: characters (DeepWordBug: 30).
    """

    name = "levenshtein"

    def __init__(self, max_distance: int = 30):
        self.max_distance = max_distance

    def distance(self, candidate: AttackedText, original: AttackedText) -> int:
        """Edit distance between the two texts."""
        bound = sum(_levenshtein(candidate.words[i], candidate.original_words[i]) for i in candidate.changed_indices)
        return bound if bound <= self.max_distance else _levenshtein(candidate.text, original.text)

    def check_one(self, candidate, original, current) -> bool:
        return self.distance(candidate, original) <= self.max_distance


class SentenceEncoder:
    """Unit-norm sentence embeddings, cached per text (subclasses implement :meth:`encode`).

    Args:
        batch_size: texts per forward.
        cache_size: embeddings kept.
    """

    dimensions = 0

    def __init__(self, batch_size: int = 128, cache_size: int = 200_000):
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def encode(self, texts: list[str]) -> torch.Tensor:
        """``(len(texts), dimensions)`` unit-norm embeddings of one batch."""
        raise NotImplementedError

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        """``(N, dimensions)`` unit-norm embeddings of ``texts``."""
        todo = sorted((t for t in dict.fromkeys(texts) if t not in self._cache), key=len)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            for text, vector in zip(chunk, self.encode(chunk)):
                self._cache[text] = vector
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return torch.stack([self._cache[t] for t in texts]) if texts else torch.empty(0, self.dimensions)


class UniversalSentenceEncoder(SentenceEncoder):
    """The Universal Sentence Encoder (Cer et al., 2018): the multilingual USE v3 port
    (:func:`~costeff_same.attacks.resources.universal_sentence_encoder`), 512 dimensions."""

    dimensions = 512

    def __init__(self, batch_size: int = 128, cache_size: int = 200_000):
        super().__init__(batch_size, cache_size)
        self.model = universal_sentence_encoder()

    def encode(self, texts: list[str]) -> torch.Tensor:
        vectors = torch.as_tensor(np.asarray(self.model.encode(list(texts)), dtype=np.float32))
        return torch.nn.functional.normalize(vectors.reshape(len(texts), -1), dim=-1)


class MiniLMSentenceEncoder(SentenceEncoder):
    """Sentence embeddings from the packaged all-MiniLM-L6-v2: mean over tokens, L2-normalised,
    384 dimensions (the Universal Sentence Encoder's stand-in before its port was packaged).

    Args:
        batch_size: texts per forward.
        max_length: tokens per text.
        cache_size: embeddings kept.
    """

    dimensions = 384

    def __init__(self, batch_size: int = 128, max_length: int = 128, cache_size: int = 200_000):
        super().__init__(batch_size, cache_size)
        self.model, self.tokenizer = minilm()
        self.max_length = max_length

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                               return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


#: sentence encoder name -> class: the Universal Sentence Encoder port (the default), or MiniLM
SENTENCE_ENCODER_CLASSES = {"use": UniversalSentenceEncoder, "minilm": MiniLMSentenceEncoder}


def sentence_encoder(name: str = "use") -> SentenceEncoder:
    """A new sentence encoder: ``use`` (the Universal Sentence Encoder port) or ``minilm``.

    Raises:
        ValueError: for an unknown name (the accepted ones are listed).
    """
    if name not in SENTENCE_ENCODER_CLASSES:
        raise ValueError(f"unknown sentence encoder {name!r}; accepted: {', '.join(SENTENCE_ENCODER_CLASSES)}")
    return SENTENCE_ENCODER_CLASSES[name]()


class SentenceSimilarity(Constraint):
    """The candidate's sentence embedding stays similar to the reference text's.

    Args:
        encoder: ``texts -> (N, D)`` unit-norm embeddings; default :class:`UniversalSentenceEncoder`.
        min_similarity: least similarity accepted.
        metric: ``cosine``, or ``angular`` = ``1 - arccos(cos) / pi`` (TextAttack's recipes
            threshold USE with it).
        window_size: compare only the ``window_size`` words around the newly changed word
            (TextFooler: 15); None compares whole texts.
        compare_against: ``original`` (the attack's start) or ``current`` (the text the
            candidate was made from: TextFooler's code and TextAttack's recipe).
        skip_shorter_than_window: accept texts with fewer words than the window unchecked
            (TextAttack's TextFooler recipe).

    Raises:
        ValueError: for an unknown metric or ``compare_against`` (the accepted ones are listed).
    """

    name = "sentence_similarity"
    expensive = True
    METRICS = ("cosine", "angular")

    def __init__(self, encoder: Callable[[Sequence[str]], torch.Tensor] | None = None, min_similarity: float = 0.84,
                 metric: str = "cosine", window_size: int | None = None, compare_against: str = "original",
                 skip_shorter_than_window: bool = False):
        if metric not in self.METRICS:
            raise ValueError(f"unknown similarity metric {metric!r}; accepted: {', '.join(self.METRICS)}")
        if compare_against not in ("original", "current"):
            raise ValueError(f"compare_against={compare_against!r}; accepted: original, current")
        self.encoder = encoder if encoder is not None else UniversalSentenceEncoder()
        self.min_similarity = min_similarity
        self.metric = metric
        self.window_size = window_size
        self.compare_against = compare_against
        self.skip_shorter_than_window = skip_shorter_than_window

    def _pair(self, candidate: AttackedText, reference: AttackedText, current: AttackedText) -> tuple[str, str] | None:
        if self.window_size is None:
            return candidate.text, reference.text
        if candidate.num_words < self.window_size and self.skip_shorter_than_window:
            return None
        new = candidate.diff_indices(current) or sorted(candidate.changed_indices) or [0]
        center = new[0]
        return candidate.window(center, self.window_size), reference.window(center, self.window_size)

    def similarities(self, candidates: Sequence[AttackedText], original: AttackedText,
                     current: AttackedText) -> np.ndarray:
        """``(N,)`` similarity of each candidate to its reference (nan where skipped)."""
        reference = original if self.compare_against == "original" else current
        pairs = [self._pair(c, reference, current) for c in candidates]
        kept = [p for p in pairs if p is not None]
        out = np.full(len(candidates), np.nan)
        if not kept:
            return out
        a = self.encoder([p[0] for p in kept])
        b = self.encoder([p[1] for p in kept])
        cos = (a * b).sum(-1).clamp(-1.0, 1.0)
        sims = cos if self.metric == "cosine" else 1.0 - torch.arccos(cos) / math.pi
        out[[i for i, p in enumerate(pairs) if p is not None]] = sims.numpy()
        return out

    def check(self, candidates, original, current) -> list[bool]:
        sims = self.similarities(candidates, original, current)
        return [bool(np.isnan(s) or s >= self.min_similarity) for s in sims]


class NoAntonymSwap(Constraint):
    """A word is never replaced by one of its WordNet antonyms.

    Counter-fitted word vectors (Mrksic et al., 2016), which TextFooler draws its swaps
    from, are word vectors pushed apart along WordNet and PPDB antonym pairs; a plain
    embedding space (such as MiniLM's input embeddings, our offline stand-in) has
    ``good`` and ``bad`` as near neighbours. This constraint puts that part of
    counter-fitting back: antonyms are lemma antonyms of every synset of the word, and the
    antonyms of the head adjective of a satellite synset.

    Args:
        wordnet: an NLTK WordNet reader; None loads the project's copy.

    Raises:
        costeff_same.attacks.resources.ResourceError: when WordNet is missing.
    """

    name = "no_antonym"

    def __init__(self, wordnet=None):
        import functools

        if wordnet is None:
            wordnet = load_wordnet()
        self.wordnet = wordnet
        self.antonyms = functools.lru_cache(maxsize=100_000)(self._antonyms)

    def _antonyms(self, word: str) -> frozenset[str]:
        out = set()
        for synset in self.wordnet.synsets(word):
            lemmas = [lemma for lemma in synset.lemmas() if lemma.name().lower() == word]
            heads = synset.similar_tos() if synset.pos() == "s" else []
            for lemma in lemmas + [h for head in heads for h in head.lemmas()]:
                out.update(a.name().lower() for a in lemma.antonyms())
        return frozenset(out)

    def check_one(self, candidate, original, current) -> bool:
        return not any(candidate.words[i].lower() in self.antonyms(candidate.original_words[i].lower())
                       for i in candidate.changed_indices)
