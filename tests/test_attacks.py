"""The attack core: constraints, the victim and its cache, goal functions, search, recipes, resources."""

import dataclasses
import zlib

import numpy as np
import pytest
import torch
from conftest import spread_victim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costeff_same.attacks import RECIPES, build_recipe, recipe_module
from costeff_same.attacks.attack import Attack
from costeff_same.attacks.constraints import (
    Constraint,
    LevenshteinDistance,
    MaxModificationRate,
    MinWordLength,
    RepeatModification,
    SentenceSimilarity,
    StopwordModification,
    _levenshtein,
)
from costeff_same.attacks.goal_functions import Slowdown, UntargetedClassification
from costeff_same.attacks.resources import (
    HOW_TO_GET_WORDNET,
    WORDNET_LEXNAMES,
    ResourceError,
    fetch_wordnet,
    lexnames_text,
    load_wordnet,
)
from costeff_same.attacks.search import BeamSearch, GreedyWordSwapWIR
from costeff_same.attacks.text import AttackedText
from costeff_same.attacks.transformations import (
    HOMOGLYPHS,
    CharacterEdit,
    EmbeddingNeighbourSwap,
    Transformation,
    deepwordbug_edits,
)
from costeff_same.attacks.victim import MultiExitVictim
from costeff_same.core.exits import ExitPolicy

TEXTS = [
    "the film is a charming and often affecting journey",
    "a sour little movie",
    "it 's a lovely film with lovely performances by buy and accorsi",
    "too slow , too long and too little happens",
    "an ambitious , serious film that manages to do virtually everything wrong",
    "ok",
]


@pytest.fixture
def victim(tiny_model, tokenizer):
    """The tiny random DeeBERT-style model behind an entropy policy that spreads exits over layers."""
    return spread_victim(tiny_model, tokenizer, TEXTS, batch_size=4)


@pytest.fixture(scope="session")
def wordnet():
    """WordNet 3.0 in the project's NLTK folder (fetched if needed; skipped only if it cannot be had)."""
    try:
        fetch_wordnet()
    except ResourceError as err:  # pragma: no cover - `make install` fetches it
        pytest.skip(f"WordNet cannot be obtained here: {err}")
    return load_wordnet()


class FakeEncoder:
    """Bag-of-words 'sentence encoder': texts sharing no word are orthogonal."""

    def __call__(self, texts):
        out = torch.zeros(len(texts), 4096)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, zlib.crc32(w.encode()) % 4096] += 1
        return torch.nn.functional.normalize(out, dim=-1)


# -- the text -------------------------------------------------------------------------------

def test_attacked_text_keeps_separators_and_word_positions():
    text = AttackedText("it 's a lovely film -- really !")
    assert text.words == ("it", "s", "a", "lovely", "film", "really")
    new = text.replace_word(3, "nice").replace_word(5, "truly")
    assert new.text == "it 's a nice film -- truly !"
    assert new.changed_indices == {3, 5} and new.modification_counts[3] == 1
    assert new.perturbation_rate == pytest.approx(2 / 6)
    assert [new.text[a:b] for a, b in new.word_spans()] == list(new.words)
    assert text.delete_word(0).text == " 's a lovely film -- really !"
    assert AttackedText("a b c d e f g").window(5, 3) == "e f g"
    with pytest.raises(ValueError, match="whitespace"):
        text.replace_word(0, "two words")


def test_homoglyph_words_stay_one_word():
    word = "movie"
    edited = "".join(HOMOGLYPHS.get(c, c) for c in word)
    assert AttackedText(f"a {edited} here").words == ("a", edited, "here")


# -- constraints reject violating candidates ---------------------------------------------------

ORIGINAL = AttackedText("the movie is a charming and affecting journey")


def _check(constraint, candidate, current=ORIGINAL):
    return constraint.check([candidate], ORIGINAL, current)[0]


