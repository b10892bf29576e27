"""Slow: every chapter under the smoke profile, a strict book build, and the CLI around them."""

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from costeff_same.foundations.paths import REPO_DIR
from costeff_same.notebooks import chapters, run_chapter, to_ipynb
from costeff_same.verdicts import interval_text

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
        shutil.copytree(REPO_DIR / "notebooks", root / "notebooks")  # each page offers its source
        for chapter in chapters():
            run_chapter(chapter, "smoke", output_dir=root / "book")
        yield root
    finally:
        if old is None:
            os.environ.pop("COSTEFF_SAME_RESULTS", None)
        else:
            os.environ["COSTEFF_SAME_RESULTS"] = old


@pytest.fixture(scope="module")
def built(site):
    """The strict build of ``site``: the completed process and the HTML folder."""
    build = subprocess.run([str(BIN / "jupyter-book"), "build", str(site), "-W", "-n", "--keep-going"],
                           capture_output=True, text=True, timeout=900)
    return build, site / "_build" / "html"


def test_book_builds_strictly_with_every_chapter_and_its_figures(built):
    build, html = built
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert (html / "index.html").is_file()
    for chapter in chapters():
        page = (html / "book" / f"{chapter}.html").read_text()
        assert "<img" in page, f"{chapter} has no figure"
        assert "<figcaption" in page, f"{chapter} has no numbered, captioned figure"


def test_every_page_renders_in_a_browser_offline(built):
    """Headless Chromium, the web unreachable: images load, math is typeset, no console error,
    internal links resolve, figures have captions and alt text, no cut cell, no raw role."""
    from costeff_same.site_check import check_site

    build, html = built
    assert build.returncode == 0, build.stdout[-3000:]
    problems = check_site(html)
    assert not problems, "\n".join(map(str, problems))


@pytest.fixture
def broken_copy(built, tmp_path):
    """A copy of the built site to break (MathJax and the theme's assets included)."""
    return Path(shutil.copytree(built[1], tmp_path / "html"))


def test_browser_check_sees_a_deleted_image(broken_copy):
    from costeff_same.site_check import check_site

    page = broken_copy / "book" / "01_multi_exit.html"
    image = re.search(r'<img[^>]*src="\.\./(_images/[^"]+)"', page.read_text()).group(1)
    (broken_copy / image).unlink()
    problems = check_site(broken_copy, only=["book/01_multi_exit.html"])
    assert any(p.check == "image not loaded" and image in p.detail for p in problems), problems


def test_browser_check_sees_a_formula_whose_delimiters_are_broken(broken_copy):
    from costeff_same.site_check import check_site

    page = broken_copy / "book" / "methods.html"
    text = page.read_text()
    assert "\\(" in text
    page.write_text(text.replace("\\(", "(", 1))  # the first inline formula loses its opening delimiter
    problems = check_site(broken_copy, only=["book/methods.html"])
    assert any(p.check == "raw TeX visible" for p in problems), problems


def test_browser_check_sees_a_missing_caption_a_cut_cell_and_an_unresolved_role(broken_copy):
    from costeff_same.site_check import check_site

    page = broken_copy / "book" / "01_multi_exit.html"
    text = re.sub(r"<figcaption>.*?</figcaption>", "", page.read_text(), count=1, flags=re.S)
    text = re.sub(r"<td>[^<]*</td>", "<td>0.123...</td>", text, count=1)
    page.write_text(text.replace("</article>", "<p>see {cite:p}`nobody2020`</p></article>", 1))
    checks = {p.check for p in check_site(broken_copy, only=["book/01_multi_exit.html"])}
    assert {"figure without caption", "image outside a captioned figure", "table cell cut",
            "unresolved role visible"} <= checks, checks


def test_every_chapter_page_begins_with_its_run_box(built):
    """What it computes, its measured time, the re-run commands, and the two downloads."""
    _, html = built
    for chapter in chapters():
        page = (html / "book" / f"{chapter}.html").read_text()
        box = page[page.index("In this build"):][:6000]
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", box))
        assert re.search(r"ran in \d+\.\d min under the\s+smoke\s+profile", text), chapter
        assert f"--chapter {chapter}" in text and "papermill" in text
        for download in (f"{chapter}.ipynb", f"{chapter}.py"):
            link = re.search(r'href="(\.\./_downloads/[^"]+/' + re.escape(download) + ')"', box)
            assert link, (chapter, download)
            assert (html / "book" / link.group(1)).resolve().is_file()
        article = page.index("<article")
        first_section = page.find("<h2", article)
        assert article < page.index("In this build") < (first_section if first_section > 0 else len(page)), \
            f"{chapter}: the run box is not at the top of the page"


