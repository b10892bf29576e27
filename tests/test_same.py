"""SAME (Chen et al., 2023): its loss, its fixes of the reference code, its constraints, its experiment."""

import math
import random

import numpy as np
import pytest
import torch
from conftest import spread_victim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costeff_same.attacks.constraints import StopwordModification
from costeff_same.attacks.goal_functions import GoalResult
from costeff_same.attacks.same_chen_2023 import SameBeamSearch, build
from costeff_same.attacks.same_loss import (
    SameLoss,
    cross_prediction_targets,
    dynamic_weights,
    same_loss,
    uniform_term,
)
from costeff_same.attacks.same_transformation import SameGradients
from costeff_same.attacks.same_units import ABLATIONS, SameSettings, same_summary
from costeff_same.attacks.text import AttackedText
from costeff_same.attacks.victim import MultiExitVictim
from costeff_same.chapters.same import same_config
from costeff_same.core.exits import ExitPolicy
from costeff_same.foundations.config import ConfigError, load_profile

TEXTS = [
    "the film is a charming and often affecting journey",
    "an unbelievably lovely film with lovely performances",
    "too slow , too long and too little happens",
    "an ambitious , serious film that manages to do virtually everything wrong",
]
STOPWORDS = StopwordModification().stopwords


@pytest.fixture
def victim(tiny_model, tokenizer):
    """The tiny random DeeBERT-style model behind an entropy policy that spreads exits over layers."""
    return spread_victim(tiny_model, tokenizer, TEXTS, batch_size=8)


# -- the loss --------------------------------------------------------------------------------------

def test_loss_equals_a_hand_computed_value_on_a_three_exit_toy():
    # exits 1..3, three classes, the text exits at layer e = 2
    z = torch.tensor([[[1.0, 0.0, 0.0]], [[2.0, 1.0, 0.0]], [[0.0, 3.0, 1.0]]])   # (L=3, batch=1, C=3)
    e = torch.tensor([2])
    # weights: 0.1 before e, 1.2 ** (i - e) from e on
    assert dynamic_weights(e, 3)[:, 0].tolist() == pytest.approx([0.1, 1.0, 1.2])
    # targets: y1 = argmax z1 = 0; exit 2 agrees with exit 1 (argmax 0) -> its second best, 1;
    # exit 3 disagrees (argmax 1) -> its argmax, 1
    assert cross_prediction_targets(z)[:, 0].tolist() == [0, 1, 1]

    def lse(v):
        return math.log(sum(math.exp(x) for x in v))

    rows = z[:, 0].tolist()
    ce = [lse(rows[0]) - rows[0][0], lse(rows[1]) - rows[1][1], lse(rows[2]) - rows[2][1]]
    uniform = [lse(r) - sum(r) / 3 for r in rows]
    w = [0.1, 1.0, 1.2]
    l_x = sum(a * b for a, b in zip(w, ce)) / 3
    l_u = sum(a * b for a, b in zip(w, uniform)) / 3
    expected = 0.8 * l_x + 0.2 * l_u
    assert expected == pytest.approx(0.6932996642128204, abs=1e-12)  # worked out by hand, as above
    assert float(same_loss(z, e)) == pytest.approx(expected, abs=1e-6)
    assert float(same_loss(z, e, lam=0.0)) == pytest.approx(l_u, abs=1e-6)      # uniform term only
    assert float(same_loss(z, e, lam=1.0)) == pytest.approx(l_x, abs=1e-6)      # cross-prediction only
    flat = float(same_loss(z, e, dynamic=False))
    assert flat == pytest.approx(0.8 * sum(ce) / 3 + 0.2 * sum(uniform) / 3, abs=1e-6)
    # a batch: the summed loss is the sum of the per-example losses
    batch = torch.cat([z, z.flip(-1)], dim=1)
    per = same_loss(batch, torch.tensor([2, 3]))
    assert float(SameLoss()(batch, torch.tensor([2, 3]))) == pytest.approx(float(per.sum()), abs=1e-6)


def test_loss_rejects_bad_inputs():
    z = torch.zeros(3, 1, 2)
    with pytest.raises(ValueError, match="lambda"):
        same_loss(z, torch.tensor([1]), lam=1.5)
    with pytest.raises(ValueError, match="exit layers"):
        same_loss(z, torch.tensor([4]))
    with pytest.raises(ValueError, match="two classes"):
        cross_prediction_targets(torch.zeros(3, 1, 1))
    assert float(uniform_term(z, torch.ones(3, 1))[0]) == pytest.approx(math.log(2))  # uniform already


# -- the fixes of the reference code -----------------------------------------------------------------

def _expand(attack, text):
    attack.transformation.set_rng(random.Random(0))  # the character level samples: same draws each time
    attack.original = text
    return [c.text for c in attack.candidates(text)]


def test_gradient_is_zeroed_between_expansions(victim):
    attack = build(victim, top_n=20)
    a, b = AttackedText(TEXTS[0]), AttackedText(TEXTS[1])
    first = _expand(attack, a)
    assert first and first == _expand(attack, a)          # two identical expansions, identical candidates
    _expand(attack, b)                                    # another text in between changes nothing
    assert _expand(attack, a) == first
    assert attack.transformation.gradients.accumulated is None


