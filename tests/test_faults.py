"""Bad input and faults: one clear line and a non-zero exit status, never a traceback, never a
silent wrong result, never a torn or shared cache entry.

Most cases are rows of :data:`CLI_CASES` (arguments, a fragment of the expected error line,
the exit status), run through the command line in this process; a regression shows as a
failing row. The faults that need another process (a file size limit, two runs of one
stage at once, a killed run) and the notebook parameters follow the table.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costeff_same.cli import main
from costeff_same.core.data import DataError, load_local
from costeff_same.core.labels import label_rule
from costeff_same.engine.checkpoint import save_checkpoint
from costeff_same.foundations.storage import StorageError

REPO = Path(__file__).resolve().parents[1]
SMOKE = ["--profile", "smoke"]


def _rows(n: int, label=lambda i: i % 2, text=lambda i: f"review number {i} is fine"):
    return [{"text": text(i), "label": label(i)} for i in range(n)]


#: name -> (rows as a list of dicts, or raw text; suffix)
DATA_FILES = {
    "blank_labels": ("text,label\n" + "\n".join(f"sentence {i},{'' if i % 7 == 3 else i % 2}" for i in range(30)),
                     ".csv"),
    "null_labels": ([{"text": f"t {i}", "label": None if i == 4 else i % 2} for i in range(30)], ".jsonl"),
    "string_labels": (_rows(30, label=lambda i: "pos" if i % 2 else "neg"), ".jsonl"),
    "gap_labels": (_rows(30, label=lambda i: 5 * (i % 2)), ".jsonl"),
    "one_based": (_rows(30, label=lambda i: 1 + i % 2), ".jsonl"),
    "single_class": (_rows(30, label=lambda i: 0), ".jsonl"),
    "negative": (_rows(30, label=lambda i: -1 if i == 6 else i % 2), ".jsonl"),
    "infinite": ("text,label\n" + "\n".join(f"sentence {i},{'inf' if i == 2 else i % 2}" for i in range(30)), ".csv"),
    "empty_text": (_rows(30, text=lambda i: "   " if i == 4 else f"t {i}"), ".jsonl"),
    "no_label_column": ([{"text": f"t {i}", "y": i % 2} for i in range(30)], ".jsonl"),
    "too_few_rows": (_rows(5), ".jsonl"),
    "tiny_class": (_rows(40, label=lambda i: 2 if i == 0 else i % 2), ".jsonl"),
    "not_json": ('{"text": "a", "label": 1}\n{not json', ".jsonl"),
    "binary": (bytes(range(256)) * 4, ".csv"),
    "spreadsheet": ("x", ".xlsx"),
}


@pytest.fixture
def data_dir(tmp_path):
    """Every file of :data:`DATA_FILES`, written into ``tmp_path/data``."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name, (content, suffix) in DATA_FILES.items():
        path = folder / f"{name}{suffix}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text("\n".join(json.dumps(r) for r in content))
    return folder


def _local(name: str) -> list[str]:
    suffix = DATA_FILES[name][1] if name in DATA_FILES else ".csv"
    return ["train", *SMOKE, "--victim", "patience", "--set", "task=local", "--set",
            f"train_file={{data}}/{name}{suffix}"]


def _train(*sets: str) -> list[str]:
    return ["train", *SMOKE, "--victim", "patience", *[a for s in sets for a in ("--set", s)]]