def test_stopword_constraint_rejects_a_modified_stopword():
    c = StopwordModification()
    assert 0 not in c.allowed_indices(ORIGINAL) and 1 in c.allowed_indices(ORIGINAL)
    assert not _check(c, ORIGINAL.replace_word(0, "a"))          # "the" is a stopword
    assert _check(c, ORIGINAL.replace_word(1, "film"))


def test_repeat_constraint_rejects_a_word_modified_twice():
    c = RepeatModification()
    once = ORIGINAL.replace_word(1, "film")
    assert 1 not in c.allowed_indices(once)
    assert _check(c, once)
    assert not _check(c, once.replace_word(1, "picture"), current=once)


def test_rate_constraint_rejects_too_many_changes():
    c = MaxModificationRate(0.25)  # 8 words -> at most 2
    two = ORIGINAL.replace_word(1, "film").replace_word(4, "lovely")
    assert c.budget(8) == 2 and _check(c, two)
    assert not _check(c, two.replace_word(6, "moving"), current=two)
    assert c.allowed_indices(two) == {1, 4}
    assert MaxModificationRate(0.1, min_words=3).budget(8) == 3  # SAME's max(3, 10%)
    with pytest.raises(ValueError, match="max_rate"):
        MaxModificationRate(1.5)


def test_similarity_constraint_rejects_a_dissimilar_candidate():
    c = SentenceSimilarity(FakeEncoder(), min_similarity=0.8, metric="cosine")
    close = ORIGINAL.replace_word(7, "trip")           # 7 of 8 words shared: cos 0.875
    assert _check(c, close)
    assert not _check(c, ORIGINAL.replace_words([1, 4, 6, 7], ["x", "y", "z", "w"]))
    assert not SentenceSimilarity(FakeEncoder(), min_similarity=0.99).check([close], ORIGINAL, ORIGINAL)[0]
    with pytest.raises(ValueError, match="accepted: cosine, angular"):
        SentenceSimilarity(FakeEncoder(), metric="euclid")


def test_similarity_with_minilm_rejects_an_unrelated_sentence():
    c = SentenceSimilarity(min_similarity=0.84, metric="angular")  # the packaged MiniLM (USE stand-in)
    swapped = ORIGINAL.replace_word(1, "film")
    unrelated = ORIGINAL.replace_words([1, 4, 5, 6, 7], ["tax", "overdue", "or", "quarterly", "invoice"])
    assert c.check([swapped, unrelated], ORIGINAL, ORIGINAL) == [True, False]


def test_window_similarity_compares_the_words_around_the_swap():
    long = AttackedText(" ".join(f"w{i}" for i in range(40)))
    c = SentenceSimilarity(FakeEncoder(), min_similarity=0.9, window_size=5, compare_against="current",
                           skip_shorter_than_window=True)
    cand = long.replace_word(20, "zz")
    assert c.similarities([cand], long, long)[0] == pytest.approx(4 / 5)
    short = AttackedText("a b c")
    assert np.isnan(c.similarities([short.replace_word(1, "zz")], short, short)[0])  # shorter: skipped


def test_levenshtein_and_min_length_constraints():
    assert _levenshtein("kitten", "sitting") == 3
    c = LevenshteinDistance(2)
    assert _check(c, ORIGINAL.replace_word(1, "mvoie"))
    assert not _check(c, ORIGINAL.replace_word(1, "mvoie").replace_word(4, "chrming"))
    assert c.distance(ORIGINAL.replace_word(1, "mvoie"), ORIGINAL) == 2
    short = AttackedText("it 's good")
    assert not MinWordLength(2).check([short.replace_word(1, "x")], short, short)[0]


def test_no_antonym_constraint_rejects_an_antonym(wordnet):
    from costeff_same.attacks.constraints import NoAntonymSwap

    text = AttackedText("a good movie")
    c = NoAntonymSwap(wordnet)
    assert c.check([text.replace_word(1, "bad"), text.replace_word(1, "great")], text, text) == [False, True]


