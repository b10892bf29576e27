"""Attacks held to meaning: the constrained SAME variant, lazy constraint checks, the meaning
figures, SAME's word budgets, TextFooler's word spaces, and WordNet's pairs for counter-fitting."""

import math

import numpy as np
import pytest
from conftest import spread_victim

from costeff_same.attacks.attack import AttackResult
from costeff_same.attacks.constraints import (
    MaxModificationRate,
    SentenceSimilarity,
    sentence_encoder,
)
from costeff_same.attacks.same_chen_2023 import SameBeamSearch, build
from costeff_same.attacks.same_units import VARIANTS, SameSettings
from costeff_same.attacks.units import meaning
from costeff_same.attacks.word_vectors import neighbour_swap, wordnet_pairs
from costeff_same.foundations.config import ConfigError
from costeff_same.foundations.names import recipe_label

TEXTS = [
    "the film is a charming and often affecting journey",
    "an unbelievably lovely film with lovely performances",
    "too slow , too long and too little happens",
    "an ambitious , serious film that manages to do virtually everything wrong",
]


@pytest.fixture
def victim(tiny_model, tokenizer):
    return spread_victim(tiny_model, tokenizer, TEXTS, batch_size=8)


def test_constrained_same_swaps_only_near_neighbours_and_keeps_the_similarity(victim):
    attack = build(victim, top_n=40, char_level=False, constrained=True, min_similarity=0.8)
    swap = neighbour_swap("counter_fitted")
    similarity = next(c for c in attack.constraints if isinstance(c, SentenceSimilarity))
    changed = 0
    for k, text in enumerate(TEXTS):
        result = attack.attack(text, 1, seed=k)
        for old, new in zip(result.original_words, result.new_words):
            assert new.lower() in {w for w, _ in swap.neighbours(old.lower())}, (old, new)
            changed += 1
        if result.words_changed:
            perturbed = attack.original.__class__(result.perturbed_text)
            (sim,) = similarity.similarities([perturbed], attack.original.__class__(text), perturbed)
            assert sim >= 0.8
    assert changed, "the constrained variant must change some word on these texts, or the test shows little"


def test_lazy_similarity_checks_keep_what_checking_every_candidate_keeps(victim, monkeypatch):
    lazy = build(victim, top_n=30, constrained=True, min_similarity=0.95)
    eager = build(victim, top_n=30, constrained=True, min_similarity=0.95)
    eager.search.lazy_constraints = False
    assert isinstance(lazy.search, SameBeamSearch) and lazy.search.lazy_constraints
    for k, text in enumerate(TEXTS):
        a, b = lazy.attack(text, 1, seed=k), eager.attack(text, 1, seed=k)
        assert (a.perturbed_text, a.status) == (b.perturbed_text, b.status)


def test_the_unconstrained_attack_has_no_similarity_constraint(victim):
    attack = build(victim)
    assert not any(isinstance(c, SentenceSimilarity) for c in attack.constraints)
    assert not attack.search.lazy_constraints and attack.transformation.neighbours is None


def _result(original, perturbed, status="succeeded", before=1, after=0, changed=1):
    return AttackResult(original, perturbed, 1, status, before, after, 2, 6, 0.3, 1.0, len(original.split()),
                        changed, changed / len(original.split()), [0], ["a"], ["b"], 10, 0.1, False).to_dict()


def test_meaning_counts_flips_over_attacked_texts_and_similarity_over_changed_ones():
    results = [_result("a good film", "a good film", status="failed", after=1, changed=0),
               _result("a good film", "a fine film"),
               _result("the plot is thin", "the plot is thin", status="skipped", after=1, changed=0)]
    m = meaning(results)
    assert m["changed"] == 1 and m["label_flip_rate"]["estimate"] == pytest.approx(0.5)
    assert m["label_flip_rate"]["n"] == 2
    embed = sentence_encoder("use")
    a, b = embed(["a good film", "a fine film"])
    assert m["similarity"]["estimate"] == pytest.approx(float(a @ b), abs=1e-5)
    assert meaning([results[2]])["similarity"] is None and meaning([results[2]])["label_flip_rate"] is None
    with pytest.raises(ValueError, match="accepted: use, minilm"):
        sentence_encoder("sbert")


def test_a_fixed_word_budget_and_the_budget_variants():
    assert MaxModificationRate(0.0, 2).budget(40) == 2 and MaxModificationRate(0.1, 3).budget(40) == 4
    with pytest.raises(ValueError, match="not both 0"):
        MaxModificationRate(0.0, 0)
    for k in (1, 2, 3):
        settings = SameSettings().replace(**VARIANTS[f"budget_{k}"])
        assert [settings.budget(n) for n in (5, 20, 60)] == [k, k, k]
    with pytest.raises(ConfigError, match="not both 0"):
        SameSettings(max_rate=0.0, min_words=0)
    assert SameSettings().replace(**VARIANTS["no_tie_break"]).tie_break is False
    assert SameSettings().replace(**VARIANTS["constrained"]).constrained is True


def test_the_budget_variants_never_change_more_words_than_their_budget(victim):
    for k in (1, 2):
        attack = build(victim, top_n=30, max_rate=0.0, min_words=k)
        for seed, text in enumerate(TEXTS):
            assert attack.attack(text, 1, seed=seed).words_changed <= k


def test_recipe_unit_keys_and_labels():
    from costeff_same.attacks.units import RecipeUnitConfig
    from costeff_same.foundations.config import load_profile
    from costeff_same.victims import multi_exit_config

    victim = multi_exit_config(**load_profile("smoke")["01_multi_exit"]).victim("entropy")

    def key(**kw):
        return RecipeUnitConfig(victim=victim, victim_name="entropy", policy="entropy", policy_value=0.5,
                                num_examples=2, **kw).key

    assert key(recipe="textfooler", min_cos_sim=0.5, word_vectors="counter_fitted") == "textfooler"
    assert key(recipe="textfooler", min_cos_sim=0.4, word_vectors="minilm") == "textfooler_minilm_cos0.4"
    assert key(recipe="waffle") == "waffle"
    assert recipe_label("textfooler_minilm_cos0.4") == "TextFooler (MiniLM stand-in, cos >= 0.4)"
    with pytest.raises(ConfigError, match="accepted: pwws, textfooler, deepwordbug, waffle"):
        key(recipe="hotflip")
    with pytest.raises(ConfigError, match="accepted: counter_fitted, minilm"):
        key(recipe="textfooler", word_vectors="glove")
    with pytest.raises(ValueError, match="accepted: counter_fitted, minilm"):
        neighbour_swap("glove")


def test_wordnet_gives_synonym_and_antonym_pairs_among_the_vocabulary():
    words = ["good", "bad", "well", "film", "movie", "cheap", "expensive", "zzzz"]
    synonyms, antonyms = wordnet_pairs(words)
    index = {w: i for i, w in enumerate(words)}

    def pair(a, b):
        return sorted((index[a], index[b]))

    assert pair("film", "movie") in synonyms.tolist() and pair("good", "well") in synonyms.tolist()
    assert pair("good", "bad") in antonyms.tolist() and pair("cheap", "expensive") in antonyms.tolist()
    assert not set(map(tuple, synonyms.tolist())) & set(map(tuple, antonyms.tolist()))
    assert all(a < b for a, b in np.concatenate([synonyms, antonyms]).tolist())
    assert index["zzzz"] not in np.concatenate([synonyms, antonyms]).ravel()
    assert math.isclose(len(set(map(tuple, synonyms.tolist()))), len(synonyms))
