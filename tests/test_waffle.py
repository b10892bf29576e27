"""WAFFLE (Coalson et al., 2023): its slowdown score by hand, and its recipe on a tiny victim."""

import numpy as np
import pytest
from conftest import spread_victim

from costeff_same.attacks.waffle_coalson_2023 import WaffleSlowdown, build, waffle_score

TEXTS = ["a gorgeous , witty , seductive movie", "the plot is nothing but boilerplate clichés from start to finish",
         "too slow , too long and too little happens", "an ambitious , serious film that manages to do virtually "
         "everything wrong"]


def test_the_score_equals_a_hand_computed_value_on_a_three_exit_toy():
    # two classes: exit 1 uniform (1 - 0/1 = 1), exit 2 at 0.9 (1 - 0.8/1 = 0.2), exit 3 certain (0)
    assert waffle_score(np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])) == pytest.approx((1 + 0.2 + 0) / 3)
    # three classes: uniform (1), (0.6, 0.2, 0.2): 1 - (4/15 + 2 * 2/15) / 2 = 11/15, one-hot: 1 - (4/3) / 2 = 1/3
    third = 1 / 3
    toy = np.array([[third, third, third], [0.6, 0.2, 0.2], [1.0, 0.0, 0.0]])
    assert waffle_score(toy) == pytest.approx((1 + 11 / 15 + 1 / 3) / 3)
    with pytest.raises(ValueError, match=r"shape \(3,\) must be \(L exits, C >= 2 classes\)"):
        waffle_score(np.ones(3) / 3)


def test_the_recipe_climbs_the_score_within_the_word_budget(tiny_model, tokenizer):
    victim = spread_victim(tiny_model, tokenizer, TEXTS, batch_size=4)
    attack = build(victim, query_budget=60)
    assert isinstance(attack.goal, WaffleSlowdown) and attack.goal.needs_all_exits
    for k, text in enumerate(TEXTS):
        result = attack.attack(text, 0, seed=k)
        if result.status == "skipped":             # already at the last exit
            assert result.original_exit_layer == victim.num_layers
            continue
        assert result.perturbed_score >= result.original_score
        assert result.words_changed <= max(3, int(np.ceil(0.1 * result.num_words)))
        (out,) = victim([result.perturbed_text], all_exits=True)
        assert result.perturbed_score == pytest.approx(waffle_score(out.exit_probs))
        assert (result.status == "succeeded") == (result.perturbed_exit_layer == victim.num_layers)
