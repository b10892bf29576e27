"""Chapter 5 (SAME against COST-EFF): FLOPs at the exit taken, the transfer replay, the
slender victims' two execution paths, the deployer's comparison and the config's errors."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import slender_flops_by_hand

from costeff_same.attacks import transfer
from costeff_same.attacks.victim import MultiExitVictim
from costeff_same.chapters.same_vs_costeff import measure_attack, same_vs_costeff_config
from costeff_same.core.exits import ExitPolicy, entropy, simulate_exits
from costeff_same.core.modeling import MultiExitBertConfig, MultiExitBertForSequenceClassification
from costeff_same.evaluation import paths_agreement
from costeff_same.foundations.config import ConfigError, load_profile
from costeff_same.selection import deployer_comparison

HEADS, FFNS = [2, 1, 3, 2], [16, 32, 8, 64]
TEXTS = ["a fine film", "the plot is thin and the acting is worse than the script", "dull",
         "one of the year's best, a quiet and generous drama about two brothers",
         "it never finds its feet", "funny"]


@pytest.fixture
def slender():
    """A 4-layer ``costeff``-style slender model: a different width in every layer, a factorised embedding."""
    torch.manual_seed(0)
    config = MultiExitBertConfig(exit_style="costeff", vocab_size=30522, hidden_size=32, num_hidden_layers=4,
                                 num_attention_heads=4, intermediate_size=64, max_position_embeddings=128,
                                 num_labels=2, heads_per_layer=HEADS, ffn_per_layer=FFNS, embedding_rank=8)
    return MultiExitBertForSequenceClassification(config).eval()


def spread_policy(model, tokenizer, texts):
    """An entropy threshold (the median first-exit entropy) that spreads ``texts`` over the exits."""
    with torch.no_grad():
        first = model(**tokenizer(texts, padding=True, return_tensors="pt")).exit_logits[0]
    return ExitPolicy("entropy", float(entropy(first).median()))


def unit_of(model, tokenizer, policy, clean, adv):
    """An attack unit's record as the attack units write it, for ``clean`` and ``adv`` texts."""
    def decide(texts):
        with torch.no_grad():
            logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).exit_logits
        return simulate_exits(logits, policy)

    c, a = decide(clean), decide(adv)
    results = [{"original_text": o, "perturbed_text": p, "label": 1, "status": "failed",
                "original_exit_layer": int(c.exit_layer[i]), "perturbed_exit_layer": int(a.exit_layer[i]),
                "original_prediction": int(c.predictions[i]), "perturbed_prediction": int(a.predictions[i])}
               for i, (o, p) in enumerate(zip(clean, adv))]
    summary = {"attacked": len(results), "succeeded": 0, "success_rate": 0.0, "accuracy_before": 0.5,
               "accuracy_after": 0.5, "seconds_per_example": 0.1}
    return {"results": results, "summary": summary}


def test_flops_at_each_sentences_exit_layer_equal_a_hand_count(slender, tokenizer):
    policy = spread_policy(slender, tokenizer, TEXTS)
    unit = unit_of(slender, tokenizer, policy, TEXTS, [t + " indeed" for t in TEXTS])
    cfg = SimpleNamespace(timing_batch_size=4, timing_repeats=1, batch_size=4)
    m = measure_attack(unit, slender, policy, tokenizer, cfg, max_length=32)
    assert len(set(m["clean_exit_layer"])) >= 2          # the sentences really exit at different layers
    for side in ("clean", "adv"):
        for n, k, flops in zip(m[f"{side}_length"], m[f"{side}_exit_layer"], m[f"{side}_flops"]):
            assert flops == slender_flops_by_hand(HEADS, FFNS, n, 32, 2, 8, 8)[k - 1]
    assert m["flops_clean"] == pytest.approx(np.mean(m["clean_flops"]))
    longest = max(m["adv_length"])
    assert m["worst_case_flops"] <= slender_flops_by_hand(HEADS, FFNS, longest, 32, 2, 8, 8)[-1]
    assert m["paths_agreement"]["clean"]["exit_layer"] == 1.0


def test_a_slender_victims_early_exit_path_gives_every_exit_layer_of_the_all_exits_path(slender, tokenizer):
    from costeff_same.core.encoding import Encoded

    policy = spread_policy(slender, tokenizer, TEXTS)
    data = Encoded.from_texts(TEXTS, [0] * len(TEXTS), tokenizer, 32)
    for batch_size in (1, 4, 6):
        assert paths_agreement(slender, data, policy, batch_size) == {"exit_layer": 1.0, "prediction": 1.0}