def test_attack_filters_every_candidate_whatever_the_transformation(victim):
    class Everything(Transformation):
        def replacements(self, text, index):
            return ["zzz"]

    attack = Attack(UntargetedClassification(victim), [StopwordModification(), RepeatModification()], Everything(),
                    GreedyWordSwapWIR("delete"))
    attack.original = ORIGINAL
    cands = attack.candidates(ORIGINAL)
    assert cands and all(not StopwordModification().is_stopword(ORIGINAL.words[i])
                         for c in cands for i in c.changed_indices)
    # a candidate that slips past allowed_indices is still caught by check()
    assert attack.filter([ORIGINAL.replace_word(0, "zzz")], ORIGINAL) == []


# -- transformations ------------------------------------------------------------------------------

def test_character_edits():
    text = AttackedText("a lovely film")
    edit = CharacterEdit("swap", random_one=False)
    assert edit.replacements(text, 2) == ["iflm", "flim", "fiml"]
    assert CharacterEdit("delete", random_one=False).replacements(text, 2) == ["ilm", "flm", "fim", "fil"]
    assert CharacterEdit("homoglyph", random_one=False).replacements(text, 2)[0] == "f\u0456lm"
    assert len(deepwordbug_edits().replacements(text, 1)) == 4
    with pytest.raises(ValueError, match="accepted: swap, substitute, delete, insert, homoglyph"):
        CharacterEdit("flip")


def test_embedding_neighbours():
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.7, 0.7]])
    swap = EmbeddingNeighbourSwap(vectors, ["good", "fine", "bad", "okay"], max_candidates=2, min_cos_sim=0.5)
    assert [w for w, _ in swap.neighbours("good")] == ["fine", "okay"]
    assert swap.replacements(AttackedText("Good stuff"), 0) == ["Fine", "Okay"]
    assert swap.neighbours("unknownword") == []


def test_wordnet_synonyms(wordnet):
    from costeff_same.attacks.transformations import WordNetSynonymSwap

    swap = WordNetSynonymSwap(wordnet)
    synonyms = swap.synonyms("movie")
    assert "film" in synonyms and "movie" not in synonyms and all("_" not in s for s in synonyms)


# -- the victim and its cache -----------------------------------------------------------------------

def test_victim_answers_prediction_exit_layer_and_all_exits(victim):
    out = victim(TEXTS, all_exits=True)
    fast = victim(TEXTS)
    assert [o.exit_layer for o in out] == [o.exit_layer for o in fast]
    assert [o.prediction for o in out] == [o.prediction for o in fast]
    assert len({o.exit_layer for o in out}) > 1  # the policy spreads them
    for o in out:
        assert o.exit_probs.shape == (victim.num_layers, 2)
        np.testing.assert_allclose(o.exit_probs[o.exit_layer - 1], o.probs, atol=1e-5)
        assert fast[0].exit_probs is None


def test_query_cache_never_changes_an_answer(victim, tiny_model, tokenizer):
    first = victim(TEXTS)
    assert victim.num_queries == len(TEXTS)
    again = victim(list(reversed(TEXTS)) + TEXTS[:2])
    assert victim.num_queries == len(TEXTS) and victim.num_cache_hits == len(TEXTS) + 2
    assert [a.exit_layer for a in reversed(again[:len(TEXTS)])] == [a.exit_layer for a in first]
    uncached = MultiExitVictim(tiny_model, tokenizer, victim.policy, max_length=32, batch_size=1, cache_size=0)
    for text, cached in zip(TEXTS, first):
        fresh = uncached([text])[0]  # another batch composition, no cache
        assert (fresh.prediction, fresh.exit_layer) == (cached.prediction, cached.exit_layer)
        np.testing.assert_allclose(fresh.probs, cached.probs, atol=1e-5)
    assert uncached.num_queries == len(TEXTS) and uncached.num_cache_hits == 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TEXTS), min_size=1, max_size=12), st.integers(1, 5))
