"""Chapter 6's defences: the sanitiser, the compute guard on both execution paths, the adaptive
goal, adversarial training's data, and the config's errors."""

import math

import numpy as np
import pytest
import torch

from costeff_same import verdicts
from costeff_same.attacks.goal_functions import Slowdown
from costeff_same.attacks.same_chen_2023 import build
from costeff_same.attacks.same_loss import SameLoss
from costeff_same.attacks.text import AttackedText
from costeff_same.attacks.transformations import HOMOGLYPHS
from costeff_same.attacks.victim import MultiExitVictim
from costeff_same.chapters.defences import defences_config
from costeff_same.core.exits import ExitPolicy, early_exit_forward, simulate_exits
from costeff_same.defences.guard import DetectorPenalty, GuardedPolicy, TrajectoryDetector, trajectory_features
from costeff_same.defences.sanitiser import Sanitiser, fold_homoglyphs, homoglyph_table
from costeff_same.defences.systems import DefenceConfig, SanitisedVictim, split_sentences, training_sentences
from costeff_same.foundations.config import ConfigError, DataConfig

TEXTS = ["a fine film", "the plot is thin and the acting is worse than the script", "dull",
         "one of the year's best, a quiet and generous drama about two brothers",
         "it never finds its feet", "funny", "a mess", "the cast is superb and the story moves"]


@pytest.fixture(scope="module")
def rotten_tomatoes():
    """The packaged Rotten Tomatoes splits as chapter 1 prepares them."""
    data = DataConfig()
    return data, split_sentences(data, "train")[0], split_sentences(data, "test")[0]


@pytest.fixture(scope="module")
def sanitiser(rotten_tomatoes):
    return Sanitiser(rotten_tomatoes[1])


def test_every_homoglyph_of_the_table_folds_back_to_its_letter():
    table = homoglyph_table()
    assert len(table) > 1000
    wrong = {c: (letter, fold_homoglyphs(c)) for c, letter in table.items() if fold_homoglyphs(c) != letter}
    assert not wrong, f"{len(wrong)} homoglyphs fold elsewhere, e.g. {list(wrong.items())[:5]}"
    assert fold_homoglyphs("\u0430\u0441\u0435") == "ace"          # Cyrillic a, c, e


def test_the_sanitiser_restores_every_homoglyph_the_attacks_use(sanitiser):
    for letter, glyph in HOMOGLYPHS.items():
        word = next(w for w in ("amazing", "character", "decided", "engaging", "great", "haunting", "intimate",
                                "jokes", "kind", "lovely", "nothing", "often", "plot", "quite", "story",
                                "until", "very", "work", "exactly", "yet") if letter in w)
        attacked = word.replace(letter, glyph, 1)
        assert attacked != word
        assert sanitiser(f"the {attacked} film") == f"the {word} film", (letter, glyph, word)


def test_the_sanitiser_corrects_character_edits_and_keeps_real_words(sanitiser):
    assert sanitiser("a mvoie with a great cast") == "a movie with a great cast"     # swap
    assert sanitiser("a movvie") == "a movie"                                        # insertion
    assert sanitiser("The Movei") == "The Movie"                                     # case kept
    assert sanitiser("a dull movie , really") == "a dull movie , really"


def test_the_sanitiser_leaves_clean_training_sentences_unchanged_and_counts_test_ones(sanitiser, rotten_tomatoes):
    _, train, test = rotten_tomatoes
    assert sanitiser.changed(train) == 0
    changed = sanitiser.changed(test)
    assert 0 < changed < 0.5 * len(test), changed    # unseen words in test sentences get "corrected"


def test_a_sanitised_victim_answers_for_the_sanitised_text(tiny_model, tokenizer):
    sanitiser = Sanitiser(TEXTS)
    victim = SanitisedVictim(tiny_model, tokenizer, ExitPolicy("entropy", 0.5), max_length=32, sanitise=sanitiser)
    plain = MultiExitVictim(tiny_model, tokenizer, ExitPolicy("entropy", 0.5), max_length=32)
    attacked = "a f\u0456ne fi1m"                          # a homoglyph and a digit for l
    assert sanitiser(attacked) == "a fine film"
    got, want = victim([attacked])[0], plain(["a fine film"])[0]
    assert (got.exit_layer, got.prediction) == (want.exit_layer, want.prediction)
    assert np.array_equal(got.probs, want.probs)
    assert victim.is_cached(attacked) and not plain.is_cached(attacked)


def _detector(cap: int, threshold: float) -> TrajectoryDetector:
    """A detector that scores the mean normalised entropy of exits 1..cap (no fit)."""
    n = 2 * cap - 1
    coef = np.r_[np.ones(cap), np.zeros(cap - 1)].astype(np.float32)
    return TrajectoryDetector(cap, np.zeros(n, np.float32), np.ones(n, np.float32), coef, 0.0, threshold)


def test_a_flagged_input_never_runs_past_the_cap_layer_on_either_path(tiny_model, tokenizer):
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = tiny_model(**batch).exit_logits                      # (L, N, C)
    cap = 2
    scores = _detector(cap, 0.0).logit(logits).numpy()
    detector = _detector(cap, float(np.median(scores)))               # about half are flagged
    flagged = detector.flags(logits)
    assert 0 < flagged.sum() < len(TEXTS)
    policy = GuardedPolicy(ExitPolicy("entropy", 0.0), detector)     # the base policy never exits early
    full = simulate_exits(logits, policy).exit_layer
    early = early_exit_forward(tiny_model, batch["input_ids"], batch["attention_mask"], policy,
                               batch.get("token_type_ids")).exit_layer.numpy()
    assert (full == early).all()
    assert (full[flagged] == cap).all()
    assert (full[~flagged] == tiny_model.num_layers).all()


