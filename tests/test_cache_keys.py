"""The results cache knows its code and its data: a change recomputes exactly what it affects."""

import importlib
import json
import sys
import textwrap

import pytest

from costeff_same.engine import fingerprint
from costeff_same.engine.results import entry_dir, is_cached, load_or_run
from costeff_same.foundations.config import DataConfig, TrainConfig, TrainedModelConfig

MODULES = {
    "__init__.py": "",
    # stage A; ``FACTOR`` is its code
    "a.py": '''
        """Stage A."""
        import json
        from pathlib import Path

        FACTOR = 1


        def stage_a(cfg, workdir):
            """Counts its runs in the calls file."""
            _count("a")
            return {"value": cfg.epochs * FACTOR}


        def _count(name):
            calls = Path(__file__).parent / "calls.json"
            seen = json.loads(calls.read_text()) if calls.exists() else []
            calls.write_text(json.dumps(seen + [name]))
    ''',
    # stage B reads stage A's result through the cache: a dependent
    "b.py": '''
        from fakepkg.a import _count, stage_a
        from costeff_same.engine.results import load_or_run


        def stage_b(cfg, workdir):
            _count("b")
            return {"value": load_or_run("a", cfg, stage_a)["value"] + 1}
    ''',
    # stage C shares nothing with A
    "c.py": '''
        from fakepkg.a import _count  # noqa: F401 - replaced below by its own counter


        def stage_c(cfg, workdir):
            _count("c")
            return {"value": 3}
    ''',
}


@pytest.fixture
def fakepkg(tmp_path, monkeypatch):
    """A package of three stages on disk, fingerprinted like ``costeff_same`` is."""
    root = tmp_path / "src" / "fakepkg"
    root.mkdir(parents=True)
    for name, text in MODULES.items():
        (root / name).write_text(textwrap.dedent(text))
    # C counts with its own helper so that it does not import A
    (root / "c.py").write_text(textwrap.dedent('''
        import json
        from pathlib import Path


        def stage_c(cfg, workdir):
            calls = Path(__file__).parent / "calls.json"
            seen = json.loads(calls.read_text()) if calls.exists() else []
            calls.write_text(json.dumps(seen + ["c"]))
            return {"value": 3}
    '''))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)   # a same-size edit in the same second must reload
    monkeypatch.setattr(fingerprint, "PACKAGE", "fakepkg")
    monkeypatch.setattr(fingerprint, "ROOT", root)
    yield root
    for name in [m for m in sys.modules if m == "fakepkg" or m.startswith("fakepkg.")]:
        del sys.modules[name]


def _run_all(root):
    for name in ("fakepkg.a", "fakepkg.b", "fakepkg.c"):
        if name in sys.modules:
            importlib.reload(sys.modules[name])
    a, b, c = (importlib.import_module(f"fakepkg.{m}") for m in "abc")
    cfg = TrainConfig(epochs=2)
    calls = root / "calls.json"
    calls.unlink(missing_ok=True)
    values = (load_or_run("b", cfg, b.stage_b)["value"], load_or_run("c", cfg, c.stage_c)["value"])
    return values, (json.loads(calls.read_text()) if calls.exists() else [])


def test_changing_a_stages_code_recomputes_it_and_its_dependents_only(fakepkg):
    assert _run_all(fakepkg) == ((3, 3), ["b", "a", "c"])
    assert _run_all(fakepkg) == ((3, 3), [])                     # everything cached
    a = fakepkg / "a.py"
    a.write_text(a.read_text().replace("FACTOR = 1", "FACTOR = 5"))
    assert _run_all(fakepkg) == ((11, 3), ["b", "a"])            # A and B recomputed, C kept


def test_a_comment_or_docstring_changes_nothing(fakepkg):
    _run_all(fakepkg)
    a = fakepkg / "a.py"
    a.write_text(a.read_text().replace('"""Stage A."""', '"""Stage A, documented better."""')
                 .replace("FACTOR = 1", "FACTOR = 1  # the scale"))
    assert _run_all(fakepkg) == ((3, 3), [])


def test_the_fingerprint_covers_the_package_modules_a_stage_imports():
    from costeff_same import zoo

    closure = fingerprint.module_closure(zoo._train_model.__module__)
    assert {"costeff_same.zoo", "costeff_same.engine.training", "costeff_same.engine.trainer",
            "costeff_same.core.modeling", "costeff_same.core.data", "costeff_same.foundations.config"} <= set(closure)
    assert not any(m.startswith(("costeff_same.chapters", "costeff_same.attacks", "costeff_same.plotting"))
                   for m in closure), "training a model must not depend on the chapters, attacks or figures"


def test_a_recipe_named_by_a_string_is_part_of_the_unit_that_builds_it():
    from costeff_same.attacks import units

    closure = fingerprint.module_closure(units._run_recipe_unit.__module__)
    assert {"costeff_same.attacks.pwws_ren_2019", "costeff_same.attacks.textfooler_jin_2019"} <= set(closure)


# -- the data a config reads -------------------------------------------------------------------

def _local(path):
    return TrainedModelConfig(DataConfig(task="local", train_file=path), TrainConfig())


def test_an_edited_local_file_keys_a_new_entry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_text("text,label\ngood,1\nbad,0\n")
    calls = []

    def stage(cfg, workdir):
        calls.append(1)
        return {"rows": (tmp_path / cfg.data.train_file).read_text().count("\n")}

    assert load_or_run("local_stage", _local("reviews.csv"), stage)["rows"] == 3
    assert load_or_run("local_stage", _local("reviews.csv"), stage)["rows"] == 3 and len(calls) == 1
    (tmp_path / "reviews.csv").write_text("text,label\ngood,1\nbad,0\nfine,1\n")
    assert not is_cached("local_stage", _local("reviews.csv"))
    assert load_or_run("local_stage", _local("reviews.csv"), stage)["rows"] == 4 and len(calls) == 2


def test_a_same_named_file_in_another_folder_gets_its_own_entry(tmp_path, monkeypatch):
    for folder, rows in (("one", "good,1\n"), ("two", "bad,0\nworse,0\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "reviews.csv").write_text("text,label\n" + rows)
    entries = {}
    for folder in ("one", "two"):
        monkeypatch.chdir(tmp_path / folder)
        entries[folder] = entry_dir("local_stage", _local("reviews.csv"), lambda cfg, workdir: {})
    assert entries["one"] != entries["two"]
    monkeypatch.chdir(tmp_path / "one")
    key = _local("reviews.csv").key_data()["data"]["train_file"]
    assert key["path"] == "reviews.csv" and len(key["sha256"]) == 64