def test_reference_quirks_accumulate_the_gradient(victim):
    fixed = build(victim, top_n=20)
    quirky = build(victim, top_n=20, reference_quirks=True)
    a, b = AttackedText(TEXTS[0]), AttackedText("the charming film is a journey of wrong performances")
    first = _expand(quirky, a)
    assert first == _expand(fixed, a)                     # from a zero accumulator the first expansion agrees
    _expand(quirky, b)
    third = _expand(quirky, a)
    assert third != first                                 # b's gradient leaked into a's ranking
    assert _expand(fixed, a) == first
    # the accumulator is exactly the sum of the three fresh gradients, scattered to token rows
    grads = SameGradients(victim, SameLoss())
    total = torch.zeros(victim.word_embeddings.shape)
    for text in (a, b, a):
        g = grads([text])[0]
        total.index_add_(0, g.input_ids, g.grad)
    assert torch.allclose(quirky.transformation.gradients.accumulated, total, atol=1e-6)
    assert quirky.transformation.gradients.calls == 3


def test_multi_piece_words_are_swapped_only_with_the_fix(victim):
    text = AttackedText(TEXTS[1])                          # "unbelievably" is several word pieces
    pieces = victim.word_alignment(text)
    multi = {i for i, p in enumerate(pieces) if len(p) > 1}
    assert multi
    fixed = build(victim, top_n=2000, char_level=False)
    quirky = build(victim, top_n=2000, char_level=False, reference_quirks=True)
    fixed.original = quirky.original = text
    touched_fixed = {i for c in fixed.candidates(text) for i in c.changed_indices}
    touched_quirky = {i for c in quirky.candidates(text) for i in c.changed_indices}
    assert touched_fixed & multi and not touched_quirky & multi
    # a multi-piece word is replaced by a one-piece vocabulary word
    for c in fixed.candidates(text):
        for i in c.changed_indices & multi:
            assert len(victim.tokenizer.tokenize(c.words[i])) == 1


class _ScriptedGoal:
    """Scores a text by a table (its depth in the search: 0.8 after one swap, 0.5 after two)."""

    budget_exhausted = False

    def __init__(self, table):
        self.table = table

    def evaluate(self, texts):
        from costeff_same.attacks.victim import VictimOutput

        return [GoalResult(t, VictimOutput(0, 1, np.array([0.5, 0.5])), self.table[t.text], False) for t in texts]


class _ScriptedAttack:
    def __init__(self, tree, table):
        self.tree, self.goal = tree, _ScriptedGoal(table)

    def candidates(self, text, deferred=False):
        return [AttackedText(t) for t in self.tree.get(text.text, [])]


def test_the_best_text_seen_is_returned_not_the_last_beams_best():
    tree = {"a b c": ["x b c", "y b c"], "x b c": ["x z c"], "y b c": ["y z c"]}
    table = {"x b c": 0.8, "y b c": 0.7, "x z c": 0.5, "y z c": 0.4}
    initial = GoalResult(AttackedText("a b c"), None, 0.2, False)
    fixed = SameBeamSearch(beam_width=2, max_iterations=5).search(_ScriptedAttack(tree, table), initial)
    quirky = SameBeamSearch(beam_width=2, max_iterations=5, return_best_seen=False).search(
        _ScriptedAttack(tree, table), initial)
    assert (fixed.text.text, fixed.score) == ("x b c", 0.8)
    assert (quirky.text.text, quirky.score) == ("x z c", 0.5)   # the reference: the last beam's best
    assert build.__kwdefaults__ is None and SameBeamSearch().return_best_seen


def test_chunked_early_exit_scoring_returns_what_a_full_evaluation_does(victim, tiny_model, tokenizer):
    for text in TEXTS:
        chunked = build(victim, top_n=30, chunk_size=4).attack(text, 1, seed=2)
        fresh = MultiExitVictim(tiny_model, tokenizer, victim.policy, max_length=32, batch_size=8)
        whole = build(fresh, top_n=30, chunk_size=None).attack(text, 1, seed=2)
        assert (chunked.perturbed_text, chunked.status) == (whole.perturbed_text, whole.status)
        assert chunked.num_queries <= whole.num_queries


def test_early_exit_scoring_gives_the_full_forward_exit_layers(victim):
    attack = build(victim, top_n=40)
    candidates = []
    for text in TEXTS:      # the texts themselves spread over the layers (the policy is set so)
        attack.original = AttackedText(text)
        candidates += [text] + [c.text for c in attack.candidates(attack.original)][:10]
    fast = [o.exit_layer for o in victim(candidates)]
    full = [o.exit_layer for o in victim(candidates, all_exits=True)]
    assert fast == full
    assert len(set(fast)) >= 2, "the candidates must exit at different layers, or the comparison shows little"


# -- constraints (property-based) --------------------------------------------------------------------