def test_the_injected_parameters_cell_is_removed_from_the_page(site):
    for chapter in chapters():
        notebook = json.loads((site / "book" / f"{chapter}.ipynb").read_text())
        injected = [c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
        assert injected and all("remove-cell" in c["metadata"]["tags"] for c in injected), chapter


def _glued(site, chapter: str) -> dict[str, str]:
    notebook = json.loads((site / "book" / f"{chapter}.ipynb").read_text())
    glued = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook", {})
            if meta:
                glued[meta["name"]] = output["data"][meta["mime_prefix"] + "text/plain"]
    return glued


def _close(text: str, value: float) -> bool:
    return float(text) == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_every_chapters_prose_numbers_come_from_its_result(site, monkeypatch):
    """The numbers the prose quotes (myst-nb glue) equal the cached records' and the summary's."""
    from costeff_same.summary import summary

    monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(site / "results"))
    s = summary("smoke")
    assert all(s[k]["status"] == "done" for k in ("multi_exit", "costeff", "accuracy_attacks", "same"))

    ch1 = _glued(site, "01_multi_exit")
    result = json.loads(next((site / "results").glob("multi_exit-*/result.json")).read_text())
    assert _close(ch1["ent_final"], s["multi_exit"]["entropy"]["final_exit_accuracy"])
    assert _close(ch1["pat_final"], s["multi_exit"]["patience"]["final_exit_accuracy"])
    assert _close(ch1["ent_speedup"], s["multi_exit"]["entropy"]["operating_point"]["speedup"])
    assert _close(ch1["pat_speedup"], result["victims"]["patience"]["operating_point"]["speedup"])
    assert _close(ch1["ent_wall64"], s["multi_exit"]["entropy"]["wallclock_speedup_batch64"])
    assert int(ch1["n_test"]) == result["examples"]["test"]

    ch2 = _glued(site, "02_costeff")
    assert _close(ch2["costeff_final"], s["costeff"]["costeff_final_exit_accuracy"])
    assert _close(ch2["teacher_final"], s["costeff"]["teacher_accuracy"])
    assert _close(ch2["retention_pct"], 100 * s["costeff"]["retention"])
    assert _close(ch2["flops_fraction_pct"], 100 * s["costeff"]["flops_fraction"])
    found = [b["costeff"]["verdict"] for b in s["costeff"]["matched_budgets"] if b["costeff"]]
    assert int(ch2["n_beats"]) == found.count("beats") and int(ch2["n_worse"]) == found.count("worse")
    assert int(ch2["n_noise"]) == found.count("within noise") and int(ch2["n_matched"]) == len(found)
    assert ch2["retention_ci"].strip("'") == interval_text(s["costeff"]["intervals"]["retention"], percent=True)

    ch3 = _glued(site, "03_accuracy_attacks")
    reductions = [r["efficiency_gain_reduction"] for r in s["accuracy_attacks"]["records"]
                  if r["efficiency_gain_reduction"] is not None]
    assert int(ch3["n_examples"]) == s["accuracy_attacks"]["num_examples"]
    assert int(ch3["n_pairs"]) == len(s["accuracy_attacks"]["records"])
    if reductions:
        assert _close(ch3["mean_reduction"], sum(reductions) / len(reductions))
        largest = max((r for r in s["accuracy_attacks"]["records"] if r["efficiency_gain_reduction"] is not None),
                      key=lambda r: r["efficiency_gain_reduction"])
        assert ch3["max_reduction_ci"].strip("'") == interval_text(
            largest["intervals"]["attacked"]["efficiency_gain_reduction"])
    assert ch3["rq1_verdict"].strip("'") == s["accuracy_attacks"]["rq1"]["verdict"]
    assert int(ch3["n_significant"]) == s["accuracy_attacks"]["rq1"]["significant"]

    ch4 = _glued(site, "04_same")
    assert int(ch4["n_examples"]) == s["same"]["num_examples"]
    for victim, key in (("entropy", "ent"), ("patience", "pat")):
        reduction = s["same"][victim]["efficiency_gain_reduction"]
        if reduction is not None:
            assert _close(ch4[f"{key}_reduction"], reduction)
        assert _close(ch4[f"{key}_slowdown"], s["same"][victim]["wallclock_slowdown"])
    if s["same"]["mean_efficiency_gain_reduction"] is not None:
        assert _close(ch4["mean_reduction"], s["same"]["mean_efficiency_gain_reduction"])
    assert ch4["rq1_verdict"].strip("'") == s["accuracy_attacks"]["rq1"]["verdict"]
    assert ch4["mean_reduction_ci"].strip("'") == interval_text(s["same"]["mean_efficiency_gain_reduction_interval"])

    ch5, five = _glued(site, "05_same_vs_costeff"), s["same_vs_costeff"]
    assert int(ch5["n_examples"]) == five["num_examples"]
    for key, name in (("costeff", "costeff"), ("ref", "entropy")):
        for attack in ("same", "pwws"):
            assert ch5[f"{key}_{attack}_ci"].strip("'") == interval_text(
                five["victims"][name]["attacks"][attack]["intervals"]["efficiency_gain_reduction"])
    bill = five["deployer"]["same"]
    assert ch5["static_verdict_adv"].strip("'") == bill["static_minus_costeff_adv_verdict"]
    assert ch5["saving_survives"].strip("'") == interval_text(bill["saving_survives"])
    costeff_same = five["victims"]["costeff"]["attacks"]["same"]
    assert ch5["costeff_adv_mflops"].strip("'") == f"{costeff_same['flops_adv'] / 1e6:.2f}"

    ch6, six = _glued(site, "06_defences"), s["defences"]
    assert int(ch6["n_examples"]) == six["num_examples"]
    assert ch6["reduction_goal"].strip("'") == f"{six['reduction_goal']:g}"
    for victim in ("entropy", "patience"):
        roc = six["victims"][victim]["guard"]["roc"]
        assert ch6[f"auroc_{victim}"].strip("'") == interval_text(roc["auroc_interval"])
        assert six["victims"][victim]["adversarial_training"]["test_sentences_trained_on"] == 0
    verdicts = [six["victims"][v][d]["goal"]["verdict"] for v in six["victims"] for d in six["defences"]]
    assert all(f"{verdicts.count(k)} {k}" in ch6["goal_tally"] for k in set(verdicts))
    assert int(ch6["test_overlap"]) == 0

    # the reproduction summary: every verdict and figure on the page is `summary --json`'s
    env = {**os.environ, "COSTEFF_SAME_RESULTS": str(site / "results")}
    out = subprocess.run([str(BIN / "costeff-same"), "summary", "--profile", "smoke", "--json"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    summary_page = _glued(site, "99_reproduction")
    claims = json.loads(out.stdout)["reproduction"]["claims"]
    assert [(c["key"], c["verdict"], c["ours_text"]) for c in claims] == [
        (c["key"], c["verdict"], c["ours_text"]) for c in s["reproduction"]["claims"]]
    assert len(claims) >= 12 and int(summary_page["n_claims"]) == len(claims)
    for claim in claims:
        assert summary_page[f"verdict_{claim['key']}"].strip("'") == claim["verdict"], claim["key"]
        assert summary_page[f"ours_{claim['key']}"].strip("'") == claim["ours_text"], claim["key"]
    for chapter in ("01_multi_exit", "02_costeff", "03_accuracy_attacks", "04_same", "05_same_vs_costeff"):
        for key, value in _glued(site, chapter).items():
            if key.startswith("claim_"):
                row = next(c for c in claims if c["key"] == key[len("claim_"):])
                assert value.strip("'") == row["verdict"], (chapter, key)
    assert sum(s["reproduction"]["counts"].values()) == len(claims)
    assert int(summary_page["n_reproduced"]) == s["reproduction"]["counts"]["reproduced"]


def test_summary_json_reads_the_cache(site, monkeypatch):
    monkeypatch.setenv("COSTEFF_SAME_RESULTS", str(site / "results"))
    out = subprocess.run([str(BIN / "costeff-same"), "summary", "--profile", "smoke", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert set(summary) >= {"profile", "multi_exit", "costeff", "accuracy_attacks", "same", "same_vs_costeff",
                            "defences", "reproduction"}
    chapter6 = summary["defences"]
    assert chapter6["status"] == "done" and set(chapter6["victims"]) == {"entropy", "patience"}
    for victim in chapter6["victims"].values():
        assert set(victim) >= {"none", "sanitiser", "guard", "adversarial_training"}
        for defence in ("sanitiser", "guard", "adversarial_training"):
            row = victim[defence]
            assert {"clean_accuracy_loss", "non_adaptive", "adaptive", "goal"} <= set(row)
            assert row["goal"]["verdict"] in ("met", "undecided", "missed")
    chapter5 = summary["same_vs_costeff"]
    assert chapter5["status"] == "done" and set(chapter5["victims"]) == {"entropy", "costeff", "ta", "no_ta"}
    assert set(chapter5["deployer"]) == {"same", "pwws"} and "entropy->costeff" in chapter5["transfer"]
    section = summary["multi_exit"]
    assert section["status"] == "done"
    assert section["task"] == "rotten_tomatoes" and section["num_layers"] == 4
    assert len(section["per_exit_accuracy"]) == 4
    for victim in ("entropy", "patience"):
        point = section[victim]["operating_point"]
        assert {"threshold", "accuracy", "speedup"} <= set(point)
        assert section[victim]["wallclock_speedup_batch64"] > 0


def test_wrong_parameter_type_is_refused_before_the_chapter_runs(tmp_path):
    from costeff_same.foundations.config import ConfigError

    with pytest.raises(ConfigError, match="epochs='two' must be an integer"):
        run_chapter("01_multi_exit", "smoke", {"epochs": "two"}, output_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_help_notebook_lists_every_parameter_with_its_meaning(tmp_path):
    to_ipynb("01_multi_exit", tmp_path / "01.ipynb")
    out = subprocess.run([str(BIN / "papermill"), "--help-notebook", str(tmp_path / "01.ipynb")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name, meaning in (("task", "rotten_tomatoes, imdb"), ("entropy_thresholds", "sweep"),
                          ("train_file", ".csv")):
        lines = out.stdout.splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{name}:"))
        assert "Unknown type" not in lines[at]
        assert meaning in lines[at] + lines[at + 1]
