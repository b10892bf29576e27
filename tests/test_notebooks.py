"""Slow: every chapter under the smoke profile, a strict book build, and the CLI around them."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from costeff_same.notebooks import chapters, run_chapter, to_ipynb
from costeff_same.paths import REPO_DIR

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A copy of the book's sources with every chapter executed under the smoke profile."""
    import os

    root = tmp_path_factory.mktemp("site")
    results = root / "results"
    old = os.environ.get("COSTEFF_SAME_RESULTS")
    os.environ["COSTEFF_SAME_RESULTS"] = str(results)
    try:
        for name in ("_config.yml", "_toc.yml"):
            shutil.copy(REPO_DIR / name, root / name)
        shutil.copytree(REPO_DIR / "book", root / "book", ignore=shutil.ignore_patterns("*.ipynb"))
        for chapter in chapters():
            run_chapter(chapter, "smoke", output_dir=root / "book")
        yield root
    finally:
        if old is None:
            os.environ.pop("COSTEFF_SAME_RESULTS", None)
        else:
            os.environ["COSTEFF_SAME_RESULTS"] = old


def test_book_builds_strictly_with_every_chapter_and_its_figures(site):
    build = subprocess.run([str(BIN / "jupyter-book"), "build", str(site), "-W", "-n", "--keep-going"],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = site / "_build" / "html"
    assert (html / "index.html").is_file()
    for chapter in chapters():
        page = (html / "book" / f"{chapter}.html").read_text()
        assert "<img" in page, f"{chapter} has no figure"


def test_chapter_one_prose_numbers_come_from_the_result(site):
    notebook = json.loads((site / "book" / "01_multi_exit.ipynb").read_text())
    glued = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook", {})
            if meta:
                glued[meta["name"]] = output["data"][meta["mime_prefix"] + "text/plain"]
    assert {"ent_final", "pat_final", "ent_speedup", "ent_value", "ent_wall64"} <= set(glued)
    result = json.loads(next((site / "results").glob("multi_exit-*/result.json")).read_text())
    assert float(glued["ent_final"]) == result["victims"]["entropy"]["final_exit_metric"]
    assert float(glued["pat_speedup"]) == result["victims"]["patience"]["operating_point"]["speedup"]


def test_summary_json_reads_the_cache(site, monkeypatch):
    monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(site / "results"))
    out = subprocess.run([str(BIN / "costeff-same"), "summary", "--profile", "smoke", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    section = summary["multi_exit"]
    assert section["status"] == "done"
    assert section["task"] == "rotten_tomatoes" and section["num_layers"] == 4
    assert len(section["per_exit_accuracy"]) == 4
    for victim in ("entropy", "patience"):
        point = section[victim]["operating_point"]
        assert {"threshold", "accuracy", "speedup"} <= set(point)
        assert section[victim]["wallclock_speedup_batch64"] > 0


def test_wrong_parameter_type_fails_with_a_clear_error(tmp_path):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError, match="epochs='two' must be an integer"):
        run_chapter("01_multi_exit", "smoke", {"epochs": "two"}, output_dir=tmp_path)


def test_help_notebook_lists_every_parameter_with_its_meaning(tmp_path):
    to_ipynb("01_multi_exit", tmp_path / "01.ipynb")
    out = subprocess.run([str(BIN / "papermill"), "--help-notebook", str(tmp_path / "01.ipynb")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name, meaning in (("task", "rotten_tomatoes, imdb"), ("entropy_thresholds", "sweep"),
                          ("data_file", ".csv")):
        lines = out.stdout.splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{name}:"))
        assert "Unknown type" not in lines[at]
        assert meaning in lines[at] + lines[at + 1]
