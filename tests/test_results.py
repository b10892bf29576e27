"""The results cache: keyed, sealed, atomic, and never silently corrupt."""

import json

import pytest

from costeff_same.engine.results import CorruptResultWarning, entry_dir, is_cached, load_or_run
from costeff_same.engine.threads import TASK_THREADS
from costeff_same.foundations.config import TrainConfig


def test_cached_result_is_not_recomputed_and_has_provenance():
    calls = []

    def fn(cfg, workdir):
        calls.append(1)
        (workdir / "artefact.txt").write_text("weights")
        return {"value": cfg.epochs * 10}

    cfg = TrainConfig(epochs=3)
    first = load_or_run("stage", cfg, fn, seed=7)
    second = load_or_run("stage", cfg, fn, seed=7)
    assert first["value"] == second["value"] == 30 and len(calls) == 1
    entry = entry_dir("stage", cfg)
    provenance = json.loads((entry / "provenance.json").read_text())
    assert provenance["seed"] == 7 and provenance["versions"]["torch"].startswith("2.13")
    assert provenance["torch_threads"] == TASK_THREADS      # every stage runs on one thread
    assert json.loads((entry / "config.json").read_text())["epochs"] == 3
    load_or_run("stage", TrainConfig(epochs=4), fn)
    assert len(calls) == 2


@pytest.mark.parametrize("victim", ["result.json", "work/artefact.txt"])
def test_corrupt_entry_is_detected_and_recomputed(victim):
    calls = []

    def fn(cfg, workdir):
        calls.append(1)
        (workdir / "artefact.txt").write_text("weights")
        return {"value": 1}

    cfg = TrainConfig()
    load_or_run("stage", cfg, fn)
    (entry_dir("stage", cfg) / victim).write_text('{"value": 999}')
    assert not is_cached("stage", cfg)
    with pytest.warns(CorruptResultWarning):
        assert load_or_run("stage", cfg, fn)["value"] == 1
    assert len(calls) == 2 and is_cached("stage", cfg)


def test_failed_run_leaves_no_complete_entry():
    def boom(cfg, workdir):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        load_or_run("stage", TrainConfig(), boom)
    assert not is_cached("stage", TrainConfig())