def test_cache_property_any_order_and_batch_size(tiny_model, tokenizer, texts, batch_size):
    reference = MultiExitVictim(tiny_model, tokenizer, ExitPolicy("patience", 1), max_length=32, cache_size=0)
    cached = MultiExitVictim(tiny_model, tokenizer, ExitPolicy("patience", 1), max_length=32, batch_size=batch_size)
    cached(TEXTS[::-1])
    for a, b in zip(cached(texts), reference(texts)):
        assert (a.prediction, a.exit_layer) == (b.prediction, b.exit_layer)
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)


def test_dynamic_padding_and_padding_to_512(victim, tiny_model, tokenizer):
    assert victim.encode(["a b", "a b c d e"])["input_ids"].shape[1] == 7
    padded = MultiExitVictim(tiny_model, tokenizer, victim.policy, max_length=32, pad_to=128)
    assert padded.encode(["a b"])["input_ids"].shape[1] == 128
    with pytest.raises(ValueError, match="pad_to"):
        MultiExitVictim(tiny_model, tokenizer, victim.policy, max_length=32, pad_to=16)


def test_gradients_are_fresh_on_every_call(victim):
    def loss(exit_logits, exit_layer):
        return torch.log_softmax(exit_logits, -1)[..., 0].mean()

    a = victim.gradients(TEXTS[:2], loss)
    b = victim.gradients(TEXTS[:2], loss)
    assert a.grad.shape == (*a.input_ids.shape, tiny_hidden(victim))
    assert torch.equal(a.grad, b.grad) and a.grad.abs().sum() > 0
    assert all(p.grad is None for p in victim.model.parameters())
    assert victim.word_embeddings.shape[0] == 30522


def tiny_hidden(victim):
    return victim.model.config.hidden_size


def test_word_alignment_maps_multi_piece_words(victim):
    text = AttackedText("an unbelievably lovely film")
    pieces = victim.word_alignment(text)
    ids = victim.encode([text.text])["input_ids"][0]
    assert len(pieces) == 4 and pieces[0] == [1]
    assert len(pieces[1]) >= 2  # "unbelievably" is several word pieces
    decoded = victim.tokenizer.decode(ids[pieces[1]]).replace(" ##", "").replace("##", "")
    assert decoded == "unbelievably"


# -- goal functions and budget -----------------------------------------------------------------------

def test_query_budget_is_never_exceeded(victim):
    goal = UntargetedClassification(victim, query_budget=3)
    text = AttackedText(TEXTS[2])
    goal.start(text, 0)
    results = goal.evaluate([text.replace_word(i, "zzz") for i in range(5)])
    assert goal.num_queries == 3 and len(results) == 2 and goal.budget_exhausted
    assert goal.evaluate([text.replace_word(0, "qqq")]) == []
    assert len(goal.evaluate([text])) == 1  # cached answers are free


def test_goal_scores(victim):
    text = AttackedText(TEXTS[0])
    goal = UntargetedClassification(victim)
    first = goal.start(text, 1)
    assert first.score == pytest.approx(1 - first.output.probs[1])
    assert first.succeeded == (first.output.prediction != 1)
    slow = Slowdown(victim)
    r = slow.start(text, 1)
    assert r.score == r.output.exit_layer / victim.num_layers
    assert r.succeeded == (r.output.exit_layer == victim.num_layers) == slow.should_skip(r)
    with pytest.raises(ValueError, match="target_layer"):
        Slowdown(victim, target_layer=9)
    with pytest.raises(ValueError, match="query_budget"):
        UntargetedClassification(victim, query_budget=0)


# -- search and recipes ----------------------------------------------------------------------------

def _strip(result):
    return {k: v for k, v in dataclasses.asdict(result).items() if k != "seconds"}


def test_beam_search_returns_the_best_text_seen(victim):
    goal = Slowdown(victim)
    attack = Attack(goal, [StopwordModification(), RepeatModification()], deepwordbug_edits(random_one=False),
                    BeamSearch(beam_width=2, max_iterations=2), name="slow")
    result = attack.attack(TEXTS[4], 0, seed=1)
    assert result.perturbed_exit_layer >= result.original_exit_layer
    assert result.status in ("succeeded", "failed", "skipped")
    with pytest.raises(ValueError, match="beam_width"):
        BeamSearch(beam_width=0)
    with pytest.raises(ValueError, match="accepted: delete, unk, weighted-saliency, random"):
        GreedyWordSwapWIR("gradient")