def test_the_transfer_replay_sends_the_stored_texts_unchanged_and_queries_no_attack(slender, tokenizer,
                                                                                      monkeypatch):
    adv = ["a fіne film", "the plot is thin  and the acting is worse", "dull\u00a0!", "one of the year's best",
           "it never finds its feet", "fuппy"]              # Cyrillic homoglyphs, a double and a no-break space
    policy = spread_policy(slender, tokenizer, TEXTS)
    unit = unit_of(slender, tokenizer, policy, TEXTS, adv)
    sent = []
    encode = transfer.Encoded.from_texts
    monkeypatch.setattr(transfer.Encoded, "from_texts",
                        classmethod(lambda cls, texts, *a: (sent.append(list(texts)), encode(texts, *a))[1]))

    def no_query(*args, **kwargs):
        raise AssertionError("the replay queried an attack's victim")

    monkeypatch.setattr(MultiExitVictim, "__call__", no_query)
    monkeypatch.setattr(MultiExitVictim, "gradients", no_query)
    out = transfer.replay(unit, slender, policy, tokenizer, 32, batch_size=4)
    assert sent == [TEXTS, adv]                                       # byte for byte, in order
    assert [s.encode() for s in sent[1]] == [s.encode() for s in adv]
    assert out["clean_exit_layer"] == [r["original_exit_layer"] for r in unit["results"]]
    assert out["adv_exit_layer"] == [r["perturbed_exit_layer"] for r in unit["results"]]


def test_the_deployers_comparison_on_constructed_costs():
    n = 40
    rng = np.random.default_rng(0)
    static_clean = np.full(n, 100.0) + rng.normal(0, 1, n)
    adv = static_clean * 0.9 + rng.normal(0, 3, n)
    costeff = {"clean_flops": list(static_clean * 0.4), "adv_flops": list(adv),
               "worst_case_flops": 101.0 * 1.01, "labels": [1] * n}
    static = {"static_clean_flops": list(static_clean), "static_adv_flops": list(static_clean),
              "teacher_clean_flops": list(static_clean * 4), "teacher_adv_flops": list(static_clean * 4),
              "static_clean_prediction": [1] * n, "static_adv_prediction": [0] * n}
    d = deployer_comparison(costeff, static)
    assert d["static_minus_costeff_clean_verdict"] == "beats"      # 60 FLOPs cheaper on every sentence
    survives = np.mean(static_clean - adv) / np.mean(static_clean * 0.6)   # about 10 of the 60 are left
    assert d["saving_survives"]["estimate"] == pytest.approx(survives)
    assert d["saving_survives"]["low"] < survives < d["saving_survives"]["high"] < 0.3
    assert d["static_clean_accuracy"] == 1.0 and d["static_adv_accuracy"] == 0.0
    costeff["adv_flops"] = list(static_clean * 1.05)             # the attack makes it dearer than static
    assert deployer_comparison(costeff, static)["static_minus_costeff_adv_verdict"] == "worse"


def test_the_config_names_bad_victims_attacks_and_static_models():
    params = load_profile("smoke")["05_same_vs_costeff"]
    cfg = same_vs_costeff_config(**params)
    assert cfg.static_model() == "static_h2"
    assert cfg.same_unit(cfg.multi_exit.victim("entropy"), "entropy", 0.3).store_candidates
    with pytest.raises(ConfigError, match="teacher.*accepted: costeff, ta, no_ta, final_importance"):
        same_vs_costeff_config(**{**params, "victims": ["teacher"]})
    with pytest.raises(ConfigError, match="textfooler.*accepted: same, pwws"):
        same_vs_costeff_config(**{**params, "attacks": ["textfooler"]})
    with pytest.raises(ConfigError, match="static_h9.*accepted: static_h2"):
        same_vs_costeff_config(**{**params, "static": "static_h9"})
    with pytest.raises(ConfigError, match="max_length"):
        same_vs_costeff_config(**{**params, "max_length": 7})


@pytest.mark.parametrize("profile", ["smoke", "default"])
def test_the_reference_is_attacked_by_chapter_3s_and_4s_own_units(profile):
    from costeff_same.chapters.accuracy_attacks import accuracy_attacks_config
    from costeff_same.chapters.same import same_config

    profiles = load_profile(profile)
    cfg = same_vs_costeff_config(**profiles["05_same_vs_costeff"])
    chapter3 = accuracy_attacks_config(**profiles["03_accuracy_attacks"])
    chapter4 = same_config(**profiles["04_same"])
    reference = cfg.multi_exit.victim("entropy")
    assert cfg.same_unit(reference, "entropy", 0.25).key_data() == chapter4.unit("entropy", 0.25).key_data()
    if profile == "default":                   # the smoke profile attacks fewer sentences in chapter 3
        assert cfg.pwws_unit(reference, "entropy", 0.25).key_data() == \
            chapter3.units("entropy", "pwws", 0.25)[0].key_data()