#: (id, arguments, a fragment of the error line, exit status)
CLI_CASES = [
    # training settings: every range is checked before training starts
    ("lr_inf", _train("learning_rate=.inf"),
     "learning_rate=inf is not accepted; accepted: a finite number in (0, 1]", 2),
    ("lr_nan", _train("learning_rate=.nan"), "learning_rate=nan is not accepted", 2),
    ("lr_negative", _train("learning_rate=-1e-3"), "learning_rate=-0.001 is not accepted", 2),
    ("lr_zero", _train("learning_rate=0"), "learning_rate=0.0 is not accepted", 2),
    ("lr_huge", _train("learning_rate=50"), "learning_rate=50.0 is not accepted", 2),
    ("exit_lr_inf", _train("exit_learning_rate=.inf"), "exit_learning_rate=inf is not accepted", 2),
    ("lr_string", _train("learning_rate=fast"), "learning_rate='fast' must be a number", 2),
    ("epochs_zero", _train("epochs=0"), "epochs=0 must be >= 1", 2),
    ("epochs_string", _train("epochs=notanumber"), "epochs='notanumber' must be an integer", 2),
    ("epochs_float", _train("epochs=1.5"), "epochs=1.5 must be an integer", 2),
    ("exit_epochs_negative", _train("exit_epochs=-1"), "exit_epochs=-1 must be >= 0", 2),
    ("batch_zero", _train("batch_size=0"), "batch_size=0 must be >= 1", 2),
    ("seed_string", _train("seed=abc"), "seed='abc' must be an integer", 2),
    ("seed_bool", _train("seed=true"), "seed=True must be an integer", 2),
    ("pooling", _train("exit_pooling=max"), "unknown exit_pooling 'max'; accepted: cls, mean", 2),
    # the evaluation's settings
    ("tolerance_two", _train("tolerance=2"), "tolerance=2.0 is not accepted; accepted: a finite number in [0, 1)", 2),
    ("tolerance_negative", _train("tolerance=-5"), "tolerance=-5.0 is not accepted", 2),
    ("tolerance_nan", _train("tolerance=.nan"), "tolerance=nan is not accepted", 2),
    ("threshold_negative", _train("entropy_thresholds=[-0.1, 0.2]"), "entropy_thresholds[0]=-0.1 is not accepted", 2),
    ("threshold_nan", _train("entropy_thresholds=[0.1, .nan]"), "entropy_thresholds[1]=nan is not accepted", 2),
    ("thresholds_empty", _train("entropy_thresholds=[]"), "must each hold at least one value", 2),
    ("patience_zero", _train("patience_values=[0, 1]"), "patience_values[0]=0 must be >= 1", 2),
    ("timing_zero", _train("timing_batch_size=0"), "timing_batch_size=0 must be >= 1", 2),
    ("evaluate_tolerance", ["evaluate", *SMOKE, "--set", "tolerance=1"], "tolerance=1.0 is not accepted", 2),
    # the data's settings
    ("task_unknown", _train("task=sst3"), "unknown task 'sst3'; accepted: rotten_tomatoes, imdb", 2),
    ("train_file_without_local", _train("train_file=reviews.csv"),
     "train_file='reviews.csv' is read only with task='local', not task='rotten_tomatoes'", 2),
    ("local_without_file", _train("task=local"), "task='local' needs train_file", 2),
    ("max_length_small", _train("max_length=4"), "max_length=4 must be >= 8", 2),
    ("max_length_positions", _train("max_length=256"), "max_length=256 is outside 8..128 (the model's limit)", 2),
    ("train_size_zero", _train("train_size=0"), "train_size=0 must be >= 1 or None", 2),
    ("eval_size_negative", _train("eval_size=-3"), "eval_size=-3 must be >= 1 or None", 2),
    ("glue_offline", _train("task=mrpc"), "GLUE task 'mrpc' must come from the Hugging Face hub", 2),
    # the backbone
    ("backbone_missing_folder", _train("backbone=models/nothing.bin"),
     "backbone folder 'models/nothing.bin' does not exist", 2),
    ("backbone_hub_offline", _train("backbone=bert-base-uncased"), "must come from the Hugging Face hub", 2),
    # --set itself
    ("set_unknown_key", _train("epochz=1"), "unknown parameter(s) ['epochz'] for 01_multi_exit; accepted:", 2),
    ("set_without_equals", ["train", *SMOKE, "--set", "epochs"], "--set 'epochs' must look like key=value", 2),
    ("set_empty_key", ["train", *SMOKE, "--set", "=1"], "--set '=1' must look like key=value", 2),
    ("set_bad_yaml_list", _train("epochs=[1"), "the value is not plain YAML", 2),
    ("set_bad_yaml_map", _train("epochs={a: 1"), "the value is not plain YAML", 2),
    ("set_yaml_tag", _train("epochs=!!python/object/apply:os.system [echo hi]"), "the value is not plain YAML", 2),
    ("set_bad_yaml_indent", _train("epochs=a: b: c"), "the value is not plain YAML", 2),
    # a local data file: labels and texts (the label rule applies, or the file is refused by name)
    ("labels_blank", _local("blank_labels"), "blank or NaN label(s), first at row(s) [3, 10, 17, 24]", 2),
    ("labels_null", _local("null_labels"), "1 blank or NaN label(s), first at row(s) [4]", 2),
    ("labels_strings", _local("string_labels"), "label 'neg' at row 0 is not a number", 2),
    ("labels_gap", _local("gap_labels"), "classes [1, 2, 3, 4] never appear between labels [0, 5]", 2),
    ("labels_one_based", _local("one_based"), "class 0 never appears (1-based labels?)", 2),
    ("labels_single_class", _local("single_class"), "a single class; at least two classes are needed", 2),
    ("labels_negative", _local("negative"), "label -1 at row 6 is negative", 2),
    ("labels_infinite", _local("infinite"), "label inf at row 2 is not finite", 2),
    ("labels_tiny_class", _local("tiny_class"), "examples per class: {0: 19, 1: 20, 2: 1}", 2),
    ("text_empty", _local("empty_text"), "empty or whitespace-only 'text' at row(s) [4]", 2),
    ("column_missing", _local("no_label_column"), "no known column layout; found columns ['text', 'y']", 2),
    ("rows_too_few", _local("too_few_rows"), "has 5 rows; at least 10 are needed", 2),
    ("file_not_json", _local("not_json"), "cannot be parsed as .jsonl", 2),
    ("file_binary", _local("binary"), "binary.csv", 2),
    ("file_suffix", _local("spreadsheet"), "has suffix '.xlsx'; accepted: .csv, .tsv, .jsonl", 2),
    ("file_missing", _local("absent"), "absent.csv' does not exist", 2),
    # the other commands
    ("attack_examples", ["attack", *SMOKE, "--recipe", "pwws", "--set", "num_examples=0"],
     "num_examples=0 must be >= 1", 2),
    ("attack_unknown_key", ["attack", *SMOKE, "--recipe", "pwws", "--set", "epochz=1"],
     "unknown parameter(s) ['epochz']", 2),
    ("same_lambda", ["attack", *SMOKE, "--recipe", "same", "--set", "lam=2"], "lam=2.0 must be in [0, 1]", 2),
    ("compress_budget", ["compress", *SMOKE, "--set", "budget_tolerance=1.5"],
     "budget_tolerance=1.5 is not accepted; accepted: a finite number in (0, 1)", 2),
    ("compress_unknown_key", ["compress", *SMOKE, "--set", "epochz=1"], "unknown parameter(s) ['epochz']", 2),
    ("notebooks_unknown_key", ["notebooks", *SMOKE, "--set", "epochz=1"],
     "unknown parameter(s) ['epochz'] for 01_multi_exit, 02_costeff", 2),
    ("notebooks_bad_type", ["notebooks", *SMOKE, "--chapter", "01_multi_exit", "--set", "epochs=notanumber"],
     "epochs='notanumber' must be an integer", 2),
    ("notebooks_unknown_chapter", ["notebooks", *SMOKE, "--chapter", "07_nothing"], "unknown chapter '07_nothing'", 2),
    ("parameters_unknown_chapter", ["parameters", "--chapter", "07_nothing"], "unknown chapter '07_nothing'", 2),
    ("study_unknown_chapter", ["study", *SMOKE, "--seeds", "0", "--chapters", "07_nothing"], "07_nothing", 2),
    ("profile_unknown", ["train", "--profile", "fast"], "invalid choice: 'fast'", 2),
    ("recipe_unknown", ["attack", *SMOKE, "--recipe", "hotflip"], "invalid choice: 'hotflip'", 2),
    ("seeds_not_numbers", ["study", *SMOKE, "--seeds", "one"], "invalid int value: 'one'", 2),
    # the disk
    ("results_not_a_folder", ["train", *SMOKE, "--victim", "patience"], "cannot write {tmp}/afile/results", 1),
    ("results_cannot_be_created", ["train", *SMOKE, "--victim", "patience"], "cannot write /sys/fs/costeff-results", 1),
]


