"""The attacked sentences: one seeded, label-balanced selection for every attack chapter."""

import numpy as np
import pytest

from costeff_same.attacks.same_units import SameUnitConfig
from costeff_same.attacks.sentences import attack_sentences, balanced_order
from costeff_same.attacks.units import RecipeUnitConfig
from costeff_same.chapters.accuracy_attacks import accuracy_attacks_config
from costeff_same.chapters.same import same_config


def test_every_prefix_keeps_the_labels_in_proportion():
    labels = np.array([1] * 300 + [0] * 100)          # stored grouped by label, 3:1
    order = balanced_order(labels, seed=0)
    assert sorted(order.tolist()) == list(range(400))
    for n in (4, 10, 50, 200, 399):
        ones = int(labels[order[:n]].sum())
        assert abs(ones - 0.75 * n) <= 1, (n, ones)
    assert not np.array_equal(order, balanced_order(labels, seed=1))
    assert np.array_equal(order, balanced_order(labels, seed=0))


def test_chapters_3_and_4_attack_the_same_balanced_sentences(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(tmp_path))
    ch3 = accuracy_attacks_config(profile="default")
    ch4 = same_config(profile="default")
    victim3 = ch3.units("entropy", "pwws", 0.3)[0]
    victim4 = ch4.unit("entropy", 0.3)
    assert isinstance(victim3, RecipeUnitConfig) and isinstance(victim4, SameUnitConfig)
    assert victim3.victim.data == victim4.victim.data and victim3.seed == victim4.seed
    texts3, labels3, index3 = attack_sentences(victim3.victim.data, victim3.num_examples, victim3.seed)
    texts4, labels4, index4 = attack_sentences(victim4.victim.data, victim4.num_examples, victim4.seed)
    assert (texts3, labels3, index3) == (texts4, labels4, index4)
    # both labels, in proportion to the split (rotten tomatoes' test split is balanced)
    assert abs(np.mean(labels3) - 0.5) <= 1 / len(labels3)
    assert len(set(index3)) == len(index3) == ch3.num_examples


def test_the_seed_study_moves_the_victims_seed_too():
    cfg = same_config(profile="default", seed=2, victim_seed=2)
    assert cfg.seed == 2 and cfg.multi_exit.data.seed == 2 and cfg.multi_exit.entropy_model.seed == 2
    assert same_config(profile="default").multi_exit.data.seed == 0
    with pytest.raises(Exception, match="victim_seed"):
        same_config(profile="default", victim_seed="two")
