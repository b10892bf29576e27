"""Typed configs, profiles and the chapter-1 parameter contract."""

import pytest

from costeff_same.chapters.multi_exit import multi_exit_config
from costeff_same.foundations.config import ConfigError, DataConfig, TrainConfig, load_profile


def test_unknown_keys_and_wrong_types_are_named():
    with pytest.raises(ConfigError, match="unknown key\\(s\\) epoch for TrainConfig; accepted: backbone"):
        TrainConfig.from_dict({"epoch": 2})
    with pytest.raises(ConfigError, match="epochs='two' must be an integer"):
        TrainConfig.from_dict({"epochs": "two"})
    with pytest.raises(ConfigError, match="unknown regime 'greedy'; accepted: joint, weighted, two_stage"):
        TrainConfig.from_dict({"regime": "greedy"})
    with pytest.raises(ConfigError, match="unknown task 'yelp'"):
        DataConfig.from_dict({"task": "yelp"})


def test_hash_is_stable_and_sensitive():
    a = TrainConfig.from_dict({"epochs": 2, "learning_rate": 5e-5})
    assert a.config_hash() == TrainConfig(epochs=2).config_hash()
    assert a.config_hash() != TrainConfig(epochs=3).config_hash()
    assert len(a.config_hash()) == 16


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_every_profile_parses_and_resolves(profile):
    params = load_profile(profile)["01_multi_exit"]
    cfg = multi_exit_config(**params)
    assert cfg.entropy_model.regime == "two_stage" and cfg.patience_model.regime == "weighted"


def test_unknown_profile_and_parameter():
    with pytest.raises(ConfigError, match="unknown profile 'fast'; accepted: smoke, default, paper"):
        load_profile("fast")
    with pytest.raises(ConfigError, match="unknown parameter\\(s\\) \\['epohcs'\\]"):
        multi_exit_config(epohcs=1)
    with pytest.raises(ConfigError, match="entropy_thresholds\\[1\\]='x' is not|entropy_thresholds\\[1\\]='x' must be"):
        multi_exit_config(entropy_thresholds=[0.1, "x"])