def _run(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as exit_info:  # argparse's own refusals
        status = exit_info.code
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_input_gets_one_clear_line(case, data_dir, tmp_path, monkeypatch, capsys):
    name, argv, fragment, status = case
    argv = [a.replace("{data}", str(data_dir)) for a in argv]
    if name == "results_not_a_folder":
        (tmp_path / "afile").write_text("a file where the results folder should be")
        monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(tmp_path / "afile" / "results"))
    if name == "results_cannot_be_created":
        monkeypatch.setenv("COSTEFF_SAME_RESULTS", "/sys/fs/costeff-results")
    got, out, err = _run(argv, capsys)
    fragment = fragment.replace("{tmp}", str(tmp_path))
    assert got == status, err
    assert fragment in err, err
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err  # one line says what is wrong


def test_the_table_covers_at_least_sixty_cases():
    assert len(CLI_CASES) >= 60
    assert len({c[0] for c in CLI_CASES}) == len(CLI_CASES)


# -- the label rule: applied and printed ------------------------------------------------------


@pytest.mark.parametrize("labels,classes,words", [
    ([0.0, 1.0] * 10, 2, "labels are whole numbers: 2 classes 0..1"),
    ([True, False] * 10, 2, "labels true/false read as classes 0 (false) and 1 (true)"),
    ([0, 1, 2] * 10, 3, "labels are integers: 3 classes 0..2"),
    ([0.5, 1.25, 3.0] * 10, 1, "regression"),
])
def test_the_label_rule_decides_and_says_so(labels, classes, words):
    values, num_labels, rule = label_rule(labels, "f.csv")
    assert num_labels == classes and words in rule
    assert values.dtype == (np.float32 if classes == 1 else np.int64)