@pytest.mark.parametrize("recipe", ["deepwordbug", "textfooler", "pwws"])
def test_recipe_run_with_a_fixed_seed_is_reproducible(recipe, victim, tiny_model, tokenizer, request):
    if recipe == "pwws":
        request.getfixturevalue("wordnet")
    examples = list(zip(TEXTS[:4], [0, 1, 0, 1]))
    first = [_strip(r) for r in build_recipe(recipe, victim, query_budget=40).attack_many(examples, seed=3)]
    fresh = MultiExitVictim(tiny_model, tokenizer, victim.policy, max_length=32, batch_size=7)
    second = [_strip(r) for r in build_recipe(recipe, fresh, query_budget=40).attack_many(examples, seed=3)]
    assert first == second
    assert all(r["num_queries"] <= 40 for r in first)
    assert {r["status"] for r in first} <= {"succeeded", "failed", "skipped"}
    for r in first:
        assert not any(StopwordModification().is_stopword(w) for w in r["original_words"])


class NoLetterE(Constraint):
    """An 'expensive' stand-in constraint: a changed word may not contain the letter e."""

    expensive = True

    def __init__(self):
        self.calls = 0

    def check_one(self, candidate, original, current):
        self.calls += 1
        return not any("e" in candidate.words[i] for i in candidate.changed_indices)


def test_lazy_constraints_pick_the_same_replacements(victim):
    swap = EmbeddingNeighbourSwap.from_minilm(min_cos_sim=0.3, max_candidates=8)
    texts = [t for t in TEXTS if len(t.split()) > 3]

    def run(lazy):
        fresh = MultiExitVictim(victim.model, victim.tokenizer, victim.policy, max_length=32)  # no shared cache
        costly = NoLetterE()
        attack = Attack(UntargetedClassification(fresh), [StopwordModification(), costly], swap,
                        GreedyWordSwapWIR("delete", lazy_constraints=lazy))
        return [attack.attack(t, y) for t, y in zip(texts, [0, 1, 0, 1])], costly.calls

    (eager, eager_calls), (lazy, lazy_calls) = run(False), run(True)
    assert [r.perturbed_text for r in eager] == [r.perturbed_text for r in lazy]
    assert [r.status for r in eager] == [r.status for r in lazy]
    assert any(r.words_changed for r in lazy)
    assert not any("e" in w for r in lazy for w in r.new_words)
    assert all(a.num_queries <= b.num_queries for a, b in zip(eager, lazy))
    assert lazy_calls < eager_calls


def test_recipes_registry():
    assert set(RECIPES) == {"pwws", "textfooler", "deepwordbug", "waffle"}
    assert recipe_module("pwws").NAME == "pwws"
    with pytest.raises(ValueError, match="accepted: pwws, textfooler, deepwordbug, waffle"):
        recipe_module("hotflip")


# -- resources -----------------------------------------------------------------------------------------

def test_lexnames_is_wordnet_30():
    assert len(WORDNET_LEXNAMES) == 45
    lines = lexnames_text().splitlines()
    assert lines[0] == "00\tadj.all\t3" and lines[18] == "18\tnoun.person\t1" and lines[44] == "44\tadj.ppl\t3"


def test_pwws_without_wordnet_says_how_to_get_it(victim, tmp_path, monkeypatch):
    monkeypatch.setenv("COSTEFF_SAME_NLTK_DATA", str(tmp_path / "empty"))
    load_wordnet.cache_clear()
    try:
        with pytest.raises(ResourceError, match="costeff-same data wordnet"):
            build_recipe("pwws", victim)
        build_recipe("deepwordbug", victim)  # the other recipes still run
        with pytest.warns(UserWarning, match="WordNet is missing"):  # MiniLM's words need no WordNet
            build_recipe("textfooler", victim, word_vectors="minilm")
    finally:
        monkeypatch.undo()
        load_wordnet.cache_clear()
    assert "apt-get download" in HOW_TO_GET_WORDNET


