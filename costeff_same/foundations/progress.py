"""Progress of a run on the runner's terminal, never in the book.

A chapter runs in a papermill kernel whose standard streams become the notebook's
outputs, so a progress bar written there would end up on the rendered page. The notebook
runner (:mod:`costeff_same.notebooks`) therefore names a *progress file* in the
environment variable :data:`PROGRESS_ENV`; the kernel, and every worker process it spawns,
appends its progress to that file, and the runner copies it to its own terminal
(:class:`Relay`). Without the variable, progress goes to standard error when that is a
terminal (a library call from a shell, ``costeff-same train``) and nowhere otherwise (a
notebook opened by hand, a test).

Two kinds of output, both plain text so that several processes can share the file:

- :func:`bar`: a ``tqdm`` bar (the stage being computed: training steps of a named model,
  sentences of an attack unit), with its rate and estimated time left;
- :func:`line`: one permanent line (a stage read from the cache, a stage computed and its
  time).
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

#: the environment variable naming the progress file of a run
PROGRESS_ENV = "COSTEFF_SAME_PROGRESS"

_handles: dict[str, IO[str]] = {}


def stream() -> IO[str] | None:
    """Where progress goes: the progress file of :data:`PROGRESS_ENV` (opened once per
    process, line-buffered), else standard error when it is a terminal, else None."""
    path = os.environ.get(PROGRESS_ENV)
    if path:
        if path not in _handles:
            _handles[path] = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed at exit
            atexit.register(_handles[path].close)
        return _handles[path]
    return sys.stderr if sys.stderr.isatty() else None


def bar(iterable: Iterable | None = None, *, desc: str, total: int | None = None, unit: str = "it",
        enabled: bool | None = None) -> tqdm:
    """A ``tqdm`` bar on :func:`stream` (disabled when there is none, or when ``enabled`` is False).

    Args:
        iterable: what to iterate (None: call ``update`` by hand).
        desc: what is being computed (``train deebert stage 1``, ``attack pwws on entropy``).
        total: the number of steps (default: ``len(iterable)``).
        unit: the unit of a step (``step``, ``sentence``).
        enabled: None follows :func:`stream`; False disables the bar (tests).
    """
    out = stream()
    return tqdm(iterable, desc=desc, total=total, unit=unit, file=out if out is not None else sys.stderr,
                disable=out is None or enabled is False, leave=False, mininterval=1.0, dynamic_ncols=False,
                ncols=100)


def line(message: str) -> None:
    """Write one permanent line to :func:`stream` (nothing when there is none).

    The line starts with a carriage return and a clear-to-end-of-line, so it never continues
    a bar's last status, even one that another process (a stage-graph worker) drew into the
    same progress file just before.
    """
    out = stream()
    if out is not None:
        out.write("\r\x1b[K" + message + "\n")
        out.flush()


_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

#: what a stage line says after the stage's name, by event
STAGE_EVENTS = {"read": "read from the cache", "waited": "read from the cache (another run computed it)",
                "computing": "computing ...", "done": "done in {}"}


def stage_line(title: str, event: str, seconds: float | None = None) -> None:
    """One stage's line: ``<title>: read from the cache``, ``computing ...`` or ``done in 3.5 min``.

    Raises:
        ValueError: for an event not in :data:`STAGE_EVENTS` (the accepted ones are listed).
    """
    if event not in STAGE_EVENTS:
        raise ValueError(f"unknown stage event {event!r}; accepted: {', '.join(STAGE_EVENTS)}")
    line(f"{title}: " + STAGE_EVENTS[event].format(duration(seconds or 0.0)))


#: how a stage line ends when this run read the stage (another run may have computed it meanwhile)
_READ_ENDINGS = tuple(": " + STAGE_EVENTS[event] for event in ("read", "waited"))


def _stage_lines(path: Path) -> list[str]:
    """The ``stage ...`` lines of a progress file, control sequences removed."""
    lines = (_CONTROL.sub("", text) for text in Path(path).read_text(encoding="utf-8", errors="replace").splitlines())
    return [text for text in lines if text.startswith("stage ")]


def stage_counts(path: Path) -> dict[str, int]:
    """``{"computed": n, "read": n}``: the stages a progress file says were computed and read
    (a stage another run computed while this one waited counts as read)."""
    lines = _stage_lines(path)
    done = ": " + STAGE_EVENTS["done"].split("{")[0]
    return {"computed": sum(done in text for text in lines),
            "read": sum(text.endswith(_READ_ENDINGS) for text in lines)}


def read_entries(path: Path) -> list[str]:
    """The cache entry names (``same-93365ca2c5ae8962``) of the stages a progress file says were
    read from the cache (or computed by another run while this one waited), in order."""
    return [text[len("stage "):].split(" ", 1)[0].split(":", 1)[0] for text in _stage_lines(path)
            if text.endswith(_READ_ENDINGS)]


def duration(seconds: float) -> str:
    """``"42 s"``, ``"3.5 min"`` or ``"1.2 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"



class Relay:
    """Copy a progress file to a terminal or a log while a run appends to it.

    Permanent lines (ending in a newline) are copied as they come. A bar's updates (ending
    in a carriage return) are drawn in place on a terminal; in a log (``target`` is not a
    terminal) the latest update is written as a line at most every ``log_interval`` seconds,
    so a captured run shows where it was without thousands of redraws.

    Use it as a context manager: ``with Relay(path): run()``; leaving it copies what is left.
    """

    def __init__(self, path: Path, target: IO[str] | None = None, log_interval: float = 30.0,
                 poll: float = 0.2) -> None:
        self.path = Path(path)
        self.target = target if target is not None else sys.stdout
        self.tty = self.target.isatty()
        self.log_interval, self.poll = log_interval, poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._offset, self._pending, self._last_log = 0, "", 0.0
        self._status = ""

    def __enter__(self) -> Relay:
        self.path.touch()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._copy()
        self._draw_status("")

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._copy()

    def _copy(self) -> None:
        try:
            with open(self.path, encoding="utf-8", errors="replace", newline="") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
                self._offset = handle.tell()
        except OSError:
            return
        # tqdm draws a bar as "\r<status>" (one write each); a line ends in "\n"
        pieces = re.split(r"(\r|\n)", self._pending + chunk)
        self._pending = pieces.pop()
        status = None
        for piece, end in zip(pieces[::2], pieces[1::2]):
            piece = _CONTROL.sub("", piece).rstrip()
            if end == "\n" and piece:
                self._write_line(piece)
                status = None
            elif end == "\r" and piece:
                status = piece
        if pieces and pieces[-1] == "\r" and self._pending.strip():
            status, self._pending = _CONTROL.sub("", self._pending).rstrip(), ""
        if status:
            self._update(status)

    def _write_line(self, text: str) -> None:
        if self.tty:
            self._status = ""
            self.target.write("\r\x1b[K" + text + "\n")
        else:
            self.target.write(text + "\n")
        self.target.flush()

    def _update(self, text: str) -> None:
        if self.tty:
            self._draw_status(text)
        elif time.monotonic() - self._last_log >= self.log_interval:
            self._last_log = time.monotonic()
            self.target.write("  " + text.strip() + "\n")
            self.target.flush()

    def _draw_status(self, text: str) -> None:
        if self.tty:
            self._status = text
            self.target.write("\r\x1b[K" + text)
            self.target.flush()