def test_the_label_rule_is_printed_when_a_file_is_read(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("text,label\n" + "\n".join(f"sentence {i},{float(i % 2)}" for i in range(30)))
    task = load_local(path, seed=0)
    assert task.num_labels == 2 and task.metric == "accuracy"  # not a regression, as 0.0/1.0 once became
    assert "labels are whole numbers: 2 classes 0..1" in capsys.readouterr().err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_random_bytes_in_a_train_file_never_give_a_traceback(tmp_path, content, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(content)
    try:
        load_local(path, seed=0)
    except DataError:
        pass


# -- the disk ---------------------------------------------------------------------------------


def test_a_file_size_limit_is_one_storage_error_and_leaves_the_old_checkpoint(tmp_path):
    path = tmp_path / "checkpoint" / "state.pt"
    save_checkpoint(path, {"w": torch.zeros(10)})
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
    try:
        with pytest.raises(StorageError, match=f"cannot write {path}: "):
            save_checkpoint(path, {"w": torch.zeros(1_000_000)})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["state.pt"]  # no temporary file left behind


def test_a_full_disk_during_training_is_one_line(tmp_path):
    """A command that runs out of space (here: a file size limit) ends with one line, status 1."""
    env = {**os.environ, "COSTEFF_SAME_RESULTS": str(tmp_path / "results")}
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, resource.RLIM_INFINITY))  # noqa: E731
    done = subprocess.run([sys.executable, "-m", "costeff_same.cli", "train", *SMOKE, "--victim", "patience"],
                          env=env, capture_output=True, text=True, preexec_fn=limit, timeout=300, cwd=REPO)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("costeff-same train: error: cannot write ") and line.endswith(
        "state.pt: the write failed part-way (a full disk or a file size limit)"), done.stderr
    assert not list((tmp_path / "results").glob("*/manifest.json"))  # nothing half-written was sealed


# -- two runs of one stage at once --------------------------------------------------------------

STAGE_SCRIPT = textwrap.dedent('''
    import dataclasses, json, os, sys, time
    from costeff_same.engine.results import load_or_run
    from costeff_same.foundations.config import StageConfig

    @dataclasses.dataclass(frozen=True)
    class SlowConfig(StageConfig):
        seconds: float = 1.0

    def slow(cfg, workdir):
        with open(sys.argv[1], "a") as log:
            log.write(f"{os.getpid()}\\n")
        for step in range(int(cfg.seconds * 10)):
            (workdir / "progress.txt").write_text(str(step))
            time.sleep(0.1)
        (workdir / "artefact.bin").write_bytes(os.urandom(1000))
        return {"pid": os.getpid()}

    print(json.dumps(load_or_run("slow", SlowConfig(float(sys.argv[2])), slow)))
''')