def test_the_adaptive_goal_includes_the_guard_and_disagrees_with_the_non_adaptive_one(tiny_model, tokenizer):
    text = AttackedText(TEXTS[1])
    base = ExitPolicy("entropy", 0.0)                                 # every text runs to the last layer
    plain = MultiExitVictim(tiny_model, tokenizer, base, max_length=32)
    guarded = MultiExitVictim(tiny_model, tokenizer, GuardedPolicy(base, _detector(2, -math.inf)), max_length=32)
    non_adaptive, adaptive = Slowdown(plain), Slowdown(guarded)
    a, b = non_adaptive.start(text, 1), adaptive.start(text, 1)
    assert a.succeeded and a.output.exit_layer == tiny_model.num_layers
    assert not b.succeeded and b.output.exit_layer == 2 and b.score < a.score


def test_the_guard_aware_loss_adds_the_detectors_penalty_and_its_gradient(tiny_model, tokenizer):
    batch = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    logits = tiny_model(**batch).exit_logits.detach().requires_grad_(True)
    layers = torch.full((3,), tiny_model.num_layers)
    same = SameLoss()
    aware = SameLoss(penalty=DetectorPenalty(_detector(2, 0.0), mu=1.0))
    plain_value, aware_value = same(logits, layers), aware(logits, layers)
    assert aware_value > plain_value
    (g_plain,), (g_aware,) = torch.autograd.grad(plain_value, logits), torch.autograd.grad(aware_value, logits)
    assert not torch.allclose(g_plain[:2], g_aware[:2])              # the detector reads exits 1..2
    assert torch.allclose(g_plain[2:], g_aware[2:])                  # and nothing after
    penalty = DetectorPenalty(_detector(2, 0.0))
    victim = MultiExitVictim(tiny_model, tokenizer, ExitPolicy("entropy", 0.0), max_length=32)
    assert build(victim, penalty=penalty).transformation.gradients.loss.penalty is penalty


def test_the_detector_separates_uniform_trajectories_and_spends_no_more_than_its_accuracy_budget():
    torch.manual_seed(0)
    confident = torch.randn(4, 200, 2) * 0.5 + torch.tensor([3.0, -3.0])
    uniform = torch.randn(4, 200, 2) * 0.1
    detector = TrajectoryDetector.fit(confident.numpy(), uniform.numpy(), cap_layer=3)
    assert trajectory_features(confident, 3).shape == (200, 5)
    # 400 clean inputs of label 0, all reaching the cap layer and served right by the victim;
    # exit 3 gets the first 50 wrong and the near-uniform ones right
    logits = torch.cat([confident, uniform], 1).numpy()
    logits[2, :50] = [-3.0, 3.0]
    logits[2, 200:] = [0.05, 0.0]
    labels, served, layers = np.zeros(400, dtype=int), np.zeros(400, dtype=int), np.full(400, 4)
    wrong_at_cap = np.arange(400) < 50
    for budget in (0.0, 0.02, 0.05, 0.5):
        threshold = detector.calibrate(logits, labels, layers, served, budget)
        flagged = detector.flags(logits)
        assert np.mean(flagged & wrong_at_cap) <= budget + 1e-12, budget
        assert flagged[200:].mean() > 0.95                          # the free, attack-like ones first
    assert threshold == -math.inf and detector.flags(logits).all()  # 50 wrong of 400 fit in 0.5
    assert TrajectoryDetector.from_dict(detector.to_dict()).threshold == threshold
    detector.calibrate(logits, labels, np.ones(400, dtype=int), served, 0.5)
    assert detector.threshold == math.inf                            # nothing reaches the cap: flag nothing
    with pytest.raises(ValueError, match="max_cost=-1"):
        detector.calibrate(logits, labels, layers, served, -1)


def test_adversarial_training_sentences_never_include_a_test_sentence(rotten_tomatoes):
    data, _, test = rotten_tomatoes
    rounds = [training_sentences(data, 64, 64 * r, seed=0)[0] for r in range(3)]
    assert all(len(r) == 64 for r in rounds)
    assert not set().union(*rounds) & set(test)
    assert not set(rounds[0]) & set(rounds[1])                       # each round its own slice
    with pytest.raises(ConfigError, match="training sentences asked"):
        training_sentences(data, 10 ** 6, 0, seed=0)


def test_the_goal_verdict_and_the_configs_errors():
    assert verdicts.goal({"estimate": 0.2, "low": 0.1, "high": 0.3}, 0.5) == "met"
    assert verdicts.goal({"estimate": 0.5, "low": 0.4, "high": 0.6}, 0.5) == "undecided"
    assert verdicts.goal({"estimate": 0.9, "low": 0.8, "high": 1.0}, 0.5) == "missed"
    with pytest.raises(ConfigError, match="accepted"):
        defences_config(victim_profile="smoke", defences=["prayer"])
    with pytest.raises(ConfigError, match="same_examples"):
        defences_config(victim_profile="smoke", num_examples=1000)
    with pytest.raises(ConfigError, match="detector"):
        DefenceConfig("guard")
    with pytest.raises(ConfigError, match="accepted"):
        DefenceConfig("firewall")
