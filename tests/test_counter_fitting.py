"""Counter-fitting (Mrkšić et al., 2016) on hand-made vectors."""

import numpy as np
import pytest

from costeff_same.attacks.counter_fitting import CounterFitting, counter_fit


def cos(v, a, b):
    return float(v[a] @ v[b] / np.linalg.norm(v[a]) / np.linalg.norm(v[b]))


def neighbours(v, i):
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    order = np.argsort(-(unit @ unit[i]), kind="stable")
    return [int(j) for j in order if j != i]


# 0 "good" and 1 "fine" (synonyms, 60 degrees apart); 2 "cheap" and 3 "expensive" (antonyms, nearly
# parallel, as distributional vectors of antonyms often are); 4 "film" and 5 "movie" in no pair,
# 6 "plot" in no pair near them
VECTORS = np.array([
    [1.0, 0.0, 0.0, 0.0],
    [0.5, 0.866, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.1],
    [0.0, 0.05, 1.0, 0.0],
    [0.0, 0.0, 0.1, 1.0],
    [0.05, 0.0, 0.15, 1.0],
    [0.0, 0.3, 0.0, 1.0],
])


def test_synonyms_end_closer_antonyms_farther_and_a_free_word_keeps_its_neighbours():
    fitted = counter_fit(VECTORS, synonyms=[(0, 1)], antonyms=[(2, 3)])
    assert cos(fitted, 0, 1) > cos(VECTORS, 0, 1) + 0.2
    assert cos(fitted, 2, 3) < cos(VECTORS, 2, 3) - 0.2
    for free in (4, 5, 6):
        assert neighbours(fitted, free)[:2] == neighbours(VECTORS, free)[:2]
        np.testing.assert_allclose(fitted[free], VECTORS[free] / np.linalg.norm(VECTORS[free]), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(fitted, axis=1), 1.0, atol=1e-5)


def test_the_preservation_term_keeps_a_moved_words_neighbours_close():
    """A word 7 right next to "cheap" (2): pushing "cheap" from its antonym keeps it nearer to 7
    with the preservation term than without it."""
    vectors = np.vstack([VECTORS, [0.0, 0.02, 1.0, 0.12]])                  # 7: next to "cheap"
    fitted = counter_fit(vectors, synonyms=[], antonyms=[(2, 3)])
    without = counter_fit(vectors, synonyms=[], antonyms=[(2, 3)], settings=CounterFitting(k_preserve=0.0))
    assert cos(fitted, 2, 7) > cos(without, 2, 7)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"\(words, dimensions\)"):
        counter_fit(np.ones(4), [], [])
    with pytest.raises(ValueError, match="synonyms pair index 9 outside 0..6"):
        counter_fit(VECTORS, [(0, 9)], [])
    np.testing.assert_allclose(counter_fit(VECTORS, [], []),
                               VECTORS / np.linalg.norm(VECTORS, axis=1, keepdims=True), atol=1e-6)