def _start(tmp_path, seconds):
    script = tmp_path / "stage.py"
    script.write_text(STAGE_SCRIPT)
    env = {**os.environ, "COSTEFF_SAME_RESULTS": str(tmp_path / "results"), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "computed.log"), str(seconds)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_lines(path, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().split()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never got {n} line(s)")


def _sealed_entry(tmp_path):
    from costeff_same.engine.results import _verify

    entries = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert len(entries) == 1
    assert _verify(entries[0])
    return entries[0]


def test_two_runs_of_one_stage_compute_it_once_and_both_succeed(tmp_path):
    first = _start(tmp_path, 3)
    _wait_for_lines(tmp_path / "computed.log", 1)
    second = _start(tmp_path, 3)
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    records = [json.loads(out) for out, _ in outs]
    assert records[0]["pid"] == records[1]["pid"] == first.pid  # the second read the first's entry
    assert (tmp_path / "computed.log").read_text().split() == [str(first.pid)]
    assert "another run is computing" in outs[1][1]
    _sealed_entry(tmp_path)


def test_a_killed_run_leaves_the_other_to_finish_an_intact_entry(tmp_path):
    first = _start(tmp_path, 30)
    _wait_for_lines(tmp_path / "computed.log", 1)
    second = _start(tmp_path, 30)
    time.sleep(2)
    first.send_signal(signal.SIGKILL)  # the lock dies with its holder
    first.wait(timeout=30)
    second_out, second_err = second.communicate(timeout=120)
    assert second.returncode == 0, second_err
    assert json.loads(second_out)["pid"] == second.pid
    assert (tmp_path / "computed.log").read_text().split() == [str(first.pid), str(second.pid)]
    entry = _sealed_entry(tmp_path)
    assert json.loads((entry / "result.json").read_text())["pid"] == second.pid


# -- notebook parameters ------------------------------------------------------------------------


def test_profile_selects_the_profiles_values_and_explicit_ones_go_on_top():
    from costeff_same.chapters.multi_exit import MULTI_EXIT_SCHEMA
    from costeff_same.foundations.config import load_profile

    cell = MULTI_EXIT_SCHEMA.defaults()  # the parameters cell as it is, then papermill's cell
    smoke = load_profile("smoke")["01_multi_exit"]
    injected = {"In": ["", "profile: str = ...", '# Parameters\nprofile = "smoke"\n'], **cell, "profile": "smoke"}
    values = MULTI_EXIT_SCHEMA.from_namespace(injected)
    assert values["epochs"] == smoke["epochs"] and values["backbone"] == "tiny-random"
    explicit = {**injected, "In": ["", '# Parameters\nprofile = "smoke"\nepochs = 2\n'], "epochs": 2}
    assert MULTI_EXIT_SCHEMA.from_namespace(explicit)["epochs"] == 2  # the default's value, given explicitly
    edited = {**cell, "In": [""], "profile": "smoke", "seed": 7}  # a hand edit in Jupyter, no papermill
    got = MULTI_EXIT_SCHEMA.from_namespace(edited)
    assert got["seed"] == 7 and got["train_size"] == smoke["train_size"]
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['epochz'\] for 01_multi_exit"):
        MULTI_EXIT_SCHEMA.from_namespace({**injected, "In": ["# Parameters\nepochz = 1\n"], "epochz": 1})


def _papermill(tmp_path, chapter, *params):
    from costeff_same.notebooks import to_ipynb

    source = tmp_path / f"{chapter}.ipynb"
    to_ipynb(chapter, source)
    args = [a for pair in params for a in ("-p", *pair)]
    env = {**os.environ, "COSTEFF_SAME_RESULTS": str(tmp_path / "results")}
    return subprocess.run([str(Path(sys.executable).parent / "papermill"), str(source), str(tmp_path / "out.ipynb"),
                           *args, "--cwd", str(REPO)], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("params,fragment", [
    ((("epochz", "1"),), "ConfigError: unknown parameter(s) ['epochz'] for 01_multi_exit; accepted: profile, task"),
    ((("profile", "smoke"), ("epochs", "notanumber")), "ConfigError: epochs='notanumber' must be an integer"),
])
def test_a_bad_papermill_parameter_fails_at_once_in_one_line(tmp_path, params, fragment):
    done = _papermill(tmp_path, "01_multi_exit", *params)
    assert done.returncode != 0
    notebook = json.loads((tmp_path / "out.ipynb").read_text())
    errors = [o for cell in notebook["cells"] for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert len(errors) == 1 and len(errors[0]["traceback"]) == 1, errors
    assert errors[0]["traceback"][0].startswith(fragment), errors
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").glob("*/manifest.json"))


def test_a_failed_chapter_never_replaces_the_built_one(tmp_path, monkeypatch):
    from costeff_same import notebooks

    monkeypatch.setattr(notebooks, "FAILED_DIR", tmp_path / "failed")
    built = tmp_path / "book" / "01_multi_exit.ipynb"
    built.parent.mkdir()
    built.write_text("the chapter as it was built")
    with pytest.raises(notebooks.ChapterFailed, match=r"01_multi_exit failed in cell \d+: BackboneError: backbone "
                                                      r"folder 'nowhere/model.bin' does not exist"):
        notebooks.run_chapter("01_multi_exit", "smoke", {"backbone": "nowhere/model.bin"}, output_dir=built.parent)
    assert built.read_text() == "the chapter as it was built"
    assert (tmp_path / "failed" / "01_multi_exit.ipynb").is_file()
