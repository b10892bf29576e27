"""The word spaces of embedding-neighbour swaps (TextFooler, WAFFLE): counter-fitted GloVe or MiniLM.

TextFooler (Jin et al., 2020) swaps a word for its nearest neighbours among counter-fitted
word vectors (Mrksic et al., 2016). Those vectors cannot be fetched offline, so the book
builds its own: GloVe 6B, 50 dimensions (Pennington et al., 2014; the packaged wheel of
:func:`~costeff_same.attacks.resources.glove`), counter-fitted
(:func:`~costeff_same.attacks.counter_fitting.counter_fit`) to WordNet 3.0's synonym pairs
(two words that share a synset) and antonym pairs (WordNet's lemma antonyms), as a cached
stage (``counter_fitted-<hash>``, :func:`counter_fitted_vectors`). Choices where the paper
leaves it open (the methods page): the vocabulary is GloVe's ``vocabulary_size`` most
frequent words made of ASCII letters only (TextFooler's released vectors hold 65,713 words);
the pairs are WordNet's, where the paper also used PPDB's paraphrases.

:func:`neighbour_swap` builds the transformation over either space: ``counter_fitted`` (the
default) or ``minilm`` (the packaged MiniLM's input word embeddings: the stand-in before).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from costeff_same.attacks.counter_fitting import CounterFitting, counter_fit
from costeff_same.attacks.resources import glove, load_wordnet
from costeff_same.attacks.transformations import EmbeddingNeighbourSwap
from costeff_same.engine.results import load_or_run, stage
from costeff_same.foundations.config import ConfigError, StageConfig

#: the word spaces of embedding-neighbour swaps: GloVe counter-fitted here (the default), or MiniLM's
WORD_VECTORS = ("counter_fitted", "minilm")


@dataclasses.dataclass(frozen=True)
class CounterFittedConfig(StageConfig):
    """The counter-fitted word space (a cached stage).

    Attributes:
        vocabulary_size: GloVe's most frequent letters-only words kept (words).
        settings: the counter-fitting objective and its optimisation (Mrksic et al., 2016).
    """

    vocabulary_size: int = 50_000
    settings: CounterFitting = CounterFitting()

    def __post_init__(self):
        if self.vocabulary_size < 2:
            raise ConfigError(f"vocabulary_size={self.vocabulary_size} must be >= 2")


def wordnet_pairs(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """WordNet's synonym and antonym pairs among ``words``.

    Args:
        words: the vocabulary (lower-case).

    Returns:
        ``(synonyms, antonyms)``: ``(P, 2)`` int64 arrays of row indices into ``words``, each
        unordered pair once (smaller index first), sorted.

    Raises:
        ResourceError: when WordNet is missing.
    """
    wordnet = load_wordnet()
    index = {w: i for i, w in enumerate(words)}
    synonyms, antonyms = set(), set()
    for synset in wordnet.all_synsets():
        lemmas = [lemma for lemma in synset.lemmas() if lemma.name().lower() in index]
        rows = sorted({index[lemma.name().lower()] for lemma in lemmas})
        synonyms.update(itertools.combinations(rows, 2))
        for lemma in lemmas:
            for antonym in lemma.antonyms():
                other = index.get(antonym.name().lower())
                if other is not None and other != index[lemma.name().lower()]:
                    antonyms.add(tuple(sorted((index[lemma.name().lower()], other))))
    synonyms -= antonyms  # a pair WordNet lists both ways is not pulled together

    def array(pairs: set[tuple[int, int]]) -> np.ndarray:
        return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)

    return array(synonyms), array(antonyms)


@stage("counter_fitted")
def _run_counter_fitted(cfg: CounterFittedConfig, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    all_words, all_vectors = glove()
    rows = [i for i, w in enumerate(all_words) if w.isascii() and w.isalpha()][:cfg.vocabulary_size]
    words = [all_words[i] for i in rows]
    synonyms, antonyms = wordnet_pairs(words)
    vectors = counter_fit(all_vectors[rows], synonyms, antonyms, cfg.settings)
    np.save(workdir / "vectors.npy", vectors)
    (workdir / "words.json").write_text(json.dumps(words))
    return {"words": len(words), "dimensions": int(vectors.shape[1]), "synonym_pairs": len(synonyms),
            "antonym_pairs": len(antonyms), "moved_words": int(len(np.unique(np.concatenate(
                [synonyms.ravel(), antonyms.ravel()])))), "seconds": time.perf_counter() - started}


def counter_fitted_record(cfg: CounterFittedConfig = CounterFittedConfig()) -> dict[str, Any]:
    """The counter-fitted stage's record (computed once, then cached): its words, dimensions,
    synonym and antonym pairs, moved words and seconds.

    Raises:
        ResourceError: when GloVe's wheel or WordNet is missing.
    """
    return load_or_run("counter_fitted", cfg, _run_counter_fitted)


def counter_fitted_vectors(cfg: CounterFittedConfig = CounterFittedConfig()) -> tuple[list[str], np.ndarray]:
    """The counter-fitted words and their ``(V, 50)`` unit vectors (computed once, then cached).

    Raises:
        ResourceError: when GloVe's wheel or WordNet is missing.
    """
    work = Path(counter_fitted_record(cfg)["_entry"]) / "work"
    return json.loads((work / "words.json").read_text()), np.load(work / "vectors.npy")


def neighbour_swap(word_vectors: str = "counter_fitted", max_candidates: int = 50,
                   min_cos_sim: float = 0.5) -> EmbeddingNeighbourSwap:
    """Embedding-neighbour swaps in ``word_vectors``: ``counter_fitted`` (default) or ``minilm``.

    Args:
        word_vectors: the word space (:data:`WORD_VECTORS`).
        max_candidates: neighbours per word (TextFooler: 50).
        min_cos_sim: least cosine similarity of a neighbour to its word (TextFooler: 0.5).

    Raises:
        ValueError: for an unknown word space (the accepted ones are listed).
    """
    if word_vectors == "minilm":
        return EmbeddingNeighbourSwap.from_minilm(max_candidates=max_candidates, min_cos_sim=min_cos_sim)
    if word_vectors != "counter_fitted":
        raise ValueError(f"unknown word vectors {word_vectors!r}; accepted: {', '.join(WORD_VECTORS)}")
    words, vectors = counter_fitted_vectors()
    return EmbeddingNeighbourSwap(vectors, words, max_candidates=max_candidates, min_cos_sim=min_cos_sim)
