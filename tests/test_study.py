"""The seed study: one cached entry per seed, an aggregate record, the spread in the summary."""

import json

import pytest

from costeff_same import study
from costeff_same.foundations.config import ConfigError


def test_with_seed_moves_every_seed_and_the_victims():
    assert study.with_seed({"seed": 0, "epochs": 2}, 3) == {"seed": 3, "epochs": 2}
    assert study.with_seed({"seed": 0, "victim_profile": "smoke"}, 1) == {"seed": 1, "victim_profile": "smoke",
                                                                        "victim_seed": 1}
    assert study.with_seed({"seed": 0}, None) == {"seed": 0}


def test_bad_study_arguments_name_what_is_accepted():
    with pytest.raises(ConfigError, match="unknown: \\['05_nothing'\\]"):
        study.run_study("smoke", [0], ["05_nothing"])
    with pytest.raises(ConfigError, match="seeds >= 0"):
        study.run_study("smoke", [], ["01_multi_exit"])


@pytest.mark.slow
def test_a_two_seed_study_of_chapter_one_caches_each_seed_and_reports_the_spread(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(tmp_path))
    from costeff_same.cli import main
    from costeff_same.summary import seed_study, summary

    assert main(["study", "--profile", "smoke", "--seeds", "0", "1", "--chapters", "01_multi_exit"]) == 0
    record = json.loads((tmp_path / "study" / "smoke.json").read_text())
    assert record["seeds"] == [0, 1] and set(record["seconds"]) == {"0", "1"}
    assert len(list(tmp_path.glob("multi_exit-*/result.json"))) == 2          # one entry per seed

    out = summary("smoke")
    spread = out["study"]["multi_exit"]["entropy accuracy"]
    assert spread["seeds"] == 2 and set(spread["values"]) == {"0", "1"}
    assert spread["min"] <= spread["mean"] <= spread["max"] and spread["sd"] is not None
    assert spread["values"]["0"] == out["multi_exit"]["entropy"]["operating_point"]["accuracy"]
    claim = next(c for c in out["reproduction"]["claims"] if c["key"] == "deebert_saves")
    assert claim["seeds"]["n"] == 2 and set(claim["seeds"]["verdicts"]) == {"0", "1"}
    note, table = seed_study("smoke", "multi_exit")
    assert "2 seeds" in note and table.loc["entropy accuracy", "seeds"] == 2

    # a second run finds every stage in the cache
    before = sorted(p.name for p in tmp_path.glob("*-*"))
    assert main(["study", "--profile", "smoke", "--seeds", "1", "--chapters", "01_multi_exit"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*-*")) == before