def test_wordnet_is_in_the_project_folder(wordnet):
    from costeff_same.attacks.resources import wordnet_dir
    from costeff_same.foundations.paths import nltk_data_dir

    assert wordnet_dir().is_relative_to(nltk_data_dir())
    assert not any(p.is_symlink() for p in wordnet_dir().iterdir())
    assert wordnet.synsets("good")


# -- the experiment's figures ------------------------------------------------------------------------

def test_summarize_counts_and_efficiency():
    from costeff_same.attacks.units import summarize

    def r(status, pred0, pred1, e0, e1, label=1):
        return {"status": status, "label": label, "original_prediction": pred0, "perturbed_prediction": pred1,
                "original_exit_layer": e0, "perturbed_exit_layer": e1, "perturbation_rate": 0.1,
                "words_changed": 2, "num_queries": 10, "seconds": 0.5, "budget_exhausted": False}

    s = summarize([r("succeeded", 1, 0, 2, 4), r("failed", 1, 1, 2, 2), r("skipped", 0, 0, 1, 1)], 4)
    assert (s["attacked"], s["succeeded"], s["skipped"]) == (2, 1, 1)
    assert s["accuracy_before"] == pytest.approx(2 / 3) and s["accuracy_after"] == pytest.approx(1 / 3)
    assert s["success_rate"] == 0.5
    e = s["efficiency"]
    assert e["mean_exit_layer_clean"] == 2 and e["mean_exit_layer_adv"] == 3
    assert e["efficiency_gain_reduction"] == pytest.approx((0.5 - 0.25) / 0.5)
    none = summarize([r("skipped", 0, 0, 1, 1)], 4)
    assert none["success_rate"] is None and none["efficiency"] == {"examples": 0}


def test_config_rejects_unknown_values():
    from costeff_same.chapters.accuracy_attacks import accuracy_attacks_config
    from costeff_same.foundations.config import ConfigError

    cfg = accuracy_attacks_config(victim_profile="smoke", num_examples=4)
    assert cfg.multi_exit.data.max_length == 32
    two = accuracy_attacks_config(victim_profile="smoke", textfooler_min_cos_sims=[0.5, 0.4],
                                  textfooler_stand_in_min_cos_sims=[0.5, 0.4])
    assert [u.key for u in two.units("entropy", "textfooler", 0.3)] == [
        "textfooler", "textfooler_cos0.4", "textfooler_minilm", "textfooler_minilm_cos0.4"]
    assert [u.word_vectors for u in two.units("entropy", "textfooler", 0.3)] == ["counter_fitted"] * 2 + ["minilm"] * 2
    assert [u.key for u in two.units("entropy", "pwws", 0.3)] == ["pwws"]
    with pytest.raises(ConfigError, match="textfooler_min_cos_sims"):
        accuracy_attacks_config(victim_profile="smoke", textfooler_min_cos_sims=[])
    with pytest.raises(ConfigError, match=r"textfooler_stand_in_min_cos_sims=\[2.0\]"):
        accuracy_attacks_config(victim_profile="smoke", textfooler_stand_in_min_cos_sims=[2.0])
    with pytest.raises(ConfigError, match="accepted: pwws, textfooler, deepwordbug"):
        accuracy_attacks_config(victim_profile="smoke", recipes=["hotflip"])
    with pytest.raises(ConfigError, match="differs from chapter 1"):
        accuracy_attacks_config(victim_profile="smoke", backbone="minilm-l6")
    with pytest.raises(ConfigError, match="unknown parameter"):
        accuracy_attacks_config(victim_profile="smoke", beam=3)


# -- the TextAttack adapter ----------------------------------------------------------------------------

def test_textattack_adapter(victim):
    pytest.importorskip("textattack")
    from costeff_same.attacks.textattack_adapter import TextAttackVictim

    wrapper = TextAttackVictim(victim)
    probs = wrapper(TEXTS[:3])
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