WORDS = ["the", "film", "is", "a", "charming", "and", "unbelievably", "dull", "it", "'s", "too", "long",
         "with", "performances", "wrong", ",", ".", "never", "movie", "heartwarming", "of", "42", "so",
         "bad", "well-made", "not", "quite", "masterpiece", "over", "everything"]


def _check_constraints(candidate):
    budget = max(3, math.ceil(0.1 * candidate.num_words))
    assert len(candidate.changed_indices) <= budget
    assert max(candidate.modification_counts) <= 1
    assert not any(candidate.original_words[i].lower() in STOPWORDS for i in candidate.changed_indices)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=40), st.integers(0, 3))
def test_budget_and_stopwords_are_never_violated(victim, words, seed):
    text = AttackedText(" ".join(words))
    attack = build(victim, top_n=15, top_k=4, beam_width=2, max_iterations=4)
    # a random walk through the candidates, whatever the victim answers, until none is left
    attack.transformation.set_rng(random.Random(seed))
    attack.original, current, walk = text, text, random.Random(seed)
    for _ in range(6):
        candidates = attack.candidates(current)
        for c in candidates:
            _check_constraints(c)
        if not candidates:
            break
        current = walk.choice(candidates)
    budget = max(3, math.ceil(0.1 * text.num_words))
    kept = victim.word_alignment(text)  # words cut off by max_length have no tokens
    eligible = [w for w, p in zip(text.words, kept) if p and w.lower() not in STOPWORDS and w.isalpha() and len(w) > 1]
    assert len(current.changed_indices) == min(budget, len(eligible), 6)
    # the whole attack: every candidate it looks at obeys the constraints too
    original_candidates = attack.candidates

    def checked(current, indices=None, deferred=False):
        out = original_candidates(current, indices, deferred)
        for c in out:
            _check_constraints(c)
        return out

    attack.candidates = checked
    result = attack.attack(text.text, 1, seed=seed)
    assert result.words_changed <= budget
    assert not any(w.lower() in STOPWORDS for w in result.original_words)
    if result.status != "skipped":
        assert result.perturbed_exit_layer >= result.original_exit_layer   # the best text seen


# -- the goal: skipped examples ----------------------------------------------------------------------

def test_an_example_exiting_at_the_last_layer_is_skipped_and_counted(tiny_model, tokenizer, victim):
    never_early = MultiExitVictim(tiny_model, tokenizer, ExitPolicy("entropy", 0.0), max_length=32)
    result = build(never_early).attack(TEXTS[0], 1)
    assert result.status == "skipped" and result.original_exit_layer == tiny_model.num_layers
    assert result.num_queries == 1 and result.perturbed_text == TEXTS[0]
    results = [result.to_dict()] + [build(victim, top_n=20).attack(t, 1).to_dict() for t in TEXTS[1:]]
    summary = same_summary(results, tiny_model.num_layers, SameSettings())
    expected_skipped = sum(r["status"] == "skipped" for r in results)
    assert summary["skipped"] == expected_skipped >= 1
    assert summary["attacked"] == len(results) - expected_skipped
    assert summary["budget_violations"] == 0
    e = summary["efficiency_all"]
    assert e["examples"] == len(results) and e["mean_exit_layer_adv"] >= e["mean_exit_layer_clean"]


# -- the experiment's configuration ------------------------------------------------------------------

def test_profiles_parse_and_bad_parameters_fail_loudly():
    for profile in ("smoke", "default", "paper"):
        cfg = same_config(**load_profile(profile)["04_same"])
        assert set(cfg.ablations) == set(ABLATIONS) and cfg.settings.top_n == 100
    default = same_config(**load_profile("default")["04_same"])
    assert default.num_examples >= 200 and default.ablation_examples >= 50
    unit = default.unit("entropy", 0.3, "reference_quirks", 50)
    assert unit.settings.reference_quirks and unit.num_examples == 50
    with pytest.raises(ConfigError, match="unknown parameter"):
        same_config(victim_profile="smoke", beam=3)
    with pytest.raises(ConfigError, match="lam"):
        same_config(victim_profile="smoke", lam=2.0)
    with pytest.raises(ConfigError, match="differs from chapter 1"):
        same_config(victim_profile="smoke", backbone="minilm-l6")
    with pytest.raises(ConfigError, match="unknown ablation"):
        same_config(victim_profile="smoke", ablations=["nothing"])
    assert SameSettings().budget(10) == 3 and SameSettings().budget(31) == 4
    assert np.isclose(SameSettings().lam, 0.8)


def test_ties_in_exit_layer_are_broken_by_the_uncertainty_of_the_exit_taken():
    from costeff_same.attacks.victim import VictimOutput

    def result(layer, p):
        return GoalResult(AttackedText("a"), VictimOutput(0, layer, np.array([p, 1 - p])), layer / 6, False)

    sure, unsure, later = result(3, 0.99), result(3, 0.6), result(4, 0.99)
    search = SameBeamSearch()
    assert sorted([sure, later, unsure], key=search.rank_key, reverse=True) == [later, unsure, sure]
    plain = SameBeamSearch(tie_break=False)
    assert sorted([sure, later, unsure], key=plain.rank_key, reverse=True) == [later, sure, unsure]  # stable
