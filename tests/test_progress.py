"""Progress goes to the runner's terminal through the progress file, never into the notebook."""

import io
import re
import subprocess
import sys
import textwrap

import pytest

from costeff_same.foundations import progress
from costeff_same.foundations.progress import PROGRESS_ENV, Relay


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


WRITER = textwrap.dedent("""
    import time
    from costeff_same.foundations import progress
    progress.line("stage model-1 (deebert): computing ...")
    for _ in progress.bar(range(6), desc="train stage 1", unit="step"):
        time.sleep(0.5)
    progress.line("stage model-1 (deebert): done in 1 s")
""")


def _relay_child(tmp_path, monkeypatch, target, **kwargs):
    path = tmp_path / "progress.txt"
    monkeypatch.setenv(PROGRESS_ENV, str(path))
    with Relay(path, target=target, poll=0.05, **kwargs):
        subprocess.run([sys.executable, "-c", WRITER], check=True)
    return target.getvalue()


def test_a_log_gets_the_stage_lines_and_throttled_bar_lines(tmp_path, monkeypatch):
    out = _relay_child(tmp_path, monkeypatch, io.StringIO(), log_interval=60)
    lines = out.splitlines()
    assert lines[0] == "stage model-1 (deebert): computing ..."
    assert lines[-1] == "stage model-1 (deebert): done in 1 s"
    bars = [line for line in lines if "train stage 1" in line]
    assert len(bars) == 1 and "step" in bars[0]            # one update in 60 s, not one per step
    assert "\r" not in out


def test_a_log_shows_the_rate_and_time_left_when_updates_are_frequent(tmp_path, monkeypatch):
    out = _relay_child(tmp_path, monkeypatch, io.StringIO(), log_interval=0)
    bars = [line for line in out.splitlines() if "train stage 1" in line]
    assert len(bars) >= 3                                  # tqdm redraws at most once a second
    assert any(re.search(r"<00:0\d, +[\d.]+(s/step|step/s)", b) for b in bars)   # time left, then the rate


def test_a_stage_line_after_another_processs_bar_status_stays_a_line_of_its_own(tmp_path, monkeypatch):
    path = tmp_path / "progress.txt"
    monkeypatch.setenv(PROGRESS_ENV, str(path))
    out = io.StringIO()
    with Relay(path, target=out, poll=0.05, log_interval=0):
        with open(path, "a") as worker:           # a worker's bar status: no newline after it
            worker.write("\r  train event 3:  14%| 3/21 [00:02<00:15,  1.16step/s]")
        progress.line("stage model-1 (deebert): read from the cache")
    assert "stage model-1 (deebert): read from the cache" in out.getvalue().splitlines()


def test_a_terminal_draws_the_bar_in_place(tmp_path, monkeypatch):
    out = _relay_child(tmp_path, monkeypatch, FakeTerminal())
    assert "\r\x1b[Ktrain stage 1" in out
    assert "stage model-1 (deebert): done in 1 s\n" in out


def test_without_the_variable_or_a_terminal_nothing_is_written(monkeypatch, capsys):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    progress.line("hidden")
    for _ in progress.bar(range(3), desc="x"):
        pass
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("seconds, text", [(3, "3 s"), (150, "2.5 min"), (7200, "2.0 h")])
def test_duration(seconds, text):
    assert progress.duration(seconds) == text


def test_stage_counts_read_the_stage_lines_only(tmp_path, monkeypatch):
    path = tmp_path / "progress.txt"
    monkeypatch.setenv(PROGRESS_ENV, str(path))
    for title, event in (("stage a", "computing"), ("stage a", "done"), ("stage b", "read"), ("stage c", "waited")):
        progress.stage_line(title, event, 3.0)
    with open(path, "a") as handle:
        handle.write("\r  attack pwws: read from the cache |  3/8 [00:02<00:04]\n")   # not a stage line
    assert progress.stage_counts(path) == {"computed": 1, "read": 2}
    assert progress.read_entries(path) == ["b", "c"]


def test_a_cached_rebuild_reports_the_compute_time_recorded_with_what_it_read(tmp_path, monkeypatch,
                                                                               private_results):
    import json

    from costeff_same import notebooks

    path = tmp_path / "progress.txt"
    monkeypatch.setenv(PROGRESS_ENV, str(path))
    for name, seconds in (("same-0123456789abcdef", 90.0), ("model-fedcba9876543210", 30.0)):
        (private_results / name).mkdir(parents=True)
        (private_results / name / "provenance.json").write_text(json.dumps({"seconds": seconds}))
        progress.stage_line(f"stage {name} (a label: with a colon)", "read")
    assert notebooks._recorded_minutes() == pytest.approx(2.0)
