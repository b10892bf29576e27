"""The command line: help, and one-line errors for bad input."""

import pytest

from costeff_same.cli import _overrides, main


@pytest.mark.parametrize("command", ["train", "evaluate", "summary", "notebooks"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--profile" in capsys.readouterr().out


def test_bad_input_gets_a_one_line_error(capsys):
    assert main(["evaluate", "--profile", "smoke", "--set", "task=yelp"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'yelp'; accepted: rotten_tomatoes, imdb" in err
    assert main(["train", "--profile", "smoke", "--set", "epochs"]) == 2
    assert "must look like key=value" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["summary", "--profile", "fast"])


def test_summary_without_results_says_not_run(capsys):
    import json

    assert main(["summary", "--profile", "smoke", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["multi_exit"]["status"] == "not run"


def test_paper_profile_resolves_and_fails_fast_offline(capsys):
    import time

    start = time.time()
    assert main(["train", "--profile", "paper", "--victim", "entropy"]) == 2
    assert "must come from the Hugging Face hub" in capsys.readouterr().err
    assert time.time() - start < 10


def test_set_values_are_read_as_yaml_and_exponents_as_numbers():
    got = _overrides(["ta_learning_rate=5e-5", "epochs=1", "task=imdb", "train_size=null", "lr=2.0e-4",
                      "static_heads=[2, 1]", "name=1e5x"])
    assert got == {"ta_learning_rate": 5e-5, "epochs": 1, "task": "imdb", "train_size": None, "lr": 2e-4,
                   "static_heads": [2, 1], "name": "1e5x"}
    assert isinstance(got["ta_learning_rate"], float)
